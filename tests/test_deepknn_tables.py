"""benchmarks/deepknn_tables.py: the K × M grid of Table S3 from deepknn runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from conftest import load_benchmark_script

from medknn.prediction import TrainedRun


@pytest.fixture(scope="module")
def deepknn_tables() -> ModuleType:
    return load_benchmark_script("deepknn_tables")


def test_cells_are_keyed_by_the_runs_k_and_m_and_rescored_with_k_voters(
    deepknn_tables: ModuleType, tmp_path: Path, train_tiny: Callable[..., TrainedRun]
) -> None:
    run = train_tiny(tmp_path / "run", method="deepknn", num_positives=2, num_negatives=1)
    records = [
        {"method": "deepknn", "run": str(run.path)},
        {"method": "weighted-ce", "run": "never read"},
    ]
    at_k = deepknn_tables.km_cells(records, kp=None)
    assert list(at_k) == [(2, 1)]
    assert at_k[(2, 1)] == [deepknn_tables.rescored(run.path, 2)]
    assert deepknn_tables.km_cells(records, kp=1)[(2, 1)] == [deepknn_tables.rescored(run.path, 1)]


def test_grid_table_rows_are_m_columns_are_k_with_spread_over_seeds(
    deepknn_tables: ModuleType,
) -> None:
    cells = {
        (1, 5): [{"accuracy": 0.6, "mcr": 0.4}, {"accuracy": 0.8, "mcr": 0.6}],
        (9, 3): [{"accuracy": 0.7, "mcr": 0.5}],
    }
    lines = deepknn_tables.grid_table(cells).splitlines()
    assert lines[0] == "| | K = 1 | K = 9 |"
    assert lines[2] == "| M = 3 | – | 0.700 / 0.500 |"
    assert lines[3] == "| M = 5 | 0.700 ± 0.141 / 0.500 ± 0.141 (2) | – |"


def test_grid_plot_is_written_with_missing_cells(
    deepknn_tables: ModuleType, tmp_path: Path
) -> None:
    cells = {(1, 5): [{"accuracy": 0.6, "mcr": 0.4}], (9, 3): [{"accuracy": 0.7, "mcr": 0.5}]}
    path = deepknn_tables.plot_grid(cells, tmp_path / "grid.png")
    assert path.read_bytes().startswith(b"\x89PNG")


def test_grid_comparisons_pair_cells_that_differ_in_k_only_or_m_only(
    deepknn_tables: ModuleType,
) -> None:
    labels = ["K1_M3", "K5_M3", "K5_M5", "K9_M5", "deepknn"]
    assert deepknn_tables.grid_comparisons(labels) == [
        ("K5_M3", "K1_M3"),
        ("K5_M5", "K5_M3"),
        ("K9_M5", "K5_M5"),
    ]


def test_verdicts_follow_the_results_rule_on_the_pages_per_seed_numbers(
    deepknn_tables: ModuleType,
) -> None:
    # MCR per seed from docs/results/ham10000_deepknn.md (deepknn, the bank, knn-imagenet)
    mcr = {
        "deepknn": (0.492, 0.472, 0.484),
        "deepknn-bank": (0.439, 0.443, 0.473),
        "knn-imagenet": (0.241, 0.273, 0.283),
    }
    records = [
        {"label": label, "seed": seed, "metrics": {"mcr": value}}
        for label, values in mcr.items()
        for seed, value in enumerate(values)
    ]
    lines = deepknn_tables.verdicts(records)
    assert lines == [
        "indicative (3 seeds): deepknn > knn-imagenet on MCR (3 seeds, mean Δ 0.217 ± 0.029)",
        "indicative (3 seeds): deepknn > deepknn-bank on MCR (3 seeds, mean Δ 0.031 ± 0.021)",
    ]
