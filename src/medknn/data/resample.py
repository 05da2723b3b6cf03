"""Oversampling by copies: every class brought up to the majority class's count."""

from __future__ import annotations

import numpy as np

from medknn.errors import DataError


def oversample_indices(labels: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """Positions into ``labels`` (int64): each original position once, then copies of minority
    positions until every class has as many as the largest (Marrakchi et al. 2021, §3).

    A class of n images that needs m more gets every image ``m // n`` more times and a random
    ``m % n`` of them once more, so copies are spread as evenly as possible. The result depends
    on ``seed`` only; shuffle it (the trainer's sampler does) before batching.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) == 0 or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(
            f"labels must be a non-empty 1-D integer array, got {labels.dtype} with shape "
            f"{labels.shape}"
        )
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    target = counts.max()
    parts = [np.arange(len(labels), dtype=np.int64)]
    for label, count in zip(classes, counts, strict=True):
        members = np.flatnonzero(labels == label)
        full_passes, rest = divmod(target - count, count)
        parts += [members] * full_passes
        parts.append(rng.choice(members, size=rest, replace=False))
    return np.concatenate(parts).astype(np.int64)
