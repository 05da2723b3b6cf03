"""Confusion matrix and one-vs-rest ROC curves as PNG files (matplotlib, no display needed)."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless machines and CI: never ask for a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from medknn.io import atomic_write_bytes  # noqa: E402


def save_figure(figure: plt.Figure, path: str | Path) -> Path:
    """Write a figure atomically as PNG and close it."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    plt.close(figure)
    return atomic_write_bytes(path, buffer.getvalue())


def plot_confusion_matrix(
    matrix: np.ndarray | list, class_names: list[str], path: str | Path, *, title: str = ""
) -> Path:
    """Row-normalised colours (recall per true class) with the raw counts written in."""
    counts = np.asarray(matrix, dtype=np.int64)
    rows = counts.sum(axis=1, keepdims=True)
    recall = np.divide(counts, rows, out=np.zeros(counts.shape, float), where=rows > 0)
    size = 1.2 + 0.55 * len(class_names)
    figure, axes = plt.subplots(figsize=(size + 1.2, size))
    image = axes.imshow(recall, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(counts):
        colour = "white" if recall[i, j] > 0.6 else "black"
        axes.text(j, i, str(count), ha="center", va="center", color=colour, fontsize=8)
    ticks = np.arange(len(class_names))
    axes.set_xticks(ticks, class_names, rotation=45, ha="right")
    axes.set_yticks(ticks, class_names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title or "confusion matrix (colour: recall of the true class)")
    figure.colorbar(image, ax=axes, fraction=0.046)
    return save_figure(figure, path)


def plot_roc_curves(
    labels: np.ndarray, proba: np.ndarray, class_names: list[str], path: str | Path
) -> Path:
    """One-vs-rest ROC per class present in ``labels`` (only the positive class if binary)."""
    labels = np.asarray(labels)
    figure, axes = plt.subplots(figsize=(5.5, 5))
    classes = [1] if len(class_names) == 2 else range(len(class_names))
    for c in classes:
        positives = labels == c
        if positives.all() or not positives.any():
            continue  # a ROC curve needs both positives and negatives
        fpr, tpr, _ = roc_curve(positives, proba[:, c])
        area = np.trapezoid(tpr, fpr)
        axes.plot(fpr, tpr, label=f"{class_names[c]} (AUC {area:.3f})")
    axes.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    axes.set_xlabel("false positive rate (1 − specificity)")
    axes.set_ylabel("true positive rate (sensitivity)")
    axes.set_title("ROC, one class against the rest")
    axes.legend(loc="lower right", fontsize=8)
    return save_figure(figure, path)
