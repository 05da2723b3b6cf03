"""One rank's share of every global batch of any batch sampler."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Protocol

import numpy as np

from medknn.errors import ConfigError


class _BatchSampler(Protocol):
    def __iter__(self) -> Iterator[list[int]]: ...
    def __len__(self) -> int: ...


class DistributedBatchSampler:
    """Rank ``rank`` of ``world_size`` gets positions rank, rank + N, rank + 2N, ... of each batch
    of ``batch_sampler`` (N = ``world_size``).

    Every rank builds the same sampler with the same seed, so all see the same global batches and
    together cover each exactly once. The split is strided rather than contiguous because a
    stratified batch lists its P classes one after the other: strided, each rank gets every class
    (what its BatchNorm statistics see), and ``DistributedContext.gather`` interleaves the slices
    back into the original order. The global batch must split into equal slices of at least two
    images (BatchNorm cannot train on one); a shorter last batch is padded with repeats of its
    own images, as ``DistributedSampler`` pads an epoch. ``set_epoch`` is passed on.
    """

    def __init__(self, batch_sampler: _BatchSampler, *, rank: int, world_size: int) -> None:
        if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
            raise ConfigError(f"world_size={world_size!r} must be an integer >= 1.")
        if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < world_size:
            raise ConfigError(f"rank={rank!r} must be an integer in [0, {world_size - 1}].")
        # Batch sizes differ in kind (P×Q, batch_size, …); the first batch shows the real one.
        first = next(iter(batch_sampler), None)
        if first is None:
            raise ConfigError("The batch sampler yields no batch: the training set is empty.")
        size = len(first)
        if size % world_size or size < 2 * world_size:
            fitting = max(2, math.ceil(size / world_size)) * world_size
            raise ConfigError(
                f"Batches of {size} images cannot be split evenly over {world_size} processes "
                f"with at least 2 images each: use a batch size divisible by {world_size}, e.g. "
                f"--set batch_size={fitting} (for P×Q stratified batches, make classes_per_batch "
                "× samples_per_class divisible)."
            )
        self.batch_sampler = batch_sampler
        self.rank = rank
        self.world_size = world_size
        self.global_batch_size = size

    @property
    def batch_size(self) -> int:
        return self.global_batch_size // self.world_size

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.batch_sampler, "set_epoch"):
            self.batch_sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.batch_sampler)

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.batch_sampler:
            yield _padded(batch, self.world_size)[self.rank :: self.world_size].tolist()


def _padded(batch: Iterable[int], world_size: int) -> np.ndarray:
    """``batch`` cyclically repeated to a multiple of ``world_size`` of at least twice that."""
    items = np.asarray(list(batch))
    target = max(2, math.ceil(len(items) / world_size)) * world_size
    return items if len(items) == target else np.resize(items, target)
