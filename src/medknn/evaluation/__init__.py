"""Evaluation: metrics, and scoring a network with its method's prediction rule."""

from medknn.evaluation.embedding_quality import embedding_quality
from medknn.evaluation.evaluate import (
    PartOutputs,
    evaluate_network,
    fit_knn_on_training_set,
    make_validator,
    with_embedding_quality,
)
from medknn.evaluation.metrics import classification_metrics

__all__ = [
    "PartOutputs",
    "classification_metrics",
    "embedding_quality",
    "evaluate_network",
    "fit_knn_on_training_set",
    "make_validator",
    "with_embedding_quality",
]
