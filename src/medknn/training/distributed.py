"""Training on several processes with PyTorch's own engine: torchrun + DistributedDataParallel.

``torchrun --nproc_per_node N -m medknn train ...`` starts N copies of the command; each finds
its rank in torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``) and joins the
process group (gloo on CPU, NCCL on CUDA, one GPU per process: ``cuda:LOCAL_RANK``).

The global batch (what the sampler yields) is split across the ranks; rank r trains on its rows
r, r + N, r + 2N, ... (:class:`~medknn.training.distributed_sampler.DistributedBatchSampler`).
After the forward pass the trainer gathers embeddings, logits and labels with
:meth:`DistributedContext.gather`, which reassembles the global batch in the sampler's order and
keeps the rank's own rows differentiable; the objective then runs on the global batch, so every
in-batch miner and loss sees what it would see in one process. Each rank's backward pass yields
the gradient of the global loss through its own rows only; the ranks' sum is the single-process
gradient, so the loss is multiplied by N to undo DDP's averaging.

Why one gather in the trainer rather than PML's ``DistributedLossWrapper`` /
``DistributedMinerWrapper`` (which gather the same way, without gradient for the other ranks'
rows, and multiply by N): those wrap PML losses and miners only, while medknn's objectives also
include cross-entropy (class-weighted CE divides by the batch's summed weights, so per-rank CE is
not the global one), CE + metric sums and plain ``nn.Module`` losses such as ``DeepKNNLoss``;
PML gathers once in the miner wrapper and again in the loss wrapper; and PML puts the rank's own
rows first, so each rank sees the batch in a different order, while here it is the sampler's
order on every rank and in one process (ties in a miner's top-k break the same way).

BatchNorm keeps per-rank batch statistics (DDP's default; ``SyncBatchNorm`` runs on CUDA only).
The strided split gives every rank each class of a P×Q batch, so a rank normalises over a
smaller batch of the same mix; DDP copies rank 0's running statistics to the others at every
forward pass, so the saved model holds rank 0's.

Every wait on another process (a gather, DDP's gradient all-reduce, a barrier) gives up after
``MEDKNN_DIST_TIMEOUT`` seconds (default 1800) with a :class:`TrainingError` naming the rank. The
other ranks also wait there while rank 0 alone validates and, at the end, indexes the training
set and scores the test split, so the timeout must exceed those steps.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from medknn.errors import ConfigError, TrainingError

TIMEOUT_ENV_VAR = "MEDKNN_DIST_TIMEOUT"
DEFAULT_TIMEOUT_SECONDS = 1800.0  # PyTorch's own default for gloo and NCCL


@dataclass(frozen=True)
class DistributedContext:
    """This process's place in a torchrun job: its rank among ``world_size`` and its device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    timeout_seconds: float

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes the run directory."""
        return self.rank == 0

    def wrap(self, network: nn.Module, *, find_unused_parameters: bool = False) -> nn.Module:
        """``network`` in DistributedDataParallel (which averages gradients across the ranks);
        the plain module keeps its own state dict, so checkpoints have single-process names."""
        device_ids = [self.device] if self.device.type == "cuda" else None
        with self.failures("starting DistributedDataParallel"):
            return DistributedDataParallel(
                network, device_ids=device_ids, find_unused_parameters=find_unused_parameters
            )

    def gather(self, local: torch.Tensor) -> torch.Tensor:
        """The global batch from every rank's rows, in the sampler's order (rank r holds global
        rows r, r + N, ...); only this rank's rows carry a gradient."""
        parts = [torch.empty_like(local) for _ in range(self.world_size)]
        with self.failures("gathering the batch"):
            dist.all_gather(parts, local.detach().contiguous())
        parts[self.rank] = local
        return torch.stack(parts, dim=1).flatten(0, 1)

    def barrier(self, reason: str) -> None:
        with self.failures(reason):
            dist.barrier()

    def seed_epoch(self, seed: int, epoch: int) -> None:
        """Seed torch with (seed, epoch, rank): every rank augments its images differently, and a
        resumed epoch repeats exactly without per-rank random states in the checkpoint."""
        (state,) = np.random.SeedSequence([seed, epoch, self.rank]).generate_state(1)
        torch.manual_seed(int(state))

    @contextmanager
    def failures(self, doing: str) -> Iterator[None]:
        """Turn a failed or timed-out collective into a TrainingError that says what to check."""
        try:
            yield
        except RuntimeError as error:  # gloo raises RuntimeError, NCCL its subclass DistError
            raise TrainingError(
                f"rank {self.rank} of {self.world_size}: {doing} failed ({error}). Another "
                "process probably stopped (see its error above) or did not answer within "
                f"{self.timeout_seconds:g} s; raise {TIMEOUT_ENV_VAR} (seconds) if rank 0's "
                "validation or final scoring takes longer."
            ) from None


def torchrun_rank() -> tuple[int, int, int] | None:
    """(rank, world size, local rank) from torchrun's environment; None in a single process."""
    if "WORLD_SIZE" not in os.environ or "RANK" not in os.environ:
        return None
    try:
        world_size = int(os.environ["WORLD_SIZE"])
        rank = int(os.environ["RANK"])
        local_rank = int(os.environ.get("LOCAL_RANK", rank))
    except ValueError:
        raise ConfigError(
            "RANK, WORLD_SIZE and LOCAL_RANK must be integers; let torchrun set them."
        ) from None
    return (rank, world_size, local_rank) if world_size > 1 else None


def is_main_process() -> bool:
    """True unless this process is a rank other than 0 of a torchrun job."""
    found = torchrun_rank()
    return found is None or found[0] == 0


def rank_device(name: str, local_rank: int) -> torch.device:
    """A rank's device: ``cuda:LOCAL_RANK`` for ``auto`` (with CUDA) or ``cuda``, else the CPU."""
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if name == "auto" or name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device={name!r}, but CUDA is not available: use --set device=cpu.")
        return torch.device("cuda", local_rank)
    raise ConfigError(f"device={name!r} cannot be split across processes: use auto, cpu or cuda.")


def timeout_seconds() -> float:
    raw = os.environ.get(TIMEOUT_ENV_VAR)
    if raw is None:
        return DEFAULT_TIMEOUT_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ConfigError(f"{TIMEOUT_ENV_VAR}={raw!r} must be a positive number of seconds.")
    return value


@contextmanager
def distributed_session(device: str = "auto") -> Iterator[DistributedContext | None]:
    """Join torchrun's process group for the duration of the block (None outside torchrun).

    Nested sessions share the group; the outermost one destroys it.
    """
    found = torchrun_rank()
    if found is None:
        yield None
        return
    rank, world_size, local_rank = found
    context = DistributedContext(
        rank, world_size, local_rank, rank_device(device, local_rank), timeout_seconds()
    )
    if dist.is_initialized():
        yield context
        return
    cuda = context.device.type == "cuda"
    if cuda:
        torch.cuda.set_device(context.device)
    with context.failures(f"joining the {world_size} processes"):
        dist.init_process_group(
            "nccl" if cuda else "gloo",
            timeout=timedelta(seconds=context.timeout_seconds),
            device_id=context.device if cuda else None,
        )
    try:
        yield context
    finally:
        dist.destroy_process_group()
