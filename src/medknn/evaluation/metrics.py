"""Metrics of the Deep kNN paper (Acc, MCR, RS), the BSTriplet paper (macro sensitivity and
specificity), F1, ROC AUC and the confusion matrix."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    multilabel_confusion_matrix,
    precision_recall_fscore_support,
    recall_score,
    roc_auc_score,
)

from medknn.errors import DataError
from medknn.evaluation.frequency_groups import frequency_groups, grouped_f1


def classification_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    proba: np.ndarray | None = None,
    class_names: list[str],
    train_counts: np.ndarray | None = None,
) -> dict:
    """All metrics for one evaluation, as JSON-ready Python values.

    ``mcr`` is the mean recall over the classes present in ``y_true`` (balanced accuracy).
    ``rs`` is the recall of the smallest training class (``train_counts``; without it, the smallest
    class of ``y_true``), named in ``rs_class``; a tie goes to the lower class index, and ``rs`` is
    None if that class has no evaluation case. ``auc`` is the macro one-vs-rest ROC AUC, None
    without ``proba`` or when a class has no evaluation case.
    ``sensitivity`` and ``specificity`` are the BSTriplet paper's eq. 10-11: per class one vs the
    rest, TP/(TP+FN) and TN/(TN+FP), averaged over the classes where each is defined
    (``sensitivity`` then equals ``mcr``). With two classes both averages equal ``mcr``; a
    clinical "sensitivity/specificity of the disease" is that class's ``recall`` and
    ``specificity`` in ``per_class``. ``ece``: expected calibration error of ``proba``.
    With ``train_counts``, ``f1_majority``, ``f1_middle`` and ``f1_minority`` are the mean F1 of
    the classes grouped by training count (``frequency_groups`` names them; see
    :func:`~medknn.evaluation.frequency_groups.frequency_groups`), None for an empty group.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    num_classes = len(class_names)
    _check_labels(y_true, y_pred, num_classes)
    all_classes = np.arange(num_classes)
    support = np.bincount(y_true, minlength=num_classes)
    present = np.flatnonzero(support)

    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=all_classes, zero_division=0
    )
    specificity = _specificity(y_true, y_pred, all_classes)
    if train_counts is None:
        smallest = int(present[support[present].argmin()])
    else:
        train_counts = np.asarray(train_counts)
        if train_counts.shape != (num_classes,):
            raise DataError(
                f"train_counts has shape {train_counts.shape} but there are {num_classes} classes "
                f"({', '.join(class_names)}); pass one training count per class."
            )
        smallest = int(train_counts.argmin())

    groups = {} if train_counts is None else _frequency_group_f1(f1, train_counts, class_names)
    return {
        "n": len(y_true),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "mcr": float(
            recall_score(y_true, y_pred, labels=present, average="macro", zero_division=0)
        ),
        "rs": float(recall[smallest]) if support[smallest] else None,
        "rs_class": class_names[smallest],
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        **groups,
        "auc": _macro_auc(y_true, proba, num_classes, present),
        "ece": None if proba is None else expected_calibration_error(y_true, y_pred, proba),
        "sensitivity": float(recall[present].mean()),
        "specificity": float(np.nanmean(specificity)),
        "per_class": {
            name: {
                "precision": float(precision[c]),
                "recall": float(recall[c]),
                "f1": float(f1[c]),
                "specificity": None if np.isnan(specificity[c]) else float(specificity[c]),
                "support": int(support[c]),
            }
            for c, name in enumerate(class_names)
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=all_classes).tolist(),
    }


def expected_calibration_error(
    y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray, bins: int = 15
) -> float:
    """ECE (Guo et al. 2017): over 15 equal-width bins of the predicted class's probability,
    the case-weighted mean gap between that confidence and the accuracy in the bin."""
    confidence = np.asarray(proba)[np.arange(len(y_pred)), y_pred]
    correct = (np.asarray(y_true) == np.asarray(y_pred)).astype(np.float64)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    gap = 0.0
    for b in np.unique(which):
        members = which == b
        gap += members.sum() * abs(confidence[members].mean() - correct[members].mean())
    return float(gap / len(y_true))


def _frequency_group_f1(f1: np.ndarray, train_counts: np.ndarray, class_names: list[str]) -> dict:
    """Mean F1 of the majority, middle and minority training classes, and the classes in each."""
    named = {
        group: [class_names[c] for c in members]
        for group, members in frequency_groups(train_counts).items()
    }
    return {**grouped_f1(f1, train_counts), "frequency_groups": named}


def _specificity(y_true: np.ndarray, y_pred: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """TN / (TN + FP) of each class against the rest; NaN for a class every case belongs to."""
    (true_negatives, false_positives), _ = multilabel_confusion_matrix(
        y_true, y_pred, labels=classes
    ).transpose(1, 2, 0)
    negatives = true_negatives + false_positives
    return np.divide(
        true_negatives, negatives, out=np.full(len(classes), np.nan), where=negatives > 0
    )


def _macro_auc(
    y_true: np.ndarray, proba: np.ndarray | None, num_classes: int, present: np.ndarray
) -> float | None:
    if proba is None or len(present) < num_classes:
        return None
    proba = np.asarray(proba)
    if proba.shape != (len(y_true), num_classes):
        raise DataError(
            f"proba has shape {proba.shape}, expected ({len(y_true)}, {num_classes}): "
            "one row of class probabilities per case."
        )
    if num_classes == 2:
        return float(roc_auc_score(y_true, proba[:, 1]))
    return float(
        roc_auc_score(
            y_true, proba, multi_class="ovr", average="macro", labels=np.arange(num_classes)
        )
    )


def _check_labels(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> None:
    if y_true.ndim != 1 or y_true.shape != y_pred.shape or len(y_true) == 0:
        raise DataError(
            f"y_true {y_true.shape} and y_pred {y_pred.shape} must be equal-length, non-empty 1-D "
            "arrays of class indices."
        )
    for name, values in (("y_true", y_true), ("y_pred", y_pred)):
        if not np.issubdtype(values.dtype, np.integer):
            raise DataError(f"{name} has dtype {values.dtype}; pass integer class indices.")
        if values.min() < 0 or values.max() >= num_classes:
            raise DataError(
                f"{name} has class index {values.min() if values.min() < 0 else values.max()} "
                f"outside 0..{num_classes - 1}; pass one class_name per class index."
            )
