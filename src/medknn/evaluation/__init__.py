"""Evaluation: metrics, and scoring a network with its method's prediction rule."""

from medknn.evaluation.decision_choice import fit_decision_rule
from medknn.evaluation.embedding_quality import embedding_quality, leave_one_out_knn_accuracy
from medknn.evaluation.evaluate import (
    PartOutputs,
    evaluate_network,
    fit_knn_on_training_set,
    make_validator,
    with_embedding_quality,
)
from medknn.evaluation.frequency_groups import frequency_groups, grouped_f1
from medknn.evaluation.metrics import classification_metrics
from medknn.evaluation.verdict import Verdict, compare, record_values, seed_values, verdict_lines

__all__ = [
    "PartOutputs",
    "Verdict",
    "classification_metrics",
    "compare",
    "embedding_quality",
    "leave_one_out_knn_accuracy",
    "evaluate_network",
    "fit_decision_rule",
    "fit_knn_on_training_set",
    "frequency_groups",
    "grouped_f1",
    "make_validator",
    "record_values",
    "seed_values",
    "verdict_lines",
    "with_embedding_quality",
]
