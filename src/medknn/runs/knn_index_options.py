"""The nearest-neighbour index types of kNN prediction and their options, checked before training,
and ``KNNSettings``, the one value that says how a run fits its kNN.

They live in the runs layer so that ``TrainConfig`` rejects a typo before the first epoch;
``medknn.prediction.knn_index`` builds the faiss indexes from them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from medknn.errors import ConfigError, did_you_mean

# Option defaults per index type (docs/scaling.md says why these values). ``nlist=None`` picks
# 2·√N inverted lists, capped so that each list has >= IVF_POINTS_PER_LIST training points.
KNN_INDEXES: dict[str, dict[str, int | None]] = {
    "exact": {},
    "ivf": {"nlist": None, "nprobe": 16},
    "hnsw": {"m": 32, "ef_construction": 40, "ef_search": 128},
}
# faiss's k-means warns below 39 training points per centroid: its centroids get unreliable.
IVF_POINTS_PER_LIST = 39
_MINIMUM = {"m": 2}  # an HNSW node needs at least two links; every other option >= 1


def check_knn_index(index: str, options: Mapping[str, Any] | None) -> dict[str, int | None]:
    """``options`` completed with the defaults of ``index``; a ConfigError names a bad index type,
    option or value and the choices."""
    if index not in KNN_INDEXES:
        raise ConfigError(
            f"kNN index {index!r} is unknown (choices: {', '.join(KNN_INDEXES)}). "
            + did_you_mean(str(index), KNN_INDEXES)
        )
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        raise ConfigError(
            f"kNN index options {options!r} must be a mapping of option: value, e.g. "
            "{nprobe: 32}."
        )
    defaults = KNN_INDEXES[index]
    if options and not defaults:
        raise ConfigError(
            f"the {index!r} kNN index takes no options, got {dict(options)}; choose the 'ivf' "
            "or 'hnsw' index for an approximate search with options."
        )
    for name, value in options.items():
        if name not in defaults:
            raise ConfigError(
                f"the {index!r} kNN index has no option {name!r} (it accepts: "
                f"{', '.join(defaults)}). " + did_you_mean(str(name), defaults)
            )
        minimum = _MINIMUM.get(name, 1)
        allowed_none = defaults[name] is None
        if value is None and allowed_none:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            auto = " or null (automatic)" if allowed_none else ""
            raise ConfigError(
                f"kNN index option {name}={value!r} is invalid for the {index!r} index: pass a "
                f"whole number >= {minimum}{auto}; the default is {defaults[name]}."
            )
    return {**defaults, **options}


@dataclass(frozen=True)
class KNNSettings:
    """How a run's kNN index is fitted and searched: K_p voters, vote weights, the index type and
    its options. One value, built from the config (``TrainConfig.knn``) and passed everywhere a
    kNN is fitted (images, feature vectors, validation, the final index)."""

    k: int = 5
    weights: str = "uniform"
    index: str = "exact"
    index_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_knn_index(self.index, self.index_options)

    def neighbours_for(self, num_train: int) -> int:
        """K_p, capped at the number of training cases."""
        return min(self.k, num_train)
