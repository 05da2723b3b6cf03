"""The BSTriplet paper's data-mining batches ("DM", §2.3): k-means groups per class, drawn
in proportion to their sizes."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.cluster import KMeans

from medknn.data.samplers import _ShuffledCycle
from medknn.errors import ConfigError, DataError

_CHUNK = 1024  # images converted to float at a time, to bound memory on large decoded caches


def thumbnail_features(
    images: np.ndarray, indices: np.ndarray | None = None, *, size: int = 8
) -> np.ndarray:
    """``size``×``size`` grey thumbnails in [0, 1], flattened: float32 N×size².

    ``images`` is the decoded uint8 N×H×W×C cache; ``indices`` picks rows (default: all). Area
    averaging keeps what distinguishes groups within a class of medical images at a glance
    (exposure, framing, where the bright tissue lies) and drops texture.
    """
    if images.ndim != 4 or images.dtype != np.uint8:
        raise DataError(
            f"images must be uint8 N×H×W×C, got {images.dtype} with shape {images.shape}"
        )
    rows = np.arange(len(images)) if indices is None else np.asarray(indices)
    features = np.empty((len(rows), size * size), dtype=np.float32)
    for start in range(0, len(rows), _CHUNK):
        chunk = torch.from_numpy(images[rows[start : start + _CHUNK]]).float() / 255
        grey = chunk.mean(dim=3).unsqueeze(1)  # N×1×H×W
        pooled = F.adaptive_avg_pool2d(grey, size)
        features[start : start + len(chunk)] = pooled.flatten(1).numpy()
    return features


CLUSTER_DRAWS = ("proportional", "equal")


class ClusterBatchSampler:
    """Batches of ``batch_size`` positions into ``labels`` that mirror the training distribution.

    Before training, each class's ``features`` are split by k-means (scikit-learn, seeded) into
    ``groups_per_class`` groups (an int, or a mapping class label → groups; a class with fewer
    samples gets one group per sample). Each batch then takes from every group its share
    ``batch_size · size / N`` (``draw="proportional"``, medknn's reading of the paper's Chest-1
    batches, "based on the ratios of groups") or ``batch_size / number of groups`` whatever its
    size (``draw="equal"``, the paper's Chest-2 batches: "six samples from each group"): the whole
    part always, the fractional part with that probability
    (systematic rounding, so each batch has exactly ``batch_size`` items and the expected counts
    are exact). Within a group, samples come from shuffled passes, without replacement until the
    group is used up. An epoch has ⌈N / batch_size⌉ batches; its order depends on (seed, epoch)
    only, so call ``set_epoch`` before each epoch.
    """

    def __init__(
        self,
        labels: Sequence[int] | np.ndarray,
        features: np.ndarray,
        *,
        groups_per_class: int | Mapping[int, int] = 2,
        batch_size: int,
        seed: int = 0,
        draw: str = "proportional",
    ) -> None:
        if draw not in CLUSTER_DRAWS:
            raise ConfigError(
                f"cluster draw {draw!r} must be one of {', '.join(CLUSTER_DRAWS)} (proportional: "
                "each group by its size; equal: the same number from every group)."
            )
        self.draw = draw
        labels = np.asarray(labels)
        features = np.asarray(features, dtype=np.float64)
        if labels.ndim != 1 or len(labels) == 0 or not np.issubdtype(labels.dtype, np.integer):
            raise DataError(
                f"labels must be a non-empty 1-D integer array, got shape {labels.shape}"
            )
        if features.ndim != 2 or len(features) != len(labels):
            raise DataError(
                f"features must be N×D with one row per label ({len(labels)}), got shape "
                f"{features.shape}; see thumbnail_features()."
            )
        if not np.isfinite(features).all():
            raise DataError("features contain NaN or inf; k-means needs finite values.")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer):
            raise ConfigError(f"batch_size={batch_size!r} must be an integer >= 2.")
        if batch_size < 2:
            raise ConfigError(f"batch_size={batch_size} must be at least 2.")
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.epoch = 0
        self.num_samples = len(labels)
        self.groups: list[np.ndarray] = []  # positions of each group's members
        group_classes = []
        for label in np.unique(labels):
            members = np.flatnonzero(labels == label)
            wanted = _groups_for(groups_per_class, int(label))
            for group in _kmeans_groups(features[members], wanted, self.seed):
                self.groups.append(members[group])
                group_classes.append(int(label))
        self.group_classes = np.array(group_classes)

    @property
    def group_sizes(self) -> np.ndarray:
        return np.array([len(group) for group in self.groups])

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return math.ceil(self.num_samples / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        pools = [_ShuffledCycle(group, rng) for group in self.groups]
        if self.draw == "equal":  # a small group is drawn again sooner (shuffled passes)
            quotas = np.full(len(self.groups), self.batch_size / len(self.groups))
        else:
            quotas = self.batch_size * self.group_sizes / self.num_samples
        for _ in range(len(self)):
            counts = _systematic_round(quotas, rng)
            batch = [pools[g].draw(int(n)) for g, n in enumerate(counts) if n > 0]
            yield np.concatenate(batch).tolist()


def _groups_for(groups_per_class: int | Mapping[int, int], label: int) -> int:
    if isinstance(groups_per_class, Mapping):
        if label not in groups_per_class:
            raise ConfigError(
                f"groups_per_class has no entry for class {label}; give a number of groups for "
                f"every class label, e.g. {{{label}: 2}}."
            )
        groups = groups_per_class[label]
    else:
        groups = groups_per_class
    if isinstance(groups, bool) or not isinstance(groups, int | np.integer) or groups < 1:
        raise ConfigError(
            f"groups_per_class={groups!r} for class {label} must be an integer >= 1 "
            "(the paper uses 2 per class)."
        )
    return int(groups)


def _kmeans_groups(features: np.ndarray, groups: int, seed: int) -> list[np.ndarray]:
    """Positions into ``features`` of each non-empty k-means cluster."""
    groups = min(groups, len(features))
    if groups == 1:
        return [np.arange(len(features))]
    assignment = KMeans(n_clusters=groups, n_init=4, random_state=seed).fit_predict(features)
    # Duplicate rows can leave a cluster empty; an empty group would never be drawn anyway.
    return [np.flatnonzero(assignment == g) for g in np.unique(assignment)]


def _systematic_round(quotas: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Integers summing to ``round(sum(quotas))``, each ⌊q⌋ or ⌈q⌉ with expectation q."""
    counts = np.floor(quotas).astype(np.int64)
    remainder = quotas - counts
    missing = round(quotas.sum()) - int(counts.sum())
    if missing > 0:
        cumulative = np.cumsum(remainder) * (missing / remainder.sum())
        points = rng.random() + np.arange(missing)
        chosen = np.searchsorted(cumulative, points, side="right").clip(max=len(quotas) - 1)
        counts += np.bincount(chosen, minlength=len(quotas))
    return counts
