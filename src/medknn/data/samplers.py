"""P×Q stratified batches (P classes × Q samples each), as in the Deep kNN paper."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

from medknn.errors import ConfigError, DataError


class _ShuffledCycle:
    """Endless shuffled passes over ``items``; one draw of k ≤ len(items) never repeats an item."""

    def __init__(self, items: np.ndarray, rng: np.random.Generator) -> None:
        self.items = items
        self.rng = rng
        self.queue = rng.permutation(items)

    def draw(self, k: int) -> np.ndarray:
        if k > len(self.items):
            # Too few items: each once, the rest with replacement.
            extra = self.rng.choice(self.items, size=k - len(self.items), replace=True)
            return np.concatenate([self.rng.permutation(self.items), extra])
        taken, self.queue = self.queue[:k], self.queue[k:]
        if len(taken) < k:
            # Pass exhausted: refill, putting the items this draw already holds last.
            fresh = self.rng.permutation(self.items)
            fresh = np.concatenate([fresh[~np.isin(fresh, taken)], taken])
            missing = k - len(taken)
            taken, self.queue = np.concatenate([taken, fresh[:missing]]), fresh[missing:]
        return taken


class StratifiedBatchSampler(Sampler[list[int]]):
    """Batches of ``classes_per_batch`` classes × ``samples_per_class`` positions into ``labels``.

    Classes are dealt from shuffled passes over all classes, so every class (even one smaller than
    Q) appears each epoch; within a class, samples come without replacement from a shuffled pool
    that is refilled when exhausted, and with replacement only if the class has fewer than Q
    samples. Use as ``DataLoader(dataset, batch_sampler=sampler)`` and call ``set_epoch(epoch)``
    before each epoch (like DistributedSampler): an epoch's batches depend on (seed, epoch) only.
    """

    def __init__(
        self,
        labels: Sequence[int] | np.ndarray,
        *,
        classes_per_batch: int = 9,
        samples_per_class: int = 10,
        seed: int = 0,
    ) -> None:
        for option, value in (
            ("classes_per_batch", classes_per_batch),
            ("samples_per_class", samples_per_class),
        ):
            if not isinstance(value, int | np.integer) or value < 2:
                raise ConfigError(
                    f"{option}={value!r} must be an integer >= 2 (metric losses need positive "
                    "pairs and negatives in each batch)"
                )
        labels = np.asarray(labels)
        if labels.ndim != 1 or len(labels) == 0 or not np.issubdtype(labels.dtype, np.integer):
            raise DataError(
                f"labels must be a non-empty 1-D integer array, got shape {labels.shape}"
            )
        self.classes = np.unique(labels)
        self._members = [np.flatnonzero(labels == c) for c in self.classes]
        self.num_samples = len(labels)
        self.classes_per_batch = min(int(classes_per_batch), len(self.classes))
        self.samples_per_class = int(samples_per_class)
        self.seed = int(seed)
        self.epoch = 0

    @property
    def batch_size(self) -> int:
        return self.classes_per_batch * self.samples_per_class

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return max(
            math.ceil(self.num_samples / self.batch_size),
            math.ceil(len(self.classes) / self.classes_per_batch),
        )

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        class_cycle = _ShuffledCycle(np.arange(len(self.classes)), rng)
        pools = [_ShuffledCycle(members, rng) for members in self._members]
        for _ in range(len(self)):
            chosen = class_cycle.draw(self.classes_per_batch)
            yield np.concatenate([pools[c].draw(self.samples_per_class) for c in chosen]).tolist()
