"""Shuffled batches whose order depends only on (seed, epoch), so a resumed run repeats it."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from medknn.errors import ConfigError


class ShuffledBatchSampler:
    """Lists of positions ``0..n-1``, a fresh permutation each epoch; the last batch may be short.

    A trailing batch of one sample is dropped: BatchNorm cannot train on it.
    """

    def __init__(self, num_samples: int, *, batch_size: int, seed: int = 0) -> None:
        if num_samples < 1:
            raise ConfigError("ShuffledBatchSampler needs at least one sample.")
        if batch_size < 2:
            raise ConfigError(f"batch_size={batch_size} must be at least 2.")
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[list[int]]:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.num_samples)
        for start in range(0, self.num_samples, self.batch_size):
            batch = order[start : start + self.batch_size]
            if len(batch) > 1:
                yield batch.tolist()

    def __len__(self) -> int:
        full, rest = divmod(self.num_samples, self.batch_size)
        return full + (1 if rest > 1 else 0)
