"""What makes a run repeat bit for bit on one machine: a fixed thread count and, if asked,
PyTorch's deterministic algorithms.

On the CPU a run with the same seed, data and code already repeats on one machine: the batches,
augmentations and draws come from seeded generators and the data loader keeps their order (its
workers are seeded from the run's seed). What differs between machines, or between two thread
counts on one machine, is the order in which floating-point sums are taken: oneDNN and MKL pick
their convolution and matrix-product kernels by the CPU's instruction set (AVX2, AVX-512, ...)
and split the work by thread count, and faiss's exact search computes distances with BLAS for
batches of queries. Rounding then differs in the last bits and training amplifies it, as a new
seed would (docs/results/README.md, "Expected spread"). ``threads`` fixes the split on one
machine; ``deterministic`` also makes PyTorch refuse an operation that has no deterministic
implementation (relevant on a GPU: scatter-adds, some pooling backward passes) instead of running
a non-deterministic one. Neither makes two different CPUs agree.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def reproducible(threads: int | None = None, deterministic: bool = False) -> Iterator[None]:
    """Within the block, torch (and faiss, if it is loaded) use ``threads`` threads (None: as
    they are) and, with ``deterministic``, only deterministic algorithms; both are restored on
    leaving, since they are process-wide."""
    before_threads = torch.get_num_threads()
    before_deterministic = torch.are_deterministic_algorithms_enabled()
    before_benchmark = torch.backends.cudnn.benchmark
    try:
        if threads is not None:
            torch.set_num_threads(threads)
            _faiss_threads(threads)
        if deterministic:
            # cuBLAS needs a fixed workspace for deterministic matrix products on a GPU.
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
        yield
    finally:
        if threads is not None:
            torch.set_num_threads(before_threads)
            _faiss_threads(before_threads)
        torch.use_deterministic_algorithms(before_deterministic)
        torch.backends.cudnn.benchmark = before_benchmark


def _faiss_threads(threads: int) -> None:
    import sys

    faiss = sys.modules.get("faiss")  # set only if loaded: importing faiss here costs a second
    if faiss is not None:
        faiss.omp_set_num_threads(threads)
