"""The method registry: recipes naming an objective, a sampler, a head, a prediction rule and
what they need (options, views, augmentation, stages, the run they start from, feature-vector
support). It imports no recipe: ``medknn.methods`` imports the built-in recipe modules, which
register themselves here (timm's ``_registry.py`` / ``models/__init__.py`` split)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from medknn.errors import ConfigError, did_you_mean

if TYPE_CHECKING:  # both import torch; the registry itself is read without it
    from medknn.methods.embedding_bank import TrainingSetEmbedder
    from medknn.methods.objectives import Objective


# Config options that predate method options: a method that declares an option of the same name
# takes the top-level value (``--k``, ``--m``, ``--margin``, ``--set num_positives=7``) unless
# ``method_options`` names it too.
TOP_LEVEL_OPTIONS = ("num_positives", "num_negatives", "margin")


@dataclass(frozen=True)
class MethodOption:
    """One hyper-parameter a method declares: its name, default, kind and range.

    ``kind``: ``"number"`` (a finite float in [``low``, ``high``], ``low`` excluded with
    ``low_open``), ``"integer"`` (a whole number in that range), ``"bool"`` or ``"choice"`` (one
    of ``choices``); ``choices`` are accepted by the other kinds too (e.g. ``"auto"``, ``None``).
    ``expects`` replaces the generated description of valid values in error messages.
    """

    name: str
    default: Any
    help: str
    kind: Literal["number", "integer", "bool", "choice"] = "number"
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple[Any, ...] = ()
    expects: str | None = None

    def _range(self) -> str:
        if self.low is not None and self.high is not None:
            return f" in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}]"
        if self.low is not None:
            return f" {'>' if self.low_open else '>='} {self.low:g}"
        return ""

    def describe(self) -> str:
        """``temperature (number > 0, default 0.1): the loss's temperature``."""
        if self.kind == "choice":
            kind = " | ".join(_show(c) for c in self.choices)
        else:
            kind = ("whole number" if self.kind == "integer" else self.kind) + self._range()
            kind += "".join(f" | {_show(c)}" for c in self.choices)
        return f"{self.name} ({kind}, default {_show(self.default)}): {self.help}"

    def check(self, method: str, value: Any) -> Any:
        """``value`` if it is valid (numbers as float, whole numbers as int); else a
        ConfigError naming the method, the option, the value and what it accepts."""
        if any(value is c or (type(value) is type(c) and value == c) for c in self.choices):
            return value
        prefix = f"Method {method!r}: method_options {self.name}={value!r}"
        if self.kind == "bool" and isinstance(value, bool):
            return value
        numeric = self.kind in ("number", "integer")
        whole = isinstance(value, int) and not isinstance(value, bool)
        is_number = whole or (isinstance(value, float) and self.kind == "number")
        if numeric and is_number:
            in_range = math.isfinite(value)
            if self.low is not None:
                in_range = in_range and (value > self.low if self.low_open else value >= self.low)
            if self.high is not None:
                in_range = in_range and value <= self.high
            if in_range:
                return float(value) if self.kind == "number" else int(value)
        if self.expects is not None:
            raise ConfigError(f"{prefix} must be {self.expects}.")
        if self.kind == "bool":
            raise ConfigError(f"{prefix} must be true or false (default {_show(self.default)}).")
        if self.kind == "choice":
            raise ConfigError(
                f"{prefix} is unknown; use {' or '.join(_show(c) for c in self.choices)}. "
                + did_you_mean(str(value), [str(c) for c in self.choices])
            )
        what = "a finite number" if is_number else "a number"
        if self.kind == "integer":
            what = "a whole number"
        raise ConfigError(
            f"{prefix} must be {what}{self._range()} (default {_show(self.default)})."
        )


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else repr(value) if isinstance(value, str) else str(value)


@dataclass(frozen=True)
class ObjectiveContext:
    """What an objective may depend on: the method's hyper-parameters and the training data.

    ``options`` holds the method's options (``TrainConfig.method_options``); ``num_positives``,
    ``num_negatives`` and ``margin`` are the config's top-level values of the options of those
    names. :func:`create_objective` hands the factory a context whose ``options`` are complete
    and checked (``MethodSpec.resolve_options``) and whose ``stats`` are the method's.
    ``training_set`` embeds the whole training set with a network (for objectives that search
    neighbours in it).
    """

    class_counts: np.ndarray
    num_positives: int = 5
    num_negatives: int = 5
    margin: float = 0.2
    options: Mapping[str, Any] = field(default_factory=dict)
    epochs: int | None = None  # the run's length, for schedules such as LDAM's re-weighting
    training_set: TrainingSetEmbedder | None = None
    label_smoothing: float = 0.0  # for the softmax cross entropy of classifier recipes
    stats: tuple[str, ...] = ()  # the loss attributes the objective logs per batch

    def option(self, name: str, default: Any = None) -> Any:
        return self.options.get(name, default)

    @property
    def top_level(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in TOP_LEVEL_OPTIONS}


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
    the declared option holding a cosine classifier's scale (LDAM's s), read by
    :meth:`classifier_scale`.
    ``options``: the method's typed hyper-parameters (``method_options``; ``num_positives``,
    ``num_negatives`` and ``margin`` also from the config's top level), checked in one place,
    :meth:`resolve_options`. ``stats``: the loss attributes its objective logs per batch.
    ``views``: augmented views of each training image per batch (2 for contrastive learning);
    ``augmentation``: the training transforms, ``"standard"`` (crop, flip) or ``"contrastive"``
    (random resized crop, flip, colour jitter, greyscale).
    ``resample``: ``"oversample"`` trains on the training set extended with copies of minority
    images until every class has the majority's count (``TrainConfig.resample`` can ask for it too).
    ``freeze_backbone``: train only the head and classifier; the backbone's weights and BatchNorm
    statistics stay exactly as loaded (``--init-from``).
    ``next_stage``: a two-stage method: this spec is stage 1, and the named method (trained with
    ``--init-from`` the stage-1 run) is stage 2, whose run is the method's result.
    ``init_from_methods``: with ``requires_init_from``, the methods whose finished run (for a
    two-stage method its stage 1, ``RUN/stage1``) this one starts from; a benchmark trains the
    first of them when the entry names no ``init_from``.
    ``not_on_vectors``: why the method cannot train on feature vectors (``medknn
    features-benchmark``), or None when it can; :attr:`vector_problem` also derives a reason from
    the other fields (several views, a special augmentation, another stage, no training).
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
    classifier_scale_option: str | None = None
    views: int = 1
    augmentation: Literal["standard", "contrastive"] = "standard"
    resample: Literal["none", "oversample"] = "none"
    freeze_backbone: bool = False
    next_stage: str | None = None
    init_from_methods: tuple[str, ...] = ()
    not_on_vectors: str | None = None
    options: tuple[MethodOption, ...] = ()
    stats: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.requires_init_from and not self.init_from_methods:
            raise ValueError(f"method {self.name!r} requires --init-from: name init_from_methods")
        names = [option.name for option in self.options]
        if self.classifier_scale_option not in (None, *names):
            raise ValueError(f"method {self.name!r}: declare {self.classifier_scale_option!r}")

    def resolve_options(
        self, options: Mapping[str, Any] | None, top_level: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Every declared option with its value: ``options`` (``method_options``), else the
        config's ``top_level`` value of that name, else its default. An undeclared option, a bad
        value, or one option given two different ways is a ConfigError."""
        options, top_level = dict(options or {}), dict(top_level or {})
        declared = {option.name: option for option in self.options}
        unknown = sorted(set(options) - set(declared))
        if unknown:
            accepted = ", ".join(declared) or "none"
            raise ConfigError(
                f"Method {self.name!r} has no option {unknown[0]!r} (method_options accepts: "
                f"{accepted})."
            )
        resolved = {}
        for name, option in declared.items():
            value = top_level.get(name, option.default)
            if name in options:
                if name in top_level and value not in (option.default, options[name]):
                    raise ConfigError(
                        f"Method {self.name!r}: {name} is {value!r} at the top level and "
                        f"{options[name]!r} in method_options; give it once."
                    )
                value = options[name]
            resolved[name] = option.check(self.name, value)
        return resolved

    # ``medknn tune``: trial -> config overrides (its own options; names "<method>/<option>"),
    # called with an Optuna trial or anything with its suggest_* methods; None: none searched.
    search_space: Callable[[Any], dict[str, Any]] | None = None

    @property
    def trains(self) -> bool:
        return self.build_objective is not None

    @property
    def vector_problem(self) -> str | None:
        """Why this method cannot run on feature vectors, or None if it can."""
        if self.not_on_vectors is not None:
            return self.not_on_vectors
        if not self.trains:
            return "it does not train (on vectors, kNN on the features as given is knn-basic)"
        if self.requires_init_from:
            return "it starts from another run's trained backbone (--init-from)"
        if self.views > 1 or self.augmentation != "standard":
            return (
                f"it trains on {self.views} {self.augmentation} augmented views of each image; "
                "a feature vector has one view and no augmentation"
            )
        if self.next_stage is not None:
            return f"it trains in two stages (then {self.next_stage!r}) on images"
        return None

    @property
    def init_from_hint(self) -> str:
        """The run ``--init-from`` expects, for messages: ``a finished 'weighted-ce' or 'ce'
        run``, ``a finished stage-1 run of 'supcon', e.g. RUN/stage1``."""
        if not self.init_from_methods:
            return "a finished run"
        names = " or ".join(repr(m) for m in self.init_from_methods)
        if get_method(self.init_from_methods[0]).next_stage is not None:
            return f"a finished stage-1 run of {names}, e.g. RUN/stage1"
        return f"a finished {names} run"

    def classifier_scale(self, options: Mapping[str, Any]) -> float:
        """The scale of a cosine classifier's logits under the method ``options`` (1 if none)."""
        if self.classifier_scale_option is None:
            return 1.0
        return float(self.resolve_options(options)[self.classifier_scale_option])


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
    try:
        return _METHODS[name]
    except KeyError:
        raise ConfigError(f"Unknown method {name!r}. " + did_you_mean(name, _METHODS)) from None


def list_methods() -> list[MethodSpec]:
    return [_METHODS[name] for name in sorted(_METHODS)]


def create_objective(name: str, context: ObjectiveContext) -> Objective:
    """The objective of method ``name``; its factory gets ``context`` with the method's options
    resolved and checked and its logged stats."""
    spec = get_method(name)
    if spec.build_objective is None:
        raise ConfigError(f"Method {name!r} does not train; it has no objective.")
    options = spec.resolve_options(context.options, context.top_level)
    return spec.build_objective(replace(context, options=options, stats=spec.stats))
