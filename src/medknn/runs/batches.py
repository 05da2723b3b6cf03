"""The batch sampler a run uses: the method's own kind unless the config overrides it, over the
training set or, with oversampling, over its extension by copies of minority images."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

import numpy as np

from medknn.data import (
    ClassBalancedBatchSampler,
    ClusterBatchSampler,
    ShuffledBatchSampler,
    StratifiedBatchSampler,
    oversample_indices,
)
from medknn.errors import ConfigError, did_you_mean
from medknn.methods import MethodSpec
from medknn.runs.config import TrainConfig
from medknn.runs.prepare import check_class_sizes
from medknn.runs.training_data import TrainingData

SAMPLERS = ("stratified", "shuffle", "cluster", "balanced")


class BatchSampler(Protocol):
    """What the trainer needs: lists of dataset positions, a length, ``set_epoch``."""

    def __iter__(self) -> Iterator[list[int]]: ...
    def __len__(self) -> int: ...
    def set_epoch(self, epoch: int) -> None: ...


class OversampledBatchSampler:
    """Batches drawn by ``sampler`` over an extended list of training positions (``positions[i]``
    is the dataset position of item i), yielded as dataset positions: copies of an image are the
    same dataset item, and the split on disk is untouched."""

    def __init__(self, sampler: BatchSampler, positions: np.ndarray) -> None:
        self.sampler = sampler
        self.positions = np.asarray(positions, dtype=np.int64)

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.sampler:
            yield self.positions[batch].tolist()


def resolved_resample(config: TrainConfig, spec: MethodSpec) -> str:
    """``"oversample"`` if the method or the config asks for it, else ``"none"``."""
    return config.resample if config.resample != "none" else spec.resample


def build_batch_sampler(
    config: TrainConfig, spec: MethodSpec, prepared: TrainingData
) -> BatchSampler:
    """The sampler of ``config.sampler`` (or the method's own), over the training positions;
    with ``resample: oversample`` over the oversampled positions (each class copied up to the
    majority's count, the same extension every epoch: it depends on the seed only)."""
    labels = prepared.labels("train")
    if resolved_resample(config, spec) == "none":
        return _sampler(config, spec, prepared, np.arange(len(labels)))
    positions = oversample_indices(labels, seed=config.seed)
    return OversampledBatchSampler(_sampler(config, spec, prepared, positions), positions)


def _sampler(
    config: TrainConfig, spec: MethodSpec, prepared: TrainingData, positions: np.ndarray
) -> BatchSampler:
    """``stratified``: P classes × Q images per batch (in-batch mining needs positives);
    ``shuffle``: plain shuffled batches of ``batch_size`` (the BSTriplet paper's "RS");
    ``cluster``: ``batch_size`` images drawn from ``cluster_groups`` k-means groups per class,
    in proportion to the groups' sizes (the paper's "DM"), clustered on the data's
    ``cluster_features`` (8×8 grey thumbnails of images, feature vectors as they are);
    ``balanced``: each image of a batch from a class drawn uniformly (Kang et al. 2020).
    Positions yielded index ``positions``."""
    kind = config.sampler or spec.sampler
    if kind == "stratified" and (spec.prediction == "knn" or spec.embedding == "projected"):
        check_class_sizes(prepared, needed=2, method=spec.name, why="every anchor needs a positive")
    return create_batch_sampler(
        kind,
        config,
        prepared.labels("train")[positions],
        num_classes=len(prepared.class_names),
        cluster_features=lambda: prepared.cluster_features(positions),
    )


def create_batch_sampler(
    kind: str,
    config: TrainConfig,
    labels: np.ndarray,
    *,
    num_classes: int,
    cluster_features: Callable[[], np.ndarray],
) -> BatchSampler:
    """A ``kind`` batch sampler over ``labels`` with the config's batch shape and seed;
    ``cluster_features()`` gives the vectors the ``cluster`` kind groups by k-means (called
    only for that kind: thumbnails for images, the vectors themselves for feature data)."""
    if kind == "stratified":
        classes, per_class = config.stratified_batch_shape(num_classes)
        return StratifiedBatchSampler(
            labels, classes_per_batch=classes, samples_per_class=per_class, seed=config.seed
        )
    if kind == "shuffle":
        return ShuffledBatchSampler(len(labels), batch_size=config.batch_size, seed=config.seed)
    if kind == "cluster":
        return ClusterBatchSampler(
            labels,
            cluster_features(),
            groups_per_class=config.cluster_groups,
            batch_size=config.batch_size,
            seed=config.seed,
            draw=config.cluster_draw,
        )
    if kind == "balanced":
        return ClassBalancedBatchSampler(labels, config.batch_size, seed=config.seed)
    raise ConfigError(f"Unknown sampler {kind!r}. " + did_you_mean(kind, SAMPLERS))
