"""Class-balanced batches: every draw picks a class uniformly, then one of its images."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from medknn.errors import ConfigError, DataError


class ClassBalancedBatchSampler:
    """Lists of positions into ``labels`` in which each class is equally likely at every draw.

    Each of the ``batch_size`` draws picks a class uniformly among those present, then an image
    of that class uniformly, with replacement (a rare class repeats within and across batches):
    the class-balanced sampling of Kang et al. (ICLR 2020) that the SupCon paper uses for its
    classifier stage. An epoch has ``num_batches`` batches, by default as many as one pass over
    ``labels`` needs. Call ``set_epoch(epoch)`` before each epoch: the batches depend on
    (seed, epoch) only, so a resumed run repeats them.
    """

    def __init__(
        self,
        labels: np.ndarray,
        batch_size: int,
        *,
        seed: int = 0,
        num_batches: int | None = None,
    ) -> None:
        labels = np.asarray(labels)
        if labels.ndim != 1 or len(labels) == 0 or not np.issubdtype(labels.dtype, np.integer):
            raise DataError(
                f"labels must be a non-empty 1-D integer array, got {labels.dtype} with shape "
                f"{labels.shape}"
            )
        if not isinstance(batch_size, int | np.integer) or batch_size < 1:
            raise ConfigError(f"batch_size={batch_size!r} must be an integer >= 1.")
        if num_batches is None:
            num_batches = math.ceil(len(labels) / batch_size)
        if not isinstance(num_batches, int | np.integer) or num_batches < 1:
            raise ConfigError(
                f"num_batches={num_batches!r} must be an integer >= 1 (or None: one pass over "
                "the labels)."
            )
        # Positions grouped by class: class c owns order[starts[c] : starts[c] + sizes[c]].
        self._order = np.argsort(labels, kind="stable")
        self.classes, self._starts, self._sizes = np.unique(
            labels[self._order], return_index=True, return_counts=True
        )
        self.batch_size = int(batch_size)
        self.num_batches = int(num_batches)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        shape = (self.num_batches, self.batch_size)
        classes = rng.integers(len(self.classes), size=shape)
        within = rng.integers(self._sizes[classes])  # uniform in 0..size-1 of each class
        positions = self._order[self._starts[classes] + within]
        yield from positions.tolist()
