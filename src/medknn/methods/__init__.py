"""Method recipes and their registry."""

from medknn.methods.embedding_bank import EmbeddingBank, TrainingSetEmbedder
from medknn.methods.objectives import (
    CrossEntropyObjective,
    CrossEntropyPlusMetricObjective,
    LogitLossObjective,
    MemoryBankObjective,
    MetricLossObjective,
    Objective,
)
from medknn.methods.registry import (
    MethodSpec,
    ObjectiveContext,
    create_objective,
    get_method,
    list_methods,
    register_method,
)

__all__ = [
    "CrossEntropyObjective",
    "CrossEntropyPlusMetricObjective",
    "EmbeddingBank",
    "LogitLossObjective",
    "MemoryBankObjective",
    "MethodSpec",
    "MetricLossObjective",
    "Objective",
    "ObjectiveContext",
    "TrainingSetEmbedder",
    "create_objective",
    "get_method",
    "list_methods",
    "register_method",
]
