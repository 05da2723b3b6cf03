"""Every plot of one evaluated part of a run, written into the run's ``plots/`` folder."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from medknn.reports.classification_plots import plot_confusion_matrix, plot_roc_curves


class EvaluatedPart(Protocol):
    labels: np.ndarray
    proba: np.ndarray
    embeddings: np.ndarray


def write_run_plots(
    folder: str | Path,
    metrics: dict,
    outputs: EvaluatedPart,
    class_names: list[str],
    *,
    part: str = "test",
) -> list[Path]:
    """The confusion matrix and ROC curves of ``part``; returns the files written."""
    folder = Path(folder)
    return [
        plot_confusion_matrix(
            metrics["confusion_matrix"], class_names, folder / f"{part}_confusion_matrix.png"
        ),
        plot_roc_curves(outputs.labels, outputs.proba, class_names, folder / f"{part}_roc.png"),
    ]
