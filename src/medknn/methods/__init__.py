"""Method recipes and their registry."""

from medknn.methods.objectives import (
    CrossEntropyObjective,
    CrossEntropyPlusMetricObjective,
    LogitLossObjective,
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
    "LogitLossObjective",
    "MethodSpec",
    "MetricLossObjective",
    "Objective",
    "ObjectiveContext",
    "create_objective",
    "get_method",
    "list_methods",
    "register_method",
]
