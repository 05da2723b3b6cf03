"""classification_metrics against scikit-learn and hand counts."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.metrics import (
    balanced_accuracy_score,
    classification_report,
    confusion_matrix,
    f1_score,
    roc_auc_score,
)

from medknn.errors import DataError
from medknn.evaluation.metrics import classification_metrics

NAMES = ["akiec", "bcc", "bkl", "df", "mel"]


def random_predictions(seed, n=80, num_classes=5):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, num_classes, n)
    y_pred = np.where(rng.random(n) < 0.6, y_true, rng.integers(0, num_classes, n))
    proba = rng.dirichlet(np.ones(num_classes), n)
    return y_true, y_pred, proba


@pytest.mark.parametrize("seed", range(10))
def test_matches_sklearn_on_random_predictions(seed):
    y_true, y_pred, proba = random_predictions(seed)
    metrics = classification_metrics(y_true, y_pred, proba=proba, class_names=NAMES)

    assert metrics["n"] == 80
    assert metrics["accuracy"] == pytest.approx(np.mean(y_true == y_pred))
    assert metrics["mcr"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    assert metrics["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    report = classification_report(y_true, y_pred, output_dict=True, zero_division=0)
    for c, name in enumerate(NAMES):
        for key in ("precision", "recall", "f1-score", "support"):
            ours = metrics["per_class"][name][key.replace("-score", "")]
            assert ours == pytest.approx(report[str(c)][key])
    one_vs_rest = [roc_auc_score(y_true == c, proba[:, c]) for c in range(5)]
    assert metrics["auc"] == pytest.approx(np.mean(one_vs_rest))
    counts = np.zeros((5, 5), dtype=int)
    for t, p in zip(y_true, y_pred, strict=True):
        counts[t, p] += 1
    assert metrics["confusion_matrix"] == counts.tolist()


def test_binary_auc_uses_the_positive_class_column():
    y_true, y_pred, proba = random_predictions(0, num_classes=2)
    metrics = classification_metrics(y_true, y_pred, proba=proba, class_names=["normal", "tumour"])
    assert metrics["auc"] == pytest.approx(roc_auc_score(y_true, proba[:, 1]))


def test_mcr_averages_only_classes_present_in_y_true():
    y_true = np.array([0, 0, 1, 1])
    y_pred = np.array([0, 2, 1, 1])  # class 2 is predicted but has no true case
    metrics = classification_metrics(y_true, y_pred, class_names=["a", "b", "c"])
    assert metrics["mcr"] == pytest.approx((0.5 + 1.0) / 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert metrics["mcr"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))


def test_rs_is_the_recall_of_the_smallest_training_class():
    y_true = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2])
    y_pred = np.array([0, 0, 0, 1, 0, 0, 0, 2, 0])  # recalls: 1.0, 0.25, 0.5
    by_test = classification_metrics(y_true, y_pred, class_names=["a", "b", "c"])
    assert (by_test["rs_class"], by_test["rs"]) == ("c", 0.5)

    by_train = classification_metrics(
        y_true, y_pred, class_names=["a", "b", "c"], train_counts=np.array([500, 12, 40])
    )
    assert (by_train["rs_class"], by_train["rs"]) == ("b", 0.25)


def test_missing_class_gives_no_auc_and_no_rs():
    y_true, y_pred = np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1])
    proba = np.full((4, 3), 1 / 3)
    metrics = classification_metrics(
        y_true, y_pred, proba=proba, class_names=["a", "b", "c"], train_counts=np.array([9, 9, 1])
    )
    assert metrics["auc"] is None and metrics["rs"] is None and metrics["rs_class"] == "c"
    assert classification_metrics(y_true, y_pred, class_names=["a", "b"])["auc"] is None


def test_bad_input_raises_data_errors():
    with pytest.raises(DataError, match="y_pred has class index 5 outside 0..4"):
        classification_metrics(np.array([0, 1]), np.array([0, 5]), class_names=NAMES)
    with pytest.raises(DataError, match="equal-length"):
        classification_metrics(np.array([0, 1]), np.array([0]), class_names=NAMES)
    with pytest.raises(DataError, match=r"proba has shape \(2, 3\), expected \(2, 2\)"):
        classification_metrics(
            np.array([0, 1]), np.array([0, 1]), proba=np.ones((2, 3)) / 3, class_names=["a", "b"]
        )
    with pytest.raises(DataError, match="train_counts has shape"):
        classification_metrics(
            np.array([0, 1]), np.array([0, 1]), class_names=["a", "b"], train_counts=[1, 2, 3]
        )


def test_sensitivity_and_specificity_are_macro_one_vs_rest_eq_10_11():
    # Confusion (rows true a, b, c; columns predicted): a: [1 1 0], b: [0 2 0], c: [1 0 0].
    y_true, y_pred = np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 0])
    metrics = classification_metrics(y_true, y_pred, class_names=["a", "b", "c"])
    # SEN: a 1/2, b 2/2, c 0/1. SPE = TN/(TN+FP): a 2/3, b 2/3, c 4/4.
    assert metrics["sensitivity"] == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    assert metrics["specificity"] == pytest.approx((2 / 3 + 2 / 3 + 1.0) / 3)
    assert [s["specificity"] for s in metrics["per_class"].values()] == pytest.approx(
        [2 / 3, 2 / 3, 1.0]
    )


@pytest.mark.parametrize("seed", range(5))
def test_specificity_matches_the_sklearn_confusion_matrix(seed):
    y_true, y_pred, _ = random_predictions(seed)
    metrics = classification_metrics(y_true, y_pred, class_names=NAMES)
    matrix = confusion_matrix(y_true, y_pred, labels=range(5))
    false_positives = matrix.sum(axis=0) - np.diag(matrix)
    true_negatives = matrix.sum() - matrix.sum(axis=1) - false_positives
    per_class = true_negatives / (true_negatives + false_positives)
    assert metrics["specificity"] == pytest.approx(per_class.mean())
    assert metrics["sensitivity"] == pytest.approx(metrics["mcr"])


def test_binary_specificity_of_a_class_is_the_recall_of_the_other():
    y_true, y_pred = np.array([0, 0, 0, 1, 1]), np.array([0, 1, 1, 1, 1])
    metrics = classification_metrics(y_true, y_pred, class_names=["normal", "pneumonia"])
    pneumonia = metrics["per_class"]["pneumonia"]
    assert (pneumonia["recall"], pneumonia["specificity"]) == pytest.approx((1.0, 1 / 3))
    assert metrics["specificity"] == pytest.approx(metrics["sensitivity"])
    only_one_class = classification_metrics(
        np.array([1, 1]), np.array([1, 0]), class_names=["n", "p"]
    )
    assert only_one_class["per_class"]["p"]["specificity"] is None
    assert only_one_class["specificity"] == pytest.approx(0.5)  # class n: TN 1 of 2 negatives
