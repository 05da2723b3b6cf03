"""F-score by training frequency (majority / middle / minority) and the per-class F-score plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medknn.errors import DataError
from medknn.evaluation import classification_metrics, frequency_groups, grouped_f1
from medknn.reports import plot_per_class_f1

ISIC_CLASSES = ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"]
ISIC_COUNTS = [327, 514, 1099, 115, 1113, 6705, 142]  # HAM10000 = ISIC 2018 task 3


def test_isic_counts_give_the_papers_groups() -> None:
    groups = frequency_groups(ISIC_COUNTS)
    named = {group: {ISIC_CLASSES[c] for c in members} for group, members in groups.items()}
    assert named == {
        "majority": {"nv"},
        "middle": {"mel", "bkl"},
        "minority": {"bcc", "akiec", "vasc", "df"},
    }


def test_thresholds_are_inclusive_and_groups_may_be_empty() -> None:
    # 50 is exactly half of 100 (majority), 10 exactly a tenth (minority).
    assert frequency_groups([100, 50, 49, 11, 10]) == {
        "majority": [0, 1],
        "middle": [2, 3],
        "minority": [4],
    }
    assert frequency_groups([20, 30]) == {"majority": [0, 1], "middle": [], "minority": []}


def test_grouped_f1_averages_each_group_by_hand() -> None:
    f1 = [0.2, 0.4, 0.6, 0.1, 0.8, 0.95, 0.5]  # akiec bcc bkl df mel nv vasc
    assert grouped_f1(f1, ISIC_COUNTS) == pytest.approx(
        {
            "f1_majority": 0.95,
            "f1_middle": (0.6 + 0.8) / 2,
            "f1_minority": (0.2 + 0.4 + 0.1 + 0.5) / 4,
        }
    )
    assert grouped_f1([0.5, 0.7], [20, 30])["f1_middle"] is None


@pytest.mark.parametrize(
    ("counts", "message"),
    [([0, 0], "not all zero"), ([5, -1], "non-negative"), ([], "one non-negative count")],
)
def test_bad_counts_are_named(counts: list[int], message: str) -> None:
    with pytest.raises(DataError, match=message):
        frequency_groups(counts)


def test_f1_and_counts_must_match() -> None:
    with pytest.raises(DataError, match="3 per-class F1 values for 2 training counts"):
        grouped_f1([0.1, 0.2, 0.3], [10, 1])


def test_classification_metrics_report_the_groups() -> None:
    # Class 0 (100 training images): 3 of 4 right, 1 predicted as class 2.
    # Class 1 (40): both right. Class 2 (5): 1 right, and the stray class-0 case.
    y_true = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 0, 0, 2, 1, 1, 2, 0])
    metrics = classification_metrics(
        y_true, y_pred, class_names=["a", "b", "c"], train_counts=np.array([100, 40, 5])
    )
    # F1 = 2PR / (P + R): a: P 3/4, R 3/4 → 0.75; b: 1.0; c: P 1/2, R 1/2 → 0.5.
    assert metrics["f1_majority"] == pytest.approx(0.75)
    assert metrics["f1_middle"] == pytest.approx(1.0)
    assert metrics["f1_minority"] == pytest.approx(0.5)
    assert metrics["frequency_groups"] == {"majority": ["a"], "middle": ["b"], "minority": ["c"]}
    without = classification_metrics(y_true, y_pred, class_names=["a", "b", "c"])
    assert "f1_majority" not in without


def _metrics(f1: dict[str, float]) -> dict:
    return {"per_class": {name: {"f1": value} for name, value in f1.items()}}


def test_per_class_plot_draws_each_method_in_the_given_class_order(tmp_path: Path) -> None:
    runs = {
        "CE": [_metrics({"nv": 0.9, "df": 0.2}), _metrics({"nv": 0.92, "df": 0.3})],
        "SupCon": [_metrics({"nv": 0.91, "df": 0.5})],
    }
    path = plot_per_class_f1(runs, tmp_path / "fig3.png", class_order=["nv", "df"])
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 300
    with pytest.raises(DataError, match="'CE' have no F1 for class\\(es\\) mel"):
        plot_per_class_f1(runs, tmp_path / "x.png", class_order=["nv", "mel"])
    with pytest.raises(DataError, match="at least one run"):
        plot_per_class_f1({"CE": []}, tmp_path / "x.png")
