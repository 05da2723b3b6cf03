"""The Deep kNN paper's Table 3 layout: one column per method, one row per metric."""

from __future__ import annotations

from collections.abc import Sequence

from medknn.reports.tables import METRIC_LABELS

TABLE3_COLUMNS = ("accuracy", "mcr", "rs")


def methods_as_columns_table(rows: Sequence[dict], metrics: Sequence[str] = TABLE3_COLUMNS) -> str:
    """Markdown of ``summarize`` rows turned sideways: mean ± std over seeds in %, the best
    mean of each metric in bold (all of these metrics are higher-is-better), wall time last."""
    header = ["metric (%)", *(row["label"] for row in rows)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for metric in metrics:
        means = [row["mean"][metric] for row in rows if row["mean"][metric] is not None]
        best = max(means, default=None)
        cells = [METRIC_LABELS.get(metric, metric)]
        for row in rows:
            mean, std = row["mean"][metric], row["std"][metric]
            text = "n/a" if mean is None else f"{100 * mean:.1f} ± {100 * std:.1f}"
            cells.append(f"**{text}**" if mean is not None and mean == best else text)
        lines.append("| " + " | ".join(cells) + " |")
    runs = [f"{row['wall_seconds']:.0f}" for row in rows]
    lines.append("| wall s/run | " + " | ".join(runs) + " |")
    return "\n".join(lines) + "\n"
