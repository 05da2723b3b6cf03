"""benchmarks/tune_table.py: one study against hand-set seeds is indicative, with its direction,
and a gap no larger than the seeds' spread says so."""

from __future__ import annotations

from types import ModuleType

import pytest
from conftest import load_benchmark_script


@pytest.fixture(scope="module")
def tune_table() -> ModuleType:
    return load_benchmark_script("tune_table")


def test_one_study_against_seeds_is_indicative_with_direction_and_spread(
    tune_table: ModuleType,
) -> None:
    recommended = {"test": {"accuracy": 0.80, "mcr": 0.70, "auc": None}}
    hand_set = [
        {
            "label": "deepknn (recipe)",
            "mean": {"accuracy": 0.75, "mcr": 0.71, "auc": 0.9},
            "std": {"accuracy": 0.01, "mcr": 0.02, "auc": 0.01},
        }
    ]
    lines = tune_table.comparison_lines(recommended, hand_set)
    (line,) = [line for line in lines if line.startswith("- ")]
    assert line.startswith("- indicative (one study): the recommended model against deepknn")
    assert "Acc above (0.800 against 0.750 ± 0.010)" in line
    assert "MCR below, within the seeds' spread (0.700 against 0.710 ± 0.020)" in line
    assert "AUC" not in line  # not scored by the study: no comparison
    assert tune_table.comparison_lines(recommended, []) == []
