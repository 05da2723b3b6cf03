"""Score a network on one part of the data with its method's prediction rule."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from medknn.evaluation.embedding_quality import embedding_quality, leave_one_out_knn_accuracy
from medknn.evaluation.metrics import classification_metrics
from medknn.io import atomic_write_bytes
from medknn.methods import MethodSpec
from medknn.models import EmbeddingNetwork
from medknn.prediction import KNNClassifier, compute_outputs, predict_with_rule
from medknn.prediction.decision import DecisionRule
from medknn.runs.knn_index_options import KNNSettings
from medknn.runs.training_data import Part, TrainingData


def fit_knn_on_training_set(
    network: EmbeddingNetwork,
    prepared: TrainingData,
    knn: KNNSettings,
    *,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> KNNClassifier:
    """Embed every training case (no augmentation) and index them for kNN search with the run's
    ``knn`` settings (K_p, weights, exact / ivf / hnsw index, see ``KNNClassifier``)."""
    embeddings, _ = compute_outputs(
        network,
        prepared.dataset("train", augment=False),
        device=device,
        progress=progress,
        description="embedding training set",
    )
    labels = prepared.labels("train")
    return KNNClassifier.from_settings(knn, len(labels)).fit(
        embeddings, labels, ids=prepared.ids("train"), class_names=prepared.class_names
    )


@dataclass(frozen=True)
class PartOutputs:
    """What a network made of one part of the data, kept for plots and later analysis."""

    labels: np.ndarray
    predicted: np.ndarray
    proba: np.ndarray
    embeddings: np.ndarray
    indices: np.ndarray  # rows of the data table

    def save(self, path: str | Path) -> Path:
        buffer = io.BytesIO()
        np.savez(buffer, **vars(self))
        return atomic_write_bytes(path, buffer.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> PartOutputs:
        with np.load(path, allow_pickle=False) as arrays:
            return cls(**{name: arrays[name] for name in arrays.files})


def evaluate_network(
    network: EmbeddingNetwork,
    spec: MethodSpec,
    prepared: TrainingData,
    part: Part,
    *,
    knn: KNNClassifier | None,
    device: torch.device | str = "cpu",
    progress: bool = False,
    decision: DecisionRule | None = None,
    tta: str = "none",
) -> tuple[dict, PartOutputs]:
    """``(metrics, outputs)`` for ``part`` under the method's rule, adjusted by the run's
    ``decision`` rule if it has one, with test-time augmentation ``tta``."""
    embeddings, logits = compute_outputs(
        network,
        prepared.dataset(part, augment=False),
        device=device,
        progress=progress,
        description=f"embedding {part} set",
        tta=tta,
    )
    predicted, proba = predict_with_rule(
        spec.prediction, knn=knn, embeddings=embeddings, logits=logits, decision=decision
    )
    labels = prepared.labels(part)
    metrics = classification_metrics(
        labels,
        predicted,
        proba=proba,
        class_names=prepared.class_names,
        train_counts=prepared.class_counts("train"),
    )
    outputs = PartOutputs(labels, predicted, proba, embeddings, prepared.indices(part))
    return metrics, outputs


def with_embedding_quality(metrics: dict, outputs: PartOutputs, knn: KNNClassifier) -> dict:
    """Add kNN balanced accuracy, silhouette and Davies–Bouldin of the part's embeddings
    (kNN fitted on the training embeddings, k = 5) to ``metrics``."""
    metrics.update(
        embedding_quality(
            outputs.embeddings,
            outputs.labels,
            train_embeddings=knn.embeddings_,
            train_labels=knn.labels_,
            k=5,
        )
    )
    return metrics


def make_validator(
    spec: MethodSpec,
    prepared: TrainingData,
    knn: KNNSettings,
    *,
    device: torch.device | str = "cpu",
):
    """A ``validate(network) -> {"mcr", "accuracy"}`` callback for the trainer, or None without
    a validation set. kNN methods re-embed the training set each time (neighbours move as the
    network learns) and also report ``train_knn_accuracy``, the leave-one-out kNN accuracy on
    those training embeddings (the Deep kNN paper's training curve, Fig. 2)."""
    if len(prepared.indices("val")) == 0:
        return None

    def validate(network: EmbeddingNetwork) -> dict[str, float]:
        fitted = None
        if spec.prediction == "knn":
            fitted = fit_knn_on_training_set(network, prepared, knn, device=device)
        metrics, _ = evaluate_network(network, spec, prepared, "val", knn=fitted, device=device)
        scores = {"mcr": metrics["mcr"], "accuracy": metrics["accuracy"]}
        if fitted is not None:
            scores["train_knn_accuracy"] = leave_one_out_knn_accuracy(
                fitted.embeddings_, fitted.labels_, k=min(knn.k, len(fitted.labels_) - 1)
            )
        return scores

    return validate
