"""One run's HTML report: config and data, training curves, metrics, plots, and test images with
the nearest training cases behind their predictions. Inputs are plain data; the API gathers them."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medknn.errors import ConfigError
from medknn.io import atomic_write_json, atomic_write_text
from medknn.prediction.knn import Neighbour
from medknn.reports.classification_plots import plot_confusion_matrix, plot_roc_curves
from medknn.reports.embedding_map import plot_embedding_map
from medknn.reports.html_page import render_page, write_image
from medknn.reports.run_plots import EvaluatedPart
from medknn.reports.summary_plots import plot_class_counts, plot_training_curves
from medknn.reports.tables import METRIC_LABELS

REPORT_METRICS = (
    "accuracy",
    "mcr",
    "rs",
    "macro_f1",
    "auc",
    "sensitivity",
    "specificity",
    "knn_bac",
    "silhouette",
    "davies_bouldin",
)
HEADLINE_CONFIG = (
    "data",
    "method",
    "backbone",
    "pretrained",
    "image_size",
    "embedding_dim",
    "epochs",
    "batch_size",
    "lr",
    "split",
    "seed",
    "k_predict",
)


@dataclass(frozen=True)
class EvidenceCase:
    """A test image with its prediction and the nearest training cases (and their images)."""

    id: str
    true_class: str
    predicted_class: str
    probability: float
    image: np.ndarray
    neighbours: Sequence[Neighbour]
    neighbour_images: Sequence[np.ndarray]


@dataclass(frozen=True)
class RunReportInputs:
    """Everything a run report shows. ``config``, ``data`` and ``history`` are the run's
    config.yaml, data.json and history.json as dicts; ``metrics`` and ``outputs`` one part's."""

    title: str
    part: str
    class_names: list[str]
    config: dict
    data: dict
    history: list[dict]
    metrics: dict
    outputs: EvaluatedPart
    cases: Sequence[EvidenceCase] = ()
    wall_seconds: float | None = None
    extra: dict = field(default_factory=dict)  # shown as "key: value" under the title


def choose_cases(
    labels: np.ndarray,
    predicted: np.ndarray,
    train_counts: Sequence[int],
    *,
    count: int = 6,
    seed: int = 0,
) -> np.ndarray:
    """Positions of ``count`` cases to show: wrong and correct predictions alternately, each
    drawn class by class from the rarest training class up, so rare classes and errors appear."""
    if count < 0:
        raise ConfigError(f"count={count}: give the number of cases to show, e.g. 6.")
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    rng = np.random.default_rng(seed)
    rarest_first = np.argsort(np.asarray(train_counts), kind="stable")

    def class_by_class(mask: np.ndarray) -> list[int]:
        per_class = [rng.permutation(np.flatnonzero(mask & (labels == c))) for c in rarest_first]
        return [int(i) for i in _interleave(per_class)]

    wrong, correct = class_by_class(labels != predicted), class_by_class(labels == predicted)
    return np.array(list(_interleave([wrong, correct]))[:count], dtype=np.int64)


def _interleave(groups: Sequence[Sequence[int]]) -> list[int]:
    """The first of every group, then the second of every group, and so on."""
    return [i for row in itertools.zip_longest(*groups) for i in row if i is not None]


def write_run_report(folder: str | Path, inputs: RunReportInputs) -> Path:
    """Write ``folder/index.html`` with its PNGs and ``report.json`` (every number shown);
    returns the path of ``index.html``."""
    folder = Path(folder)
    figures = _write_figures(folder, inputs)
    cases = [_write_case(folder, i, case) for i, case in enumerate(inputs.cases)]
    metrics = inputs.metrics
    metric_rows = [
        {"key": key, "label": _metric_label(key, metrics), "value": metrics[key]}
        for key in REPORT_METRICS
        if key in metrics
    ]
    record = {
        "title": inputs.title,
        "part": inputs.part,
        "class_names": inputs.class_names,
        "config": inputs.config,
        "data": inputs.data,
        "wall_seconds": inputs.wall_seconds,
        "history": inputs.history,
        "metrics": metrics,
        "cases": cases,
        "figures": figures,
    }
    atomic_write_json(folder / "report.json", record)
    html = render_page(
        "run_report.html",
        **record,
        extra=inputs.extra,
        headline_config=[(k, inputs.config[k]) for k in HEADLINE_CONFIG if k in inputs.config],
        metric_rows=metric_rows,
        num_neighbours=max((len(c["neighbours"]) for c in cases), default=0),
    )
    return atomic_write_text(folder / "index.html", html)


def _metric_label(key: str, metrics: dict) -> str:
    label = METRIC_LABELS.get(key, key)
    return f"{label} ({metrics['rs_class']})" if key == "rs" and "rs_class" in metrics else label


def _write_figures(folder: Path, inputs: RunReportInputs) -> dict[str, str | None]:
    """The report's plots as PNGs in ``folder``; a plot the run cannot have is None."""
    part, names, outputs = inputs.part, inputs.class_names, inputs.outputs
    written = {
        "class_counts": plot_class_counts(inputs.data["counts"], folder / "class_counts.png")
        if "counts" in inputs.data
        else None,
        "training_curves": plot_training_curves(inputs.history, folder / "training_curves.png")
        if inputs.history
        else None,
        "confusion_matrix": plot_confusion_matrix(
            inputs.metrics["confusion_matrix"], names, folder / f"{part}_confusion_matrix.png"
        ),
        "roc": plot_roc_curves(outputs.labels, outputs.proba, names, folder / f"{part}_roc.png"),
        # t-SNE needs a few points; a tiny part gets no map rather than an error, and an
        # ensemble (no embedding of its own, zero columns) none at all.
        "embedding_map": plot_embedding_map(
            outputs.embeddings, outputs.labels, names, folder / f"{part}_embedding_map.png"
        )
        if len(outputs.labels) >= 3 and outputs.embeddings.shape[1] > 0
        else None,
    }
    return {key: None if path is None else path.name for key, path in written.items()}


def _write_case(folder: Path, number: int, case: EvidenceCase) -> dict:
    """Save the case's thumbnails under ``folder/cases``; its record with relative image paths."""
    query = write_image(case.image, folder / "cases" / f"case{number}.png")
    neighbours = []
    for rank, (neighbour, image) in enumerate(
        zip(case.neighbours, case.neighbour_images, strict=True), 1
    ):
        path = write_image(image, folder / "cases" / f"case{number}_neighbour{rank}.png")
        neighbours.append({**vars(neighbour), "image": f"cases/{path.name}"})
    return {
        "id": case.id,
        "true_class": case.true_class,
        "predicted_class": case.predicted_class,
        "probability": case.probability,
        "correct": case.true_class == case.predicted_class,
        "image": f"cases/{query.name}",
        "neighbours": neighbours,
    }
