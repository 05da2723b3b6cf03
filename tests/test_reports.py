"""Reports layer: benchmark summaries and their Markdown/CSV tables, on hand-made records."""

from __future__ import annotations

import csv
import io

import pytest

from medknn.reports import csv_table, markdown_table, per_seed_table, run_table, summarize

COLUMNS = ("accuracy", "mcr", "auc")


def _record(label: str, seed: int, wall: float | None = 10.0, **metrics: float | None) -> dict:
    return {"label": label, "seed": seed, "metrics": metrics, "wall_seconds": wall}


@pytest.fixture
def records() -> list[dict]:
    return [
        _record("deepknn", 0, accuracy=0.80, mcr=0.70, auc=None, wall=10.0),
        _record("ce", 0, accuracy=0.90, mcr=0.50, auc=None, wall=4.0),
        _record("deepknn", 1, accuracy=0.90, mcr=0.60, auc=None, wall=20.0),
        _record("ce", 1, accuracy=0.80, mcr=0.55, auc=None, wall=None),
        _record("deepknn", 2, accuracy=0.70, mcr=0.80, auc=None, wall=30.0),
    ]


def test_summarize_gives_mean_and_sample_std_per_label(records: list[dict]) -> None:
    rows = summarize(records, COLUMNS)

    assert [row["label"] for row in rows] == ["deepknn", "ce"]  # first-seen order
    deepknn, ce = rows
    assert deepknn["runs"] == 3 and ce["runs"] == 2
    assert deepknn["mean"]["accuracy"] == pytest.approx(0.8)
    assert deepknn["std"]["accuracy"] == pytest.approx(0.1)  # sample std (ddof=1), not 0.0816
    assert deepknn["mean"]["mcr"] == pytest.approx(0.7)
    assert deepknn["std"]["mcr"] == pytest.approx(0.1)
    assert ce["mean"]["accuracy"] == pytest.approx(0.85)
    assert ce["std"]["accuracy"] == pytest.approx(0.005**0.5)
    assert ce["mean"]["mcr"] == pytest.approx(0.525)
    assert deepknn["mean"]["auc"] is None
    assert deepknn["wall_seconds"] == pytest.approx(20.0)
    assert ce["wall_seconds"] == pytest.approx(2.0)  # a missing wall time counts as 0


def test_summarize_skips_missing_values_and_single_runs_have_zero_std() -> None:
    rows = summarize(
        [
            _record("a", 0, accuracy=0.6, mcr=None, auc=0.9),
            _record("a", 1, accuracy=0.8, mcr=0.4, auc=0.7),
            _record("b", 0, accuracy=0.5, mcr=0.5, auc=0.5),
        ],
        COLUMNS,
    )
    a, b = rows
    assert a["mean"]["mcr"] == pytest.approx(0.4) and a["std"]["mcr"] == 0.0
    assert a["std"]["auc"] == pytest.approx(0.1414213, rel=1e-5)
    assert b["std"] == {"accuracy": 0.0, "mcr": 0.0, "auc": 0.0}


def test_markdown_table_bolds_the_best_mean_and_shows_na(records: list[dict]) -> None:
    table = markdown_table(summarize(records, COLUMNS), COLUMNS)
    lines = table.strip().splitlines()

    assert lines[0] == "| method | Acc | MCR | AUC | runs | wall s/run |"
    assert lines[1] == "|---|---|---|---|---|---|"
    deepknn, ce = (line.split(" | ") for line in lines[2:])
    assert deepknn[0] == "| deepknn" and ce[0] == "| ce"
    # The best mean of each column is bold; AUC is undefined for every method.
    assert deepknn[1] == "0.800 ± 0.100" and ce[1] == "**0.850 ± 0.071**"
    assert deepknn[2] == "**0.700 ± 0.100**" and ce[2] == "0.525 ± 0.035"
    assert deepknn[3] == "n/a" and ce[3] == "n/a"
    assert deepknn[4:] == ["3", "20 |"] and ce[4:] == ["2", "2 |"]


def test_markdown_table_bolds_every_tied_best() -> None:
    rows = summarize([_record("a", 0, accuracy=0.5), _record("b", 0, accuracy=0.5)], ["accuracy"])
    table = markdown_table(rows, ["accuracy"])
    assert table.count("**0.500 ± 0.000**") == 2


def test_csv_table_has_mean_and_std_columns(records: list[dict]) -> None:
    rows = list(csv.reader(io.StringIO(csv_table(summarize(records, COLUMNS), COLUMNS))))

    assert rows[0] == [
        "method",
        "accuracy_mean",
        "accuracy_std",
        "mcr_mean",
        "mcr_std",
        "auc_mean",
        "auc_std",
        "runs",
        "wall_seconds",
    ]
    assert rows[1][0] == "deepknn" and rows[1][-2:] == ["3", "20.0"]
    assert rows[1][1:7] == ["0.8000", "0.1000", "0.7000", "0.1000", "n/a", "0.0000"]
    assert rows[2][0] == "ce" and rows[2][3:5] == ["0.5250", "0.0354"]


def test_run_table_lists_headline_and_per_class_metrics() -> None:
    metrics = {
        "accuracy": 0.75,
        "mcr": 0.5,
        "auc": float("nan"),
        "per_class": {
            "benign": {"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 4},
            "malignant": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0},
        },
    }
    lines = run_table(metrics, COLUMNS).splitlines()

    assert lines[:3] == ["| Acc | MCR | AUC |", "|---|---|---|", "| 0.7500 | 0.5000 | n/a |"]
    assert "| benign | 1.000 | 0.500 | 0.667 | 4 |" in lines
    assert "| malignant | 0.000 | 0.000 | 0.000 | 0 |" in lines


def test_per_seed_table_puts_each_seeds_values_in_its_column() -> None:
    metrics = {"accuracy": 0.9, "mcr": 0.61, "auc": 0.95}
    records = [
        {"label": "ce", "seed": 1, "metrics": metrics},
        {"label": "ce", "seed": 0, "metrics": {**metrics, "mcr": 0.5}},
        {"label": "focal", "seed": 1, "metrics": {**metrics, "auc": None}},
    ]
    assert per_seed_table(records, ("accuracy", "mcr", "auc")).splitlines() == [
        "| method (Acc / MCR / AUC) | seed 0 | seed 1 |",
        "|---|---|---|",
        "| ce | 0.900 / 0.500 / 0.950 | 0.900 / 0.610 / 0.950 |",
        "| focal | – | 0.900 / 0.610 / – |",
    ]
    # the labels asked for, in that order; one without runs is a row of dashes
    assert per_seed_table(records, ("mcr",), labels=["focal", "lmnn"]).splitlines()[2:] == [
        "| focal | – | 0.610 |",
        "| lmnn | – | – |",
    ]
