"""F-scores of majority, middle and minority classes, grouped by training frequency (the
grouping of Marrakchi et al. 2021, Table 3)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from medknn.errors import DataError

MAJORITY_SHARE = 0.5  # a class with at least half the largest class's training images
MINORITY_SHARE = 0.1  # a class with at most a tenth of them
GROUPS = ("majority", "middle", "minority")


def frequency_groups(
    train_counts: Sequence[int] | np.ndarray,
    *,
    majority: float = MAJORITY_SHARE,
    minority: float = MINORITY_SHARE,
) -> dict[str, list[int]]:
    """Class indices by training count n_c relative to the largest class's n_max:
    ``majority`` n_c ≥ 0.5·n_max, ``minority`` n_c ≤ 0.1·n_max, ``middle`` in between.

    On ISIC 2018 / HAM10000 this gives the paper's groups: nv | mel, bkl | bcc, akiec, vasc, df
    (6705 | 1113, 1099 | 514, 327, 142, 115 images). A group may be empty.
    """
    counts = np.asarray(train_counts, dtype=np.float64)
    if counts.ndim != 1 or len(counts) == 0 or (counts < 0).any() or counts.max() == 0:
        raise DataError(
            f"train_counts {np.asarray(train_counts).tolist()} must be one non-negative count "
            "per class, not all zero."
        )
    if not 0 < minority < majority <= 1:
        raise DataError(
            f"Group thresholds minority={minority} and majority={majority} must satisfy "
            "0 < minority < majority <= 1 (shares of the largest class)."
        )
    share = counts / counts.max()
    return {
        "majority": np.flatnonzero(share >= majority).tolist(),
        "middle": np.flatnonzero((share > minority) & (share < majority)).tolist(),
        "minority": np.flatnonzero(share <= minority).tolist(),
    }


def grouped_f1(
    f1: Sequence[float] | np.ndarray, train_counts: Sequence[int] | np.ndarray
) -> dict[str, float | None]:
    """``f1_majority``, ``f1_middle``, ``f1_minority``: the mean per-class F1 of each group of
    :func:`frequency_groups`; None for an empty group."""
    f1 = np.asarray(f1, dtype=np.float64)
    if f1.shape != np.shape(train_counts):
        raise DataError(
            f"{len(f1)} per-class F1 values for {len(train_counts)} training counts; pass one "
            "of each per class."
        )
    return {
        f"f1_{group}": float(f1[members].mean()) if members else None
        for group, members in frequency_groups(train_counts).items()
    }
