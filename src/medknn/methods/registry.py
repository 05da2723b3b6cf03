"""The method registry: recipes naming an objective, a sampler, a head and a prediction rule."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from medknn.errors import ConfigError, did_you_mean

if TYPE_CHECKING:  # both import torch; the registry itself is read without it
    from medknn.methods.embedding_bank import TrainingSetEmbedder
    from medknn.methods.objectives import Objective


@dataclass(frozen=True)
class ObjectiveContext:
    """What an objective may depend on: the method's hyper-parameters and the training data.

    ``options`` holds method-specific settings (``TrainConfig.method_options``); a recipe reads
    its own keys with :meth:`option` and rejects the rest with :meth:`check_options`.
    ``training_set`` embeds the whole training set with a network (for objectives that search
    neighbours in it); only image runs through the API provide it.
    """

    class_counts: np.ndarray
    num_positives: int = 5
    num_negatives: int = 5
    margin: float = 0.2
    options: Mapping[str, Any] = field(default_factory=dict)
    epochs: int | None = None  # the run's length, for schedules such as LDAM's re-weighting
    training_set: TrainingSetEmbedder | None = None
    label_smoothing: float = 0.0  # for the softmax cross entropy of classifier recipes

    def option(self, name: str, default: Any) -> Any:
        return self.options.get(name, default)

    def number(self, method: str, name: str, default: float) -> float:
        """The option ``name`` as a finite number, ``default`` when unset."""
        value: Any = self.option(name, default)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ConfigError(
                f"Method {method!r}: method_options {name}={value!r} must be a number "
                f"(default {default})."
            )
        return float(value)

    def check_options(self, method: str, known: tuple[str, ...]) -> None:
        unknown = sorted(set(self.options) - set(known))
        if unknown:
            accepted = ", ".join(known) if known else "none"
            raise ConfigError(
                f"Method {method!r} has no option {unknown[0]!r} (method_options accepts: "
                f"{accepted})."
            )


@dataclass(frozen=True)
class MethodSpec:
    """A training recipe.

    ``embedding``: ``"projected"`` adds a linear embedding head of the configured size,
    ``"pooled"`` uses the backbone's pooled features as the embedding.
    ``sampler``, the default batch sampler (``TrainConfig.sampler`` overrides it):
    ``"stratified"`` draws P classes × Q images per batch (in-batch mining needs it),
    ``"shuffle"`` draws plain shuffled batches, ``"cluster"`` draws from per-class k-means
    groups in proportion to their sizes (the BSTriplet paper's "DM").
    ``prediction``: ``"knn"`` votes among the nearest training cases, ``"softmax"`` reads the
    classifier.
    ``build_objective`` is ``None`` for methods without training (kNN on frozen features).
    ``head_activation``: an activation after the projected embedding head (e.g. ``"sigmoid"``,
    the constellation-loss paper's head), applied before the L2 normalisation.
    ``projection``: the projected head, ``"linear"`` or ``"mlp"`` (Linear-ReLU-Linear, the
    SupCon projection head). ``classifier_type``: ``"linear"`` or ``"cosine"`` (LDAM's
    normalised classifier, logits are scaled cosine similarities); ``classifier_scale_option``:
    the method option holding a cosine classifier's scale and its default (LDAM's s), read by
    :meth:`classifier_scale`.
    ``views``: augmented views of each training image per batch (2 for contrastive learning);
    ``augmentation``: the training transforms, ``"standard"`` (crop, flip) or ``"contrastive"``
    (random resized crop, flip, colour jitter, greyscale).
    ``resample``: ``"oversample"`` trains on the training set extended with copies of minority
    images until every class has the majority's count (``TrainConfig.resample`` can ask for it too).
    ``freeze_backbone``: train only the head and classifier; the backbone's weights and BatchNorm
    statistics stay exactly as loaded (``--init-from``).
    ``next_stage``: a two-stage method: this spec is stage 1, and the named method (trained with
    ``--init-from`` the stage-1 run) is stage 2, whose run is the method's result.
    """

    name: str
    summary: str
    reference: str
    build_objective: Callable[[ObjectiveContext], Objective] | None
    embedding: Literal["projected", "pooled"]
    normalize_embedding: bool
    classifier: bool
    sampler: str
    prediction: Literal["knn", "softmax"]
    requires_init_from: bool = False
    head_activation: str | None = None
    projection: Literal["linear", "mlp"] = "linear"
    classifier_type: Literal["linear", "cosine"] = "linear"
    classifier_scale_option: tuple[str, float] | None = None
    views: int = 1
    augmentation: Literal["standard", "contrastive"] = "standard"
    resample: Literal["none", "oversample"] = "none"
    freeze_backbone: bool = False
    next_stage: str | None = None
    # ``medknn tune``: trial -> config overrides (its own options; names "<method>/<option>"),
    # called with an Optuna trial or anything with its suggest_* methods; None: none searched.
    search_space: Callable[[Any], dict[str, Any]] | None = None

    @property
    def trains(self) -> bool:
        return self.build_objective is not None

    def classifier_scale(self, options: Mapping[str, Any]) -> float:
        """The scale of a cosine classifier's logits under the method ``options`` (1 if none)."""
        if self.classifier_scale_option is None:
            return 1.0
        name, default = self.classifier_scale_option
        value = options.get(name, default)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not (math.isfinite(value) and value > 0)
        ):
            raise ConfigError(
                f"Method {self.name!r}: method_options {name}={value!r} must be a number > 0 "
                f"(default {default})."
            )
        return float(value)


def embedding_method(
    name: str,
    summary: str,
    reference: str,
    build_objective: Callable[[ObjectiveContext], Objective] | None,
    **changes: Any,
) -> MethodSpec:
    """A metric-learning recipe: projected, L2-normalised embedding, P×Q stratified batches,
    kNN prediction; ``changes`` overrides any of these."""
    defaults: dict[str, Any] = dict(
        embedding="projected",
        normalize_embedding=True,
        classifier=False,
        sampler="stratified",
        prediction="knn",
    )
    return MethodSpec(name, summary, reference, build_objective, **{**defaults, **changes})


def softmax_method(
    name: str,
    summary: str,
    reference: str,
    build_objective: Callable[[ObjectiveContext], Objective],
    **changes: Any,
) -> MethodSpec:
    """A classifier recipe: a linear softmax head on the pooled backbone feature (which is also
    the embedding kept for evidence), shuffled batches, softmax prediction."""
    defaults: dict[str, Any] = dict(
        embedding="pooled",
        normalize_embedding=False,
        classifier=True,
        sampler="shuffle",
        prediction="softmax",
    )
    return MethodSpec(name, summary, reference, build_objective, **{**defaults, **changes})


_METHODS: dict[str, MethodSpec] = {}


def register_method(spec: MethodSpec) -> MethodSpec:
    if spec.name in _METHODS:
        raise ValueError(f"method {spec.name!r} is registered twice")
    _METHODS[spec.name] = spec
    return spec


def get_method(name: str) -> MethodSpec:
    _ensure_builtin_methods()
    try:
        return _METHODS[name]
    except KeyError:
        raise ConfigError(f"Unknown method {name!r}. " + did_you_mean(name, _METHODS)) from None


def list_methods() -> list[MethodSpec]:
    _ensure_builtin_methods()
    return [_METHODS[name] for name in sorted(_METHODS)]


def create_objective(name: str, context: ObjectiveContext) -> Objective:
    spec = get_method(name)
    if spec.build_objective is None:
        raise ConfigError(f"Method {name!r} does not train; it has no objective.")
    return spec.build_objective(context)


def _ensure_builtin_methods() -> None:
    # Imported lazily so that registry.py stays importable by the recipe modules themselves.
    import medknn.methods.recipes  # noqa: F401
    import medknn.methods.recipes_bstriplet  # noqa: F401
    import medknn.methods.recipes_constellation  # noqa: F401
    import medknn.methods.recipes_imbalance  # noqa: F401
