"""A benchmark's HTML report: methods × metrics (mean ± std, best per column marked),
per-class recall by method, and wall time per method."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from medknn.errors import DataError
from medknn.io import atomic_write_json, atomic_write_text
from medknn.reports.html_page import render_page
from medknn.reports.summary_plots import plot_grouped_bars, plot_wall_times
from medknn.reports.tables import LOWER_IS_BETTER, METRIC_LABELS, best_mean, summarize


def write_benchmark_report(
    folder: str | Path,
    rows: Sequence[dict],
    records: Sequence[dict],
    columns: Sequence[str],
    *,
    title: str = "Benchmark",
) -> Path:
    """Write ``folder/index.html`` with its PNGs and ``report.json`` from a benchmark's
    ``rows`` (``summarize``) and ``records`` (one per run: label, seed, metrics, wall_seconds,
    run); returns the path of ``index.html``."""
    if not rows or not records:
        raise DataError(f"The benchmark for {folder} has no finished runs to report.")
    folder = Path(folder)
    class_names = list(records[0]["metrics"].get("per_class", {}))
    recall_rows = summarize(
        [
            {**r, "metrics": {c: s["recall"] for c, s in r["metrics"].get("per_class", {}).items()}}
            for r in records
        ],
        class_names,
    )
    wall_rows = summarize(
        [{**r, "metrics": {"wall_seconds": r.get("wall_seconds")}} for r in records],
        ["wall_seconds"],
    )
    wall = {}
    for row in wall_rows:
        times = [r.get("wall_seconds") or 0.0 for r in records if r["label"] == row["label"]]
        wall[row["label"]] = {
            "mean": row["mean"]["wall_seconds"],
            "std": row["std"]["wall_seconds"],
            "total": sum(times),
        }
    figures = {
        "per_class_recall": plot_grouped_bars(
            {row["label"]: [row["mean"][c] or 0.0 for c in class_names] for row in recall_rows},
            class_names,
            folder / "per_class_recall.png",
            errors={row["label"]: [row["std"][c] for c in class_names] for row in recall_rows},
            ylabel="recall (mean over seeds)",
            title="recall per class and method",
        ).name
        if class_names
        else None,
        "wall_times": plot_wall_times(
            list(wall),
            [w["mean"] or 0.0 for w in wall.values()],
            [w["std"] for w in wall.values()],
            folder / "wall_times.png",
        ).name,
    }
    record = {
        "title": title,
        "columns": list(columns),
        "rows": list(rows),
        "best": {c: best_mean(rows, c) for c in columns},
        "lower_is_better": sorted(LOWER_IS_BETTER & set(columns)),
        "class_names": class_names,
        "per_class_recall": recall_rows,
        "wall_seconds": wall,
        "runs": [_run_entry(r, folder) for r in records],
        "figures": figures,
    }
    atomic_write_json(folder / "report.json", record)
    html = render_page(
        "benchmark_report.html",
        **record,
        labels={c: METRIC_LABELS.get(c, c) for c in columns},
        seeds=sorted({r["seed"] for r in records}),
    )
    return atomic_write_text(folder / "index.html", html)


def _run_entry(record: dict, folder: Path) -> dict:
    """A run's row on the page, linked to its own report where one has been written."""
    run = record.get("run")
    run_report = Path(run) / "report" / "index.html" if run else None
    linked = run_report is not None and run_report.is_file()
    metrics = record["metrics"]
    return {
        "label": record["label"],
        "seed": record["seed"],
        "run": run,
        "report": os.path.relpath(run_report, folder) if linked else None,
        "accuracy": metrics.get("accuracy"),
        "mcr": metrics.get("mcr"),
        "wall_seconds": record.get("wall_seconds"),
    }
