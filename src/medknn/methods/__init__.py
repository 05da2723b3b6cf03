"""Method recipes and their registry."""

from __future__ import annotations

from medknn.lazy import lazy_getattr

# Imported on first use: the registry (names, summaries, prediction rules) is light, the
# objectives and the embedding bank import torch.
_OBJECTIVES = "medknn.methods.objectives"
_REGISTRY = "medknn.methods.registry"
_LAZY = {
    "EmbeddingBank": "medknn.methods.embedding_bank",
    "TrainingSetEmbedder": "medknn.methods.embedding_bank",
    "CrossEntropyObjective": _OBJECTIVES,
    "CrossEntropyPlusMetricObjective": _OBJECTIVES,
    "LogitLossObjective": _OBJECTIVES,
    "MemoryBankObjective": _OBJECTIVES,
    "MetricLossObjective": _OBJECTIVES,
    "Objective": _OBJECTIVES,
    "MethodSpec": _REGISTRY,
    "ObjectiveContext": _REGISTRY,
    "create_objective": _REGISTRY,
    "get_method": _REGISTRY,
    "list_methods": _REGISTRY,
    "register_method": _REGISTRY,
}


__getattr__ = lazy_getattr("medknn.methods", globals(), _LAZY)


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
