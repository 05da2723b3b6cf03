"""``medknn tune``: a budgeted, resumable Optuna study over methods and their settings, chosen on
the validation split, ending in the best trial and the top trials' ensemble (docs/tune.md)."""

from medknn.tuning.budget import parse_budget
from medknn.tuning.space import SearchTrial, common_search_space
from medknn.tuning.study import TuneResult, default_methods, make_pruner, tune

__all__ = [
    "SearchTrial",
    "TuneResult",
    "common_search_space",
    "default_methods",
    "make_pruner",
    "parse_budget",
    "tune",
]
