"""The Deep kNN paper's MLP on feature vectors, trained with any registered objective."""

from __future__ import annotations

import numpy as np
import torch
from rich.console import Console
from torch.utils.data import DataLoader

from medknn.errors import DataError
from medknn.evaluation import classification_metrics
from medknn.features.parts import FeatureParts, Part
from medknn.io import load_tensors
from medknn.methods import MethodSpec
from medknn.models import EmbeddingNetwork, create_network
from medknn.prediction import KNNClassifier, compute_outputs, predict_with_rule
from medknn.training import RunDir, TrainConfig, Trainer
from medknn.training.batches import BatchSampler, create_batch_sampler
from medknn.training.build import build_objective
from medknn.training.trainer import Validator


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
    objective = build_objective(config, parts.class_counts("train"))
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
) -> BatchSampler:
    """The method's batches over the training rows (``config.sampler`` overrides the kind);
    ``cluster`` groups each class by k-means on the feature vectors themselves."""
    kind = config.sampler or spec.sampler
    counts = parts.class_counts("train")
    if kind == "stratified" and spec.prediction == "knn" and counts.min() < 2:
        name = parts.class_names[int(counts.argmin())]
        raise DataError(
            f"Class {name!r} has {counts.min()} training row(s) but {spec.name} needs at "
            "least 2 (every anchor needs a positive); add rows of that class or use 'ce'."
        )
    return create_batch_sampler(
        kind,
        config,
        parts.labels["train"],
        num_classes=len(parts.class_names),
        cluster_features=lambda: parts.features["train"],
    )


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
