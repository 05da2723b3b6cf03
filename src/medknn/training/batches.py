"""The batch sampler a run trains with: the method's own kind unless the config overrides it."""

from __future__ import annotations

from medknn.data import (
    ClusterBatchSampler,
    ShuffledBatchSampler,
    StratifiedBatchSampler,
    thumbnail_features,
)
from medknn.errors import ConfigError, did_you_mean
from medknn.methods import MethodSpec
from medknn.training.config import TrainConfig
from medknn.training.prepare import PreparedData, check_class_sizes

SAMPLERS = ("stratified", "shuffle", "cluster")


def build_batch_sampler(
    config: TrainConfig, spec: MethodSpec, prepared: PreparedData
) -> StratifiedBatchSampler | ShuffledBatchSampler | ClusterBatchSampler:
    """``stratified``: P classes × Q images per batch (in-batch mining needs positives);
    ``shuffle``: plain shuffled batches of ``batch_size`` (the BSTriplet paper's "RS");
    ``cluster``: ``batch_size`` images drawn from ``cluster_groups`` k-means groups per class,
    in proportion to the groups' sizes (the paper's "DM"), clustered on 8×8 grey thumbnails."""
    kind = config.sampler or spec.sampler
    if kind == "stratified":
        if spec.prediction == "knn" or spec.embedding == "projected":
            check_class_sizes(
                prepared, needed=2, method=spec.name, why="every anchor needs a positive"
            )
        classes, per_class = config.stratified_batch_shape(len(prepared.class_names))
        return StratifiedBatchSampler(
            prepared.labels("train"),
            classes_per_batch=classes,
            samples_per_class=per_class,
            seed=config.seed,
        )
    if kind == "shuffle":
        return ShuffledBatchSampler(
            len(prepared.indices("train")), batch_size=config.batch_size, seed=config.seed
        )
    if kind == "cluster":
        train = prepared.indices("train")
        return ClusterBatchSampler(
            prepared.labels("train"),
            thumbnail_features(prepared.images, train),
            groups_per_class=config.cluster_groups,
            batch_size=config.batch_size,
            seed=config.seed,
        )
    raise ConfigError(f"Unknown sampler {kind!r}. " + did_you_mean(kind, SAMPLERS))
