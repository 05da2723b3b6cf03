"""Per-class F-score of several methods side by side (Marrakchi et al. 2021, Fig. 3)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from medknn.errors import DataError
from medknn.reports.summary_plots import plot_grouped_bars


def plot_per_class_f1(
    runs: Mapping[str, Sequence[Mapping]],
    path: str | Path,
    *,
    class_order: Sequence[str] | None = None,
    title: str = "F-score per class",
) -> Path:
    """One group of bars per class, one bar per method: the mean F1 over that method's runs
    (``runs[label]`` holds their ``metrics.json`` dicts), with the standard deviation over runs
    as whiskers. ``class_order`` sets the classes and their order (e.g. by training count,
    majority first, as in the paper); by default that of the first run's ``per_class``."""
    if not runs or not all(runs.values()):
        raise DataError("plot_per_class_f1 needs at least one run for every method label.")
    classes = list(class_order or next(iter(runs.values()))[0]["per_class"])
    means, stds = {}, {}
    for label, metrics in runs.items():
        missing = [c for c in classes if any(c not in m["per_class"] for m in metrics)]
        if missing:
            raise DataError(f"Runs of {label!r} have no F1 for class(es) {', '.join(missing)}.")
        scores = np.array([[m["per_class"][c]["f1"] for c in classes] for m in metrics])
        means[label] = scores.mean(axis=0).tolist()
        stds[label] = (scores.std(axis=0, ddof=1) if len(scores) > 1 else 0 * scores[0]).tolist()
    return plot_grouped_bars(means, classes, path, ylabel="F-score", title=title, errors=stds)
