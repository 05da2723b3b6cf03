"""kNN on feature vectors, as they are or after a learned linear metric (NCA, LMNN)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sklearn.neighbors import NeighborhoodComponentsAnalysis
from sklearn.pipeline import Pipeline

from medknn.errors import ConfigError
from medknn.features.lmnn import LMNN
from medknn.features.subsampled_fit import SubsampledFit
from medknn.prediction import KNNClassifier
from medknn.runs.knn_index_options import KNNSettings

LINEAR_METHODS = ("knn-basic", "nca", "lmnn")
# method_options each linear method accepts, with their defaults.
LINEAR_OPTIONS: dict[str, dict[str, int]] = {
    "knn-basic": {},
    "nca": {"n_components": 64, "max_iter": 50, "max_samples": 2000},
    "lmnn": {"n_components": 64, "max_iter": 200, "max_samples": 2000, "n_neighbors": 3},
}


def make_metric_knn(
    method: str,
    *,
    num_features: int,
    n_neighbors: int = 5,
    weights: str = "uniform",
    knn: KNNSettings | None = None,
    num_train: int | None = None,
    options: Mapping[str, Any] | None = None,
    random_state: int = 0,
) -> Pipeline:
    """An unfitted scikit-learn pipeline: [a learned linear map →] :class:`KNNClassifier`.

    ``knn-basic`` is kNN on the features as given; ``nca`` puts scikit-learn's
    NeighborhoodComponentsAnalysis and ``lmnn`` medknn's LMNN (``features/lmnn.py``) in front,
    each fitted on a stratified subsample of ``max_samples`` rows (:class:`SubsampledFit`).
    ``options`` are the method's entries of ``LINEAR_OPTIONS``; ``n_components`` is capped at
    ``num_features``.
    ``knn``, a run's kNN settings (K_p capped at ``num_train``, weights, index type and
    options), replaces ``n_neighbors`` and ``weights``.
    """
    if method not in LINEAR_OPTIONS:
        raise ConfigError(
            f"{method!r} is not one of the linear methods {', '.join(LINEAR_METHODS)}."
        )
    settings = resolve_options(method, options)
    if knn is None:
        classifier = KNNClassifier(n_neighbors, weights=weights)
    else:
        classifier = KNNClassifier.from_settings(knn, num_train or knn.k)
    knn_step = ("knn", classifier)
    if method == "knn-basic":
        return Pipeline([knn_step])
    components = min(settings["n_components"], num_features)
    if method == "nca":
        metric = NeighborhoodComponentsAnalysis(
            n_components=components, max_iter=settings["max_iter"], random_state=random_state
        )
    else:
        metric = LMNN(
            n_neighbors=settings["n_neighbors"],
            n_components=components,
            max_iter=settings["max_iter"],
            random_state=random_state,
        )
    subsampled = SubsampledFit(
        metric, max_samples=settings["max_samples"], random_state=random_state
    )
    return Pipeline([("metric", subsampled), knn_step])


def resolve_options(method: str, options: Mapping[str, Any] | None) -> dict[str, int]:
    """The method's defaults updated with ``options``; unknown keys and bad values are refused."""
    defaults = LINEAR_OPTIONS[method]
    options = dict(options or {})
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        accepted = ", ".join(defaults) or "none"
        raise ConfigError(
            f"Method {method!r} has no option {unknown[0]!r} (method_options accepts: {accepted})."
        )
    settings = {**defaults, **options}
    for key, value in settings.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(
                f"{method} option {key}={value!r} must be a whole number >= 1 "
                f"(default {defaults[key]})."
            )
    return settings
