"""The Deep kNN paper's MLP on feature vectors, trained with any registered objective."""

from __future__ import annotations

import numpy as np
import torch
from rich.console import Console
from torch.utils.data import DataLoader

from medknn.data import ClusterBatchSampler, ShuffledBatchSampler, StratifiedBatchSampler
from medknn.errors import ConfigError, DataError, did_you_mean
from medknn.evaluation import classification_metrics
from medknn.features.parts import FeatureParts, Part
from medknn.io import load_tensors
from medknn.methods import MethodSpec, ObjectiveContext, create_objective
from medknn.models import EmbeddingNetwork, create_network
from medknn.prediction import KNNClassifier, compute_outputs, predict_with_rule
from medknn.training import RunDir, TrainConfig, Trainer
from medknn.training.trainer import Validator

SAMPLERS = ("stratified", "shuffle", "cluster")


def train_mlp(
    spec: MethodSpec,
    parts: FeatureParts,
    config: TrainConfig,
    run_dir: RunDir,
    *,
    device: torch.device,
    progress: bool = True,
    console: Console | None = None,
) -> EmbeddingNetwork:
    """Train a 3-layer BN+ReLU MLP with ``spec``'s objective and batches (an interrupted run
    resumes); return it with the weights of the best validation MCR."""
    network = create_network(
        "mlp",
        in_features=parts.dim,
        embedding_dim=config.embedding_dim if spec.embedding == "projected" else None,
        normalize=spec.normalize_embedding,
        num_classes=len(parts.class_names) if spec.classifier else None,
        head_activation=spec.head_activation,
    )
    objective = create_objective(
        spec.name,
        ObjectiveContext(
            class_counts=parts.class_counts("train"),
            num_positives=config.num_positives,
            num_negatives=config.num_negatives,
            margin=config.margin,
            options=config.method_options,
        ),
    )
    loader = DataLoader(
        parts.dataset("train"), batch_sampler=feature_batch_sampler(config, spec, parts)
    )
    trainer = Trainer(
        network,
        objective,
        config,
        run_dir,
        device=device,
        validate=_validator(spec, parts, config, device),
        progress=progress,
        console=console,
    )
    trainer.fit(loader)
    network.load_state_dict(load_tensors(run_dir.model))
    return network


def predict_part(
    network: EmbeddingNetwork,
    spec: MethodSpec,
    parts: FeatureParts,
    part: Part,
    config: TrainConfig,
    device: torch.device,
) -> tuple[np.ndarray, np.ndarray, KNNClassifier | None]:
    """``(predicted labels, probabilities, the kNN index or None)`` for ``part`` under the
    method's rule; kNN methods index the embedded training part."""
    embeddings, logits = compute_outputs(network, parts.dataset(part), device=device)
    knn = None
    if spec.prediction == "knn":
        train_embeddings, _ = compute_outputs(network, parts.dataset("train"), device=device)
        knn = KNNClassifier(
            min(config.k_predict, parts.size("train")), weights=config.knn_weights
        ).fit(
            train_embeddings,
            parts.labels["train"],
            ids=parts.ids["train"],
            class_names=parts.class_names,
        )
    predicted, proba = predict_with_rule(
        spec.prediction, knn=knn, embeddings=embeddings, logits=logits
    )
    return predicted, proba, knn


def feature_batch_sampler(
    config: TrainConfig, spec: MethodSpec, parts: FeatureParts
) -> StratifiedBatchSampler | ShuffledBatchSampler | ClusterBatchSampler:
    """The method's batches over the training rows (``config.sampler`` overrides the kind);
    ``cluster`` groups each class by k-means on the feature vectors themselves."""
    kind = config.sampler or spec.sampler
    labels = parts.labels["train"]
    if kind == "stratified":
        counts = parts.class_counts("train")
        if spec.prediction == "knn" and counts.min() < 2:
            name = parts.class_names[int(counts.argmin())]
            raise DataError(
                f"Class {name!r} has {counts.min()} training row(s) but {spec.name} needs at "
                "least 2 (every anchor needs a positive); add rows of that class or use 'ce'."
            )
        classes, per_class = config.stratified_batch_shape(len(parts.class_names))
        return StratifiedBatchSampler(
            labels, classes_per_batch=classes, samples_per_class=per_class, seed=config.seed
        )
    if kind == "shuffle":
        return ShuffledBatchSampler(len(labels), batch_size=config.batch_size, seed=config.seed)
    if kind == "cluster":
        return ClusterBatchSampler(
            labels,
            parts.features["train"],
            groups_per_class=config.cluster_groups,
            batch_size=config.batch_size,
            seed=config.seed,
        )
    raise ConfigError(f"Unknown sampler {kind!r}. " + did_you_mean(kind, SAMPLERS))


def _validator(
    spec: MethodSpec, parts: FeatureParts, config: TrainConfig, device: torch.device
) -> Validator | None:
    """The trainer's per-epoch ``validate(network) -> {"mcr", "accuracy"}``; None without a
    validation part. The training part is re-embedded each time: neighbours move as it learns."""
    if parts.size("val") == 0:
        return None

    def validate(network: EmbeddingNetwork) -> dict[str, float]:
        predicted, _, _ = predict_part(network, spec, parts, "val", config, device)
        metrics = classification_metrics(
            parts.labels["val"], predicted, class_names=parts.class_names
        )
        return {"mcr": metrics["mcr"], "accuracy": metrics["accuracy"]}

    return validate
