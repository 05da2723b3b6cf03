"""The configuration of a training run, validated with messages that say how to fix a value."""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from medknn.errors import ConfigError, did_you_mean
from medknn.runs.knn_index_options import KNNSettings, check_knn_index

OPTIMIZERS = ("sgd", "adam", "adamw")
_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")
RESAMPLING = ("none", "oversample")
SCHEDULES = ("cosine", "step")
MIN_UPDATES, MIN_EPOCHS, MAX_AUTO_EPOCHS = 600, 12, 100  # epochs: None
DECISIONS = ("validated", "plain")
DECISION_METRICS = ("mcr", "accuracy", "macro_f1", "sensitivity_at_specificity")
TTA_MODES = ("auto", "none", "flips", "crops")
MEMORY_FORMATS = ("auto", "channels_last", "contiguous")
PRECISIONS = ("fp32", "bf16")
CLUSTER_DRAWS = ("proportional", "equal")  # data/cluster_sampler.py

# A run's config.yaml written before an option existed trained as if it had these values; a
# saved config is completed with them (not with today's defaults), so an old run is read back
# as it was trained, and a benchmark that resumes it sees no change of settings.
OPTIONS_BEFORE_THE_RECIPE: dict[str, Any] = {
    "schedule": "step",
    "warmup_epochs": 0,
    "backbone_lr_scale": 1.0,
    "grad_clip": None,
    "label_smoothing": 0.0,
    "augmentation": "method",
    "ema_decay": None,
    "patience": None,
    "lp_epochs": 0,
    "decision": "plain",
    "decision_metric": "mcr",
    "min_specificity": 0.9,
    "tta": "none",
    "memory_format": "contiguous",
}
# Feature-vector runs (backbone: mlp) were scored with their method's plain rule and no TTA
# until they went through run_training.train, whatever their config.yaml says: from the day
# `decision` and `tta` existed it recorded their defaults, decision: validated and tta: auto.
# A vector run's config has recorded tta: none since (runs.training_data.vector_config), so
# any other tta marks one of the older runs, read back as it was scored.
VECTOR_RUNS_BEFORE_THE_PIPELINE = {"decision": "plain", "tta": "none"}


@dataclass
class TrainConfig:
    """Everything that determines a run; saved resolved as ``config.yaml`` in the run directory."""

    data: str = "breastmnist"
    data_options: dict[str, Any] = field(default_factory=dict)
    download: bool = False  # fetch a missing MedMNIST file (checksummed) into the data root
    split: str = "auto"
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    split_seed: int | None = None  # None: seed; fixed, it keeps one split across seeds
    shots: int | None = None  # few-shot: train on this many images per class (drawn with seed)
    image_size: int = 64
    method: str = "deepknn"
    method_options: dict[str, Any] = field(default_factory=dict)  # a method's own options
    sampler: str | None = None  # None: the method's own; stratified, shuffle, cluster, balanced
    cluster_groups: int = 2  # sampler "cluster": k-means groups per class (BSTriplet paper: 2)
    cluster_draw: str = "proportional"  # sampler "cluster": by group size, or "equal" per group
    resample: str = "none"  # "oversample": copy minority images up to the majority's count
    backbone: str = "tf_efficientnet_lite0"
    pretrained: bool | None = None  # None: ImageNet weights when they ship offline for the backbone
    weights: str | None = None
    small_input: bool | None = None  # None: on for images of 32 px or less
    embedding_dim: int | None = 128
    epochs: int | None = None  # None: enough for MIN_UPDATES optimiser steps (resolved_epochs)
    stage2_epochs: int | None = None  # two-stage methods (supcon): None = epochs
    stage2_lr: float | None = None  # two-stage methods: the stage-2 classifier's lr; None = lr
    batch_size: int = 90
    classes_per_batch: int = 9
    samples_per_class: int | None = None  # None: batch_size // classes in a batch
    optimizer: str = "adamw"
    lr: float = 1e-3  # of the new layers; a pretrained backbone's is lr * backbone_lr_scale
    momentum: float = 0.9
    weight_decay: float = 0.05
    schedule: str = "cosine"  # cosine decay after linear warm-up, or "step" (× lr_gamma / lr_step)
    warmup_epochs: int = 1
    lr_step: int = 20
    lr_gamma: float = 0.5
    # A pretrained backbone's learning rate relative to the new layers'. 1.0 was chosen on the
    # validation splits of HAM10000 and PneumoniaMNIST over 0.3 (docs/results/quality.md).
    backbone_lr_scale: float = 1.0
    grad_clip: float | None = None  # max global gradient norm
    label_smoothing: float = 0.1  # softmax methods' cross entropy
    augmentation: str = "auto"  # a preset of data/transforms.py; "method": the paper's own
    ema_decay: float | None = 0.998  # weight EMA (timm ModelEmaV3), kept when it validates better
    patience: int | None = None  # validations without improvement before stopping; None: never
    lp_epochs: int = 0  # linear probing: epochs with the backbone frozen before fine-tuning all
    num_positives: int = 5
    num_negatives: int = 5
    margin: float = 0.2
    k_predict: int = 5
    knn_weights: str = "uniform"
    decision: str = "validated"  # "plain": the method's own rule (majority vote, argmax)
    decision_metric: str = "mcr"  # what the decision rule is chosen for on the validation split
    min_specificity: float = 0.9  # for decision_metric sensitivity_at_specificity (two classes)
    tta: str = "auto"  # test-time augmentation: none, flips, crops; auto: none or flips, on val
    knn_index: str = "exact"  # or the approximate "ivf", "hnsw" (faiss; docs/scaling.md)
    knn_index_options: dict[str, Any] = field(default_factory=dict)  # e.g. {nprobe: 32}
    init_from: str | None = None
    seed: int = 0
    device: str = "auto"
    # Conv weights and image batches in channels-last memory: 1.5x faster training of Lite0 on
    # CPU (docs/benchmarks/cpu_speed.md). auto: channels-last for image backbones.
    memory_format: str = "auto"
    # bf16 autocast of the forward pass while training: 1.6x faster for ResNet-18 on this CPU,
    # no faster for Lite0 (docs/benchmarks/cpu_speed.md); a numerics change, so asked for.
    precision: str = "fp32"
    num_workers: int = 0
    threads: int | None = None  # torch/faiss threads of the run (None: torch's default)
    deterministic: bool = False  # torch.use_deterministic_algorithms during the run
    max_batches_per_epoch: int | None = None
    strict_images: bool = False
    validate_every: int = 1

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        self._check_types()
        _check_range("image_size", self.image_size, 28, 224, "medknn supports 28–224 px inputs")
        if self.epochs is not None:
            _check_range("epochs", self.epochs, 0, 100_000)
        _check_range("batch_size", self.batch_size, 2, 100_000)
        _check_range("classes_per_batch", self.classes_per_batch, 2, 100_000)
        if self.samples_per_class is not None:
            _check_range("samples_per_class", self.samples_per_class, 2, 100_000)
        if self.shots is not None:
            _check_range("shots", self.shots, 1, 100_000, "images per class, e.g. 20")
        if self.split_seed is not None:
            _check_range("split_seed", self.split_seed, 0, 2**32 - 1)
        _check_range("cluster_groups", self.cluster_groups, 1, 1000, "k-means groups per class")
        _check_range("num_positives", self.num_positives, 1, 1000)
        _check_range("num_negatives", self.num_negatives, 1, 1000)
        _check_range("k_predict", self.k_predict, 1, 1000)
        _check_range("lr_step", self.lr_step, 1, 100_000)
        _check_range("validate_every", self.validate_every, 1, 100_000)
        if not self.lr > 0:
            raise ConfigError(f"lr={self.lr} must be positive, e.g. --lr 0.01.")
        if self.margin < 0:
            raise ConfigError(f"margin={self.margin} must be ≥ 0, e.g. --margin 0.2.")
        # Finite and in range, checked with the rest before anything is written: inf or a
        # negative value would only fail (or silently diverge) once training has started.
        _check_number("lr", self.lr, 0, math.inf, "e.g. --lr 0.01", low_open=True)
        _check_number("margin", self.margin, 0, math.inf, "e.g. --margin 0.2")
        _check_number("momentum", self.momentum, 0, 1, "SGD momentum, e.g. 0.9", high_open=True)
        _check_number("weight_decay", self.weight_decay, 0, math.inf, "e.g. 5e-4")
        _check_number("lr_gamma", self.lr_gamma, 0, 1, "the lr's factor per lr_step, e.g. 0.5")
        if self.lr_gamma == 0:
            raise ConfigError("lr_gamma=0 would stop training after lr_step epochs; e.g. 0.5.")
        _check_range("seed", self.seed, 0, 2**32 - 1, "numpy's seeds")
        _check_range("num_workers", self.num_workers, 0, 1024, "0 loads data in the main process")
        if self.threads is not None:
            _check_range("threads", self.threads, 1, 1024, "e.g. 1 for a run that repeats exactly")
        if self.max_batches_per_epoch is not None:
            _check_range(
                "max_batches_per_epoch",
                self.max_batches_per_epoch,
                1,
                10**9,
                "null for every batch; 0 would report an untrained network as a finished run",
            )
        if not isinstance(self.device, str) or not _DEVICE.fullmatch(self.device):
            raise ConfigError(
                f"device={self.device!r} is unknown: use auto, cpu, cuda, cuda:N or mps."
            )
        if not 0 <= self.val_fraction < 1 or not 0 < self.test_fraction < 1:
            raise ConfigError(
                f"val_fraction={self.val_fraction} and test_fraction={self.test_fraction} must lie "
                "in [0, 1) and (0, 1)."
            )
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(
                f"Unknown optimizer {self.optimizer!r}. " + did_you_mean(self.optimizer, OPTIMIZERS)
            )
        if self.resample not in RESAMPLING:
            raise ConfigError(
                f"resample={self.resample!r}: use 'none' or 'oversample' (copies of minority "
                "images until every class has the majority's count)."
            )
        if self.stage2_epochs is not None:
            _check_range("stage2_epochs", self.stage2_epochs, 0, 100_000)
        if self.stage2_lr is not None and not 0 < self.stage2_lr < math.inf:
            raise ConfigError(f"stage2_lr={self.stage2_lr} must be positive (finite), e.g. 0.1.")
        self._check_recipe()
        if self.knn_weights not in ("uniform", "distance"):
            raise ConfigError(f"knn_weights={self.knn_weights!r}: use 'uniform' or 'distance'.")
        check_knn_index(self.knn_index, self.knn_index_options)
        if self.embedding_dim is not None:
            _check_range("embedding_dim", self.embedding_dim, 2, 65_536)

    def _check_recipe(self) -> None:
        for name, choices in (
            ("schedule", SCHEDULES),
            ("decision", DECISIONS),
            ("decision_metric", DECISION_METRICS),
            ("tta", TTA_MODES),
            ("memory_format", MEMORY_FORMATS),
            ("precision", PRECISIONS),
            ("cluster_draw", CLUSTER_DRAWS),
        ):
            value = getattr(self, name)
            if value not in choices:
                raise ConfigError(
                    f"{name}={value!r} is unknown. " + did_you_mean(str(value), choices)
                )
        from medknn.data.transforms import AUGMENTATIONS  # torchvision: only when checking

        augmentations = ("auto", "method", *AUGMENTATIONS)
        if self.augmentation not in augmentations:
            raise ConfigError(
                f"augmentation={self.augmentation!r} is unknown. "
                + did_you_mean(str(self.augmentation), augmentations)
            )
        _check_range("warmup_epochs", self.warmup_epochs, 0, 100_000)
        _check_range("lp_epochs", self.lp_epochs, 0, 100_000)
        if self.patience is not None:
            _check_range("patience", self.patience, 1, 100_000, "validations, e.g. 4")
        if not (math.isfinite(self.backbone_lr_scale) and 0 <= self.backbone_lr_scale <= 1):
            raise ConfigError(
                f"backbone_lr_scale={self.backbone_lr_scale} must lie in [0, 1] (0.1 trains a "
                "pretrained backbone ten times slower than the new layers; 1 at the same rate)."
            )
        if self.grad_clip is not None and not (
            math.isfinite(self.grad_clip) and self.grad_clip > 0
        ):
            raise ConfigError(f"grad_clip={self.grad_clip} must be a positive norm, e.g. 1.0.")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(
                f"label_smoothing={self.label_smoothing} must lie in [0, 1), e.g. 0.1."
            )
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise ConfigError(
                f"ema_decay={self.ema_decay} must lie in (0, 1), e.g. 0.998; null turns EMA off."
            )
        if not 0 < self.min_specificity < 1:
            raise ConfigError(
                f"min_specificity={self.min_specificity} must lie in (0, 1), e.g. 0.9."
            )

    def resolved_epochs(self, batches_per_epoch: int) -> int:
        """``epochs``, or when unset enough epochs for ``MIN_UPDATES`` optimiser steps (at
        least ``MIN_EPOCHS``, at most ``MAX_AUTO_EPOCHS``): a few hundred images get many
        passes, thousands get a dozen."""
        if self.epochs is not None:
            return self.epochs
        wanted = math.ceil(MIN_UPDATES / max(batches_per_epoch, 1))
        return min(max(wanted, MIN_EPOCHS), MAX_AUTO_EPOCHS)

    @property
    def knn(self) -> KNNSettings:
        """The run's kNN settings: K_p, vote weights, index type and options."""
        return KNNSettings(
            k=self.k_predict,
            weights=self.knn_weights,
            index=self.knn_index,
            index_options=dict(self.knn_index_options),
        )

    @property
    def resolved_split_seed(self) -> int:
        return self.seed if self.split_seed is None else self.split_seed

    def _check_types(self) -> None:
        """Every option has its declared type, so a value like ``lr=fast`` is named, not a crash."""
        hints = typing.get_type_hints(type(self))
        for option in dataclasses.fields(self):
            value = getattr(self, option.name)
            hint = hints[option.name]
            is_union = typing.get_origin(hint) in (typing.Union, types.UnionType)
            allowed = tuple(typing.get_origin(t) or t for t in (typing.get_args(hint) or [hint]))
            allowed = allowed if is_union else (typing.get_origin(hint) or hint,)
            if float in allowed and isinstance(value, int) and not isinstance(value, bool):
                continue  # 1 is a fine learning rate
            if isinstance(value, bool) and bool not in allowed:
                ok = False
            else:
                ok = value is None if value is None else isinstance(value, allowed)
            if not ok:
                names = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
                raise ConfigError(
                    f"Option {option.name}={value!r} must be {names}; "
                    f"e.g. --set {option.name}={_example(option)}"
                )

    @property
    def resolved_small_input(self) -> bool:
        return self.image_size <= 32 if self.small_input is None else self.small_input

    def stratified_batch_shape(self, num_classes: int) -> tuple[int, int]:
        """(P classes, Q images per class) of a stratified batch; Q fills ``batch_size``
        by default."""
        classes = min(self.classes_per_batch, num_classes)
        per_class = self.samples_per_class or max(2, self.batch_size // classes)
        return classes, per_class

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, source: str = "config") -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"{source}: unknown option {unknown[0]!r}. " + did_you_mean(unknown[0], known)
            )
        return cls(**values)

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        """A config file a user wrote: options it leaves out take today's defaults."""
        return cls.from_dict(_read_mapping(Path(path)), source=str(path))

    @classmethod
    def load_saved(cls, path: str | Path) -> TrainConfig:
        """A run's saved ``config.yaml``: options it predates take the values it trained with
        (``OPTIONS_BEFORE_THE_RECIPE``), not today's defaults; a feature-vector run from before
        vector runs honoured ``decision`` reads the plain rule it was scored with."""
        values = {**OPTIONS_BEFORE_THE_RECIPE, **_read_mapping(Path(path))}
        if values.get("backbone") == "mlp" and values.get("tta") != "none":
            values.update(VECTOR_RUNS_BEFORE_THE_PIPELINE)
        return cls.from_dict(values, source=str(path))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def replace(self, **changes: Any) -> TrainConfig:
        return self.from_dict({**self.to_dict(), **changes})


def _read_mapping(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"Config file {path} does not exist.")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path} must hold a mapping of option: value.")
    return values


def check_same_settings(
    saved: Path, config: TrainConfig, *, resumable: Collection[str], run: Path
) -> None:
    """Refuse to continue the run in ``run`` (whose config is the file ``saved``) with settings
    that differ from ``config`` other than the ``resumable`` ones, listing every change."""
    previous = TrainConfig.load_saved(saved).to_dict()
    changed = {
        key: (previous.get(key), value)
        for key, value in config.to_dict().items()
        if previous.get(key) != value and key not in resumable
    }
    if changed:
        listing = ", ".join(f"{k}: {a!r} → {b!r}" for k, (a, b) in changed.items())
        raise ConfigError(
            f"{run} holds a run with other settings ({listing}). Use a new --out, or delete "
            "that directory to start again."
        )


def _check_number(
    name: str,
    value: Any,
    low: float,
    high: float,
    hint: str,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """A finite number in [low, high] (open at an end when asked), or a ConfigError."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (low < value if low_open else low <= value)
    ok = ok and (value < high if high_open else value <= high)
    if not ok:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        where = (
            f"in {left}{low:g}, {high:g}{right}"
            if math.isfinite(high)
            else (f"> {low:g}" if low_open else f">= {low:g}")
        )
        raise ConfigError(f"{name}={value!r} must be a finite number {where} ({hint}).")


def _check_range(name: str, value: Any, low: float, high: float, why: str = "") -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        hint = f" ({why})" if why else ""
        raise ConfigError(f"{name}={value!r} must be a whole number in [{low}, {high}]{hint}.")


def _example(option: dataclasses.Field) -> str:
    default = (
        option.default_factory()  # type: ignore[misc]
        if option.default is dataclasses.MISSING
        else option.default
    )
    return yaml.safe_dump(default, default_flow_style=True).strip().removesuffix("\n...")
