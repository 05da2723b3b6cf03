"""What ``medknn tune`` searches: the settings every method shares (here, in one function), the
method's own options (declared beside its recipe as ``MethodSpec.search_space``), and the user's
fixed options, which are never searched."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from medknn.methods import MethodSpec, get_method
from medknn.runs import TrainConfig

# Image sizes a study may try; the budget caps them (image_sizes_for).
IMAGE_SIZES = (32, 48, 64, 96, 128)
# A trial trains for this share of the epochs `epochs: null` gives the method on this data.
EPOCH_SCALES = (0.25, 0.5, 1.0)
AUGMENTATIONS = ("auto", "standard", "trivialaugment")


def image_sizes_for(budget_seconds: float) -> tuple[int, ...]:
    """Image sizes worth trying on a budget: a CPU hour trains 32–64 px well, larger sizes only
    pay off with several hours (or a GPU) for enough trials."""
    largest = 64 if budget_seconds < 4 * 3600 else 96 if budget_seconds < 12 * 3600 else 128
    return tuple(size for size in IMAGE_SIZES if size <= largest)


@dataclass(frozen=True)
class StudySettings:
    """What defines a study; a rerun must ask for the same (budget, trials, workers and storage
    may change)."""

    base: dict[str, Any]  # data, split, seed, split_seed and the user's fixed options
    fixed: dict[str, Any]  # the options the user gave (--set / --config): not searched
    methods: list[str]
    metric: str
    image_sizes: list[int]
    default_epochs: dict[str, int] = field(default_factory=dict)  # epochs: null, per method
    asked: list[str] = field(default_factory=list)  # the methods asked for (some may be skipped)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class SearchTrial:
    """An Optuna trial whose ``suggest_*`` give the user's value, without searching it, for an
    option the user fixed; a parameter ``"<method>/<option>"`` stands for ``option`` (a config
    key or a method option)."""

    def __init__(self, trial: Any, fixed: Mapping[str, Any]) -> None:
        self.trial = trial
        self.fixed = dict(fixed)
        self.fixed.update(fixed.get("method_options") or {})

    def _fixed(self, name: str) -> tuple[bool, Any]:
        key = name.rsplit("/", 1)[-1]
        return key in self.fixed, self.fixed.get(key)

    def suggest_float(
        self, name: str, low: float, high: float, *, log: bool = False, step: float | None = None
    ) -> float:
        is_fixed, value = self._fixed(name)
        return value if is_fixed else self.trial.suggest_float(name, low, high, log=log, step=step)

    def suggest_int(
        self, name: str, low: int, high: int, *, log: bool = False, step: int = 1
    ) -> int:
        is_fixed, value = self._fixed(name)
        return value if is_fixed else self.trial.suggest_int(name, low, high, log=log, step=step)

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        is_fixed, value = self._fixed(name)
        return value if is_fixed else self.trial.suggest_categorical(name, list(choices))


def common_search_space(
    trial: SearchTrial, spec: MethodSpec, *, image_sizes: Sequence[int], default_epochs: int
) -> dict[str, Any]:
    """The settings every method shares: learning rate, the pretrained backbone's lr scale,
    augmentation preset, image size, epochs (a share of the method's default), oversampling and,
    for methods that draw shuffled batches, class-balanced batches instead."""
    overrides: dict[str, Any] = {
        "lr": trial.suggest_float("lr", 1e-4, 1e-2, log=True),
        "backbone_lr_scale": trial.suggest_float("backbone_lr_scale", 0.05, 1.0, log=True),
        "image_size": trial.suggest_categorical("image_size", list(image_sizes)),
    }
    if "epochs" not in trial.fixed and default_epochs > 0:
        scale = trial.suggest_categorical("epochs_scale", list(EPOCH_SCALES))
        overrides["epochs"] = max(1, math.ceil(default_epochs * scale))
    if spec.augmentation == "standard":  # a contrastive method keeps its own two-view augmentation
        overrides["augmentation"] = trial.suggest_categorical("augmentation", AUGMENTATIONS)
    if spec.resample == "none":
        overrides["resample"] = trial.suggest_categorical("resample", ["none", "oversample"])
    if spec.sampler == "shuffle" and spec.views == 1:
        overrides["sampler"] = trial.suggest_categorical("sampler", ["shuffle", "balanced"])
    return overrides


def trial_config(settings: StudySettings, trial: Any) -> TrainConfig:
    """The run config of ``trial``: the study's base, the common and the method's searched
    settings, then the user's fixed options, which always win."""
    search = SearchTrial(trial, settings.fixed)
    method = search.suggest_categorical("method", settings.methods)
    spec = get_method(method)
    values = dict(settings.base)
    values.update(
        common_search_space(
            search,
            spec,
            image_sizes=settings.image_sizes,
            default_epochs=settings.default_epochs.get(method, 0),
        )
    )
    own = spec.search_space(search) if spec.search_space is not None else {}
    options = {**own.pop("method_options", {}), **(settings.fixed.get("method_options") or {})}
    values.update(own)
    values.update({key: value for key, value in settings.fixed.items() if key != "method_options"})
    values.update(method=method, method_options=options)
    if spec.next_stage is not None and "stage2_epochs" not in settings.fixed:
        values["stage2_epochs"] = values.get("epochs")
    return TrainConfig.from_dict(values, source=f"trial {trial.number}")


def planned_epochs(config: TrainConfig) -> int:
    """The epochs a trial's config trains in all (both stages of a two-stage method)."""
    epochs = config.epochs or 0
    if get_method(config.method).next_stage is not None:
        epochs += config.stage2_epochs if config.stage2_epochs is not None else epochs
    return epochs
