"""From a config to tensors: load the data, decode it once, split it (or reuse the run's split)."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from medknn.data import (
    CachedImageDataset,
    ImageTable,
    MultiViewTransform,
    Split,
    build_transforms,
    decode_images,
    few_shot_indices,
    load_dataset,
    make_split,
    resize_size_for,
    thumbnail_features,
)
from medknn.errors import DataError
from medknn.io import atomic_write_json, read_json
from medknn.methods import MethodSpec
from medknn.runs.config import TrainConfig
from medknn.runs.run_dir import RunDir
from medknn.runs.run_manifest import refresh_manifest
from medknn.runs.training_data import Part, TrainingData


@dataclass
class PreparedData:
    """A decoded data set with its split; hands out datasets with train or eval transforms (the
    image kind of ``TrainingData``)."""

    table: ImageTable
    images: np.ndarray
    split: Split
    image_size: int
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    std: tuple[float, ...] = (0.5, 0.5, 0.5)

    @property
    def class_names(self) -> list[str]:
        return list(self.table.class_names)

    @property
    def in_features(self) -> None:
        return None  # images: the backbone decides its input

    def indices(self, part: Part) -> np.ndarray:
        return getattr(self.split, part)

    def labels(self, part: Part) -> np.ndarray:
        return self.table.labels[self.indices(part)]

    def ids(self, part: Part) -> list[str]:
        return [self.table.ids[i] for i in self.indices(part)]

    def class_counts(self, part: Part = "train") -> np.ndarray:
        return self.table.class_counts(self.indices(part))

    def cluster_features(self, positions: np.ndarray) -> np.ndarray:
        """8×8 grey thumbnails of the training images at ``positions``."""
        return thumbnail_features(self.images, self.indices("train")[positions])

    def normalized_for(self, mean: tuple[float, ...], std: tuple[float, ...]) -> PreparedData:
        """The same data, normalised the way a backbone's weights expect."""
        return replace(self, mean=tuple(mean), std=tuple(std))

    def dataset(
        self, part: Part, *, augment: bool, augmentation: str = "standard", views: int = 1
    ) -> CachedImageDataset:
        """``part`` with the training transforms of kind ``augmentation`` (``augment=True``) or
        the evaluation ones; ``views > 1`` makes each item V independently augmented images
        (V×C×H×W), for contrastive losses."""
        transform = build_transforms(
            self.image_size,
            train=augment,
            mean=self.mean,
            std=self.std,
            augmentation=augmentation,
        )
        if views > 1:
            transform = MultiViewTransform(transform, views=views)
        return CachedImageDataset(self.images, self.table.labels, self.indices(part), transform)

    def training_dataset(
        self, spec: MethodSpec, augmentation: str | None = None
    ) -> CachedImageDataset:
        """The training part as ``spec`` trains on it: ``augmentation`` (default: the method's
        own) and the method's number of views."""
        return self.dataset(
            "train", augment=True, augmentation=augmentation or spec.augmentation, views=spec.views
        )


def training_augmentation(config: TrainConfig, spec: MethodSpec) -> str:
    """The preset a run augments with: ``"method"`` is the method's paper augmentation;
    ``"auto"`` keeps a method's own special one (SupCon's contrastive views) and otherwise takes
    the ``light`` preset; any other value names a preset of ``medknn.data.AUGMENTATIONS``
    (checked by ``TrainConfig``)."""
    if config.augmentation == "method":
        return spec.augmentation
    if config.augmentation == "auto":
        return spec.augmentation if spec.augmentation != "standard" else "light"
    return config.augmentation


def prepare_data(
    config: TrainConfig,
    run_dir: RunDir | None,
    *,
    progress: bool = True,
) -> PreparedData:
    """Load and decode the configured data; the split is saved to (or read from) ``run_dir``."""
    table, images = decode_data(config, progress=progress)
    if run_dir is not None and run_dir.split.exists():
        split = Split.from_dict(read_json(run_dir.split), table)
    else:
        split = make_split(
            table,
            config.split,
            seed=config.resolved_split_seed,
            val_fraction=config.val_fraction,
            test_fraction=config.test_fraction,
        )
        if config.shots is not None:
            # Drawn with the run's seed from a split made with split_seed: runs of one seed share
            # the draw, and seeds share the test set. split.json keeps only the drawn images.
            train = few_shot_indices(
                table.labels, split.train, config.shots, config.seed, class_names=table.class_names
            )
            split = replace(split, train=train)
    prepared = PreparedData(table, images, split, config.image_size)
    if run_dir is not None:
        save_data_record(prepared, config, run_dir)
    return prepared


def decode_data(config: TrainConfig, *, progress: bool = True) -> tuple[ImageTable, np.ndarray]:
    """The configured data set and its images, decoded once at the run's cache size (readable
    rows only, unless ``strict_images``)."""
    table = load_dataset(config.data, download=config.download, **config.data_options)
    return decode_images(
        table, resize_size_for(config.image_size), strict=config.strict_images, progress=progress
    )


def whole_data(config: TrainConfig, *, progress: bool = True) -> PreparedData:
    """Every decoded image of the configured data as the ``train`` part (no split): for passes
    over the whole set, such as feature extraction."""
    table, images = decode_data(config, progress=progress)
    everything = Split(
        train=np.arange(len(table)), val=np.arange(0), test=np.arange(0), strategy="all", seed=0
    )
    return PreparedData(table, images, everything, config.image_size)


def save_data_record(prepared: TrainingData, config: TrainConfig, run_dir: RunDir) -> None:
    """Write ``split.json`` (once: a run keeps its split) and the ``data.json`` summary, for
    images and feature vectors alike."""
    run_dir.create()
    if run_dir.split.exists():
        _check_saved_split(prepared, run_dir)
    else:
        atomic_write_json(run_dir.split, prepared.split.to_dict(prepared.table))
    summary = describe_data(prepared)
    if config.shots is not None:
        summary["few_shot"] = {"shots": config.shots, "seed": config.seed}
    if run_dir.data.exists() and _same_json(run_dir.data, summary):
        return  # a finished run's record (and its manifest entry) stays as it is
    atomic_write_json(run_dir.data, summary)
    refresh_manifest(run_dir, run_dir.data)


def _check_saved_split(prepared: TrainingData, run_dir: RunDir) -> None:
    """A resumed run trains and is scored on the split it started with. Images are split from
    ``split.json`` itself; data handed in already split (feature vectors) must match it."""
    saved = Split.from_dict(read_json(run_dir.split), prepared.table)
    for part in ("train", "val", "test"):
        if not np.array_equal(getattr(saved, part), prepared.indices(part)):
            raise DataError(
                f"{run_dir.path} was started on another split of its data (its {part} part "
                f"differs from {run_dir.split.name}). Split it as before (the same seed, "
                "split_seed and split options), or train into a new --out."
            )


def _same_json(path: Path, value: dict) -> bool:
    try:
        return read_json(path) == json.loads(json.dumps(value, default=str))
    except ValueError:
        return False


def describe_data(prepared: TrainingData) -> dict:
    """The data summary saved with a run: classes, counts per split, unreadable images; for
    feature vectors their length (``in_features``), which loading the run's MLP needs."""
    names = prepared.class_names
    summary = {
        "name": prepared.table.name,
        "source": prepared.table.source,
        "class_names": names,
        "split_strategy": prepared.split.strategy,
        "counts": {
            part: dict(zip(names, prepared.class_counts(part).tolist(), strict=True))
            for part in ("train", "val", "test")
        },
        "skipped_images": dict(prepared.table.dropped),
    }
    if prepared.in_features is not None:
        summary["in_features"] = prepared.in_features
    return summary


def check_class_sizes(prepared: TrainingData, *, needed: int, method: str, why: str) -> None:
    """Refuse a class with fewer training images than a method needs, naming the fix."""
    counts = prepared.class_counts("train")
    for name, count in zip(prepared.class_names, counts, strict=True):
        if count < needed:
            raise DataError(
                f"Class {name!r} has {count} training image(s) but {method} needs at least "
                f"{needed} ({why}). Add images of {name!r}, merge {name!r} into a related class, "
                "or train a method that does not mine pairs (e.g. weighted-ce)."
            )
