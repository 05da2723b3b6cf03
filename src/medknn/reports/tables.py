"""Metric tables: one run's metrics, and a benchmark's mean ± std over seeds (Markdown, CSV)."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence

import numpy as np

METRIC_LABELS = {
    "accuracy": "Acc",
    "mcr": "MCR",
    "rs": "RS",
    "macro_f1": "macro F1",
    "f1_majority": "F1 majority",
    "f1_middle": "F1 middle",
    "f1_minority": "F1 minority",
    "auc": "AUC",
    "ece": "ECE",
    "knn_bac": "kNN BAC",
    "silhouette": "silhouette",
    "davies_bouldin": "Davies-Bouldin",
}
DEFAULT_COLUMNS = ("accuracy", "mcr", "rs", "macro_f1", "auc")
# Embedding-quality metrics (evaluation/embedding_quality.py), shown when runs report them.
EMBEDDING_COLUMNS = ("knn_bac", "silhouette", "davies_bouldin")
# Shown when runs report them: expected calibration error (runs of decision-rule medknn).
OPTIONAL_COLUMNS = ("ece", *EMBEDDING_COLUMNS)
LOWER_IS_BETTER = frozenset({"davies_bouldin", "ece"})


def summarize(results: Sequence[dict], columns: Sequence[str] = DEFAULT_COLUMNS) -> list[dict]:
    """Group ``{"label", "seed", "metrics", "wall_seconds"}`` records by label (first-seen order);
    each row holds ``mean``/``std`` per metric over seeds (None where a metric is undefined)."""
    order: list[str] = []
    groups: dict[str, list[dict]] = {}
    for record in results:
        if record["label"] not in groups:
            order.append(record["label"])
        groups.setdefault(record["label"], []).append(record)
    rows = []
    for label in order:
        records = groups[label]
        row: dict = {"label": label, "runs": len(records), "mean": {}, "std": {}}
        for column in columns:
            values = [r["metrics"].get(column) for r in records]
            values = [v for v in values if v is not None]
            row["mean"][column] = float(np.mean(values)) if values else None
            row["std"][column] = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        walls = [r.get("wall_seconds") or 0.0 for r in records]
        row["wall_seconds"] = float(np.mean(walls))
        rows.append(row)
    return rows


def markdown_table(rows: Sequence[dict], columns: Sequence[str] = DEFAULT_COLUMNS) -> str:
    """Mean ± std per metric, the best mean of each column in bold, wall time per run."""
    best = {c: best_mean(rows, c) for c in columns}
    header = ["method", *[METRIC_LABELS.get(c, c) for c in columns], "runs", "wall s/run"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row["label"]]
        for column in columns:
            mean, std = row["mean"][column], row["std"][column]
            text = "n/a" if mean is None else f"{mean:.3f} ± {std:.3f}"
            cells.append(f"**{text}**" if mean is not None and mean == best[column] else text)
        cells += [str(row["runs"]), f"{row['wall_seconds']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def per_seed_table(
    results: Sequence[dict], columns: Sequence[str], labels: Sequence[str] | None = None
) -> str:
    """A row per label (``labels`` in that order, default: all, first-seen order), a column per
    seed, each cell the ``columns``' values joined by " / ": what a paired verdict reads, kept
    on a results page when its run folders are not."""
    seeds = sorted({r["seed"] for r in results})
    cells: dict[str, dict[int, str]] = {}
    for record in results:
        values = (record["metrics"].get(column) for column in columns)
        cells.setdefault(record["label"], {})[record["seed"]] = " / ".join(
            "–" if value is None else f"{value:.3f}" for value in values
        )
    names = " / ".join(METRIC_LABELS.get(c, c) for c in columns)
    lines = [f"| method ({names}) | " + " | ".join(f"seed {s}" for s in seeds) + " |"]
    lines.append("|---|" + "---|" * len(seeds))
    for label in labels if labels is not None else list(cells):
        by_seed = cells.get(label, {})
        lines.append(f"| {label} | " + " | ".join(by_seed.get(s, "–") for s in seeds) + " |")
    return "\n".join(lines) + "\n"


def csv_table(rows: Sequence[dict], columns: Sequence[str] = DEFAULT_COLUMNS) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        ["method", *[f"{c}_{s}" for c in columns for s in ("mean", "std")], "runs", "wall_seconds"]
    )
    for row in rows:
        values = []
        for column in columns:
            values += [_fmt(row["mean"][column]), _fmt(row["std"][column])]
        writer.writerow([row["label"], *values, row["runs"], f"{row['wall_seconds']:.1f}"])
    return buffer.getvalue()


def run_table(metrics: dict, columns: Sequence[str] = DEFAULT_COLUMNS) -> str:
    """One run's headline metrics and its per-class precision/recall/F1, as Markdown."""
    lines = ["| " + " | ".join(METRIC_LABELS.get(c, c) for c in columns) + " |"]
    lines.append("|" + "---|" * len(columns))
    lines.append("| " + " | ".join(_fmt(metrics.get(c)) for c in columns) + " |")
    lines += ["", "| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for name, scores in metrics["per_class"].items():
        lines.append(
            f"| {name} | {scores['precision']:.3f} | {scores['recall']:.3f} | "
            f"{scores['f1']:.3f} | {scores['support']} |"
        )
    return "\n".join(lines) + "\n"


def best_mean(rows: Sequence[dict], column: str) -> float | None:
    """The best mean of ``column`` over ``rows`` (the lowest for a lower-is-better metric)."""
    means = [r["mean"][column] for r in rows if r["mean"][column] is not None]
    if not means:
        return None
    return min(means) if column in LOWER_IS_BETTER else max(means)


def _fmt(value: float | None) -> str:
    return (
        "n/a"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f"{value:.4f}"
    )
