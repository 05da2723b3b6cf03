"""Bar charts and curves for the HTML reports: class counts, training curves, and a benchmark's
per-class recall and wall time by method."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib import pyplot as plt

from medknn.reports.classification_plots import save_figure


def plot_grouped_bars(
    values: Mapping[str, Sequence[float]],
    categories: Sequence[str],
    path: str | Path,
    *,
    ylabel: str,
    title: str,
    errors: Mapping[str, Sequence[float]] | None = None,
    label_bars: bool = False,
) -> Path:
    """One group of bars per category, one bar per series (``values[series][category]``);
    ``label_bars`` writes each bar's value on it (integers, e.g. counts)."""
    width = 0.8 / max(len(values), 1)
    positions = np.arange(len(categories))
    bars = len(categories) * len(values)
    figure, axes = plt.subplots(figsize=(min(8.0, max(5.0, 1.5 + 0.25 * bars)), 3.4))
    for i, (series, heights) in enumerate(values.items()):
        container = axes.bar(
            positions + (i - (len(values) - 1) / 2) * width,
            heights,
            width,
            yerr=None if errors is None else errors[series],
            capsize=2,
            label=series,
        )
        if label_bars:
            # Rare classes are invisible next to a common one: their counts are written out.
            axes.bar_label(container, fmt="%d", fontsize=6, padding=1)
    crowded = sum(len(name) for name in categories) > 40
    axes.set_xticks(
        positions, categories, rotation=30 if crowded else 0, ha="right" if crowded else "center"
    )
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.legend(fontsize=8)
    axes.grid(axis="y", alpha=0.3)
    return save_figure(figure, path)


def plot_class_counts(counts: Mapping[str, Mapping[str, int]], path: str | Path) -> Path:
    """Images per class in each part of the split (``counts[part][class]``, as in data.json)."""
    parts = [part for part, per_class in counts.items() if sum(per_class.values())]
    classes = list(next(iter(counts.values())))
    return plot_grouped_bars(
        {part: [counts[part][name] for name in classes] for part in parts},
        classes,
        path,
        ylabel="images",
        title="images per class and split",
        label_bars=True,
    )


def plot_training_curves(history: Sequence[Mapping[str, float]], path: str | Path) -> Path:
    """Training loss and, where the run was validated, validation MCR and accuracy per epoch."""
    figure, (loss_axes, score_axes) = plt.subplots(1, 2, figsize=(10, 3.6))
    epochs = [record["epoch"] for record in history]
    loss_axes.plot(epochs, [record["loss"] for record in history], marker="o")
    loss_axes.set_title("training loss")
    for key, label, style in (
        ("val_mcr", "validation MCR", "o-"),
        ("val_accuracy", "validation accuracy", "s--"),  # dashed: visible where they coincide
    ):
        validated = [r for r in history if r.get(key) is not None]
        if validated:
            x, y = [r["epoch"] for r in validated], [r[key] for r in validated]
            score_axes.plot(x, y, style, label=label, markerfacecolor="none")
    if score_axes.lines:
        score_axes.legend(fontsize=8)
        score_axes.set_ylim(0, 1.02)
    else:
        score_axes.text(0.5, 0.5, "no validation set", ha="center", transform=score_axes.transAxes)
    score_axes.set_title("validation")
    for axes in (loss_axes, score_axes):
        axes.set_xlabel("epoch")
        axes.grid(alpha=0.3)
        axes.xaxis.get_major_locator().set_params(integer=True)
    return save_figure(figure, path)


def plot_wall_times(
    labels: Sequence[str], means: Sequence[float], stds: Sequence[float], path: str | Path
) -> Path:
    """Mean wall time of one run per method, with the spread over seeds."""
    figure, axes = plt.subplots(figsize=(6.5, 0.9 + 0.4 * len(labels)))
    rows = np.arange(len(labels))
    axes.barh(rows, means, xerr=stds, capsize=3, color="tab:grey")
    axes.set_yticks(rows, labels)
    axes.invert_yaxis()  # first method on top, as in the table
    axes.set_xlabel("wall time per run (s)")
    axes.grid(axis="x", alpha=0.3)
    return save_figure(figure, path)
