"""Every plot of one evaluated part of a run, written into the run's ``plots/`` folder."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from medknn.reports.classification_plots import plot_confusion_matrix, plot_roc_curves
from medknn.reports.embedding_map import plot_embedding_map


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
    thumbnails: np.ndarray | None = None,
) -> list[Path]:
    """The confusion matrix, ROC curves and 2-D embedding map (t-SNE) of ``part``; returns the
    files written. ``thumbnails`` (the part's images) adds the map with images at their places."""
    folder = Path(folder)
    maps = [
        plot_embedding_map(
            outputs.embeddings, outputs.labels, class_names, folder / f"{part}_embedding_map.png"
        )
    ]
    if thumbnails is not None:
        maps.append(
            plot_embedding_map(
                outputs.embeddings,
                outputs.labels,
                class_names,
                folder / f"{part}_embedding_thumbnails.png",
                thumbnails=thumbnails,
            )
        )
    return maps + [
        plot_confusion_matrix(
            metrics["confusion_matrix"], class_names, folder / f"{part}_confusion_matrix.png"
        ),
        plot_roc_curves(outputs.labels, outputs.proba, class_names, folder / f"{part}_roc.png"),
    ]
