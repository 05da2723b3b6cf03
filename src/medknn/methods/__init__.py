"""Method recipes and their registry.

The registry (``registry.py``) imports no recipe; this package imports the built-in recipe
modules, which register their methods (as timm's ``models/__init__.py`` does for
``_registry.py``). They import torch only when an objective is built.
"""

from __future__ import annotations

from medknn.lazy import lazy_getattr
from medknn.methods import (  # noqa: F401  (imported to register the built-in methods)
    recipes,
    recipes_bstriplet,
    recipes_constellation,
    recipes_imbalance,
)

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
    "MethodOption": _REGISTRY,
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
    "MethodOption",
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
