"""The Deep kNN paper's Tables 2, S3 (K × M) and S4 (K_p) from a benchmark's runs.

python benchmarks/deepknn_tables.py runs/ham10000-deepknn --kp 1 3 5 7 9

A kNN method's trained runs keep the training-set embeddings (``knn/``) and the test embeddings
(``test_outputs.npz``), so every K_p is re-scored from them without retraining: the same network,
only the number of voting neighbours changes. Softmax methods (weighted CE) keep their one row.
When the benchmark's deepknn runs differ in K (``num_positives``) or M (``num_negatives``), a
K × M grid follows as in Table S3 (K_p = K, the paper's setting, and K_p = 5), with a heatmap.
Beneath, the verdict of every comparison docs/results/ham10000_deepknn.md makes (the results'
rule, ``medknn.evaluation.verdict``: paired seeds, held only with at least 5), among them the
paper's Table 4 (kNN on the CE-trained features, weighted CE's kNN BAC, against deep kNN) and,
for a K × M benchmark, every pair of cells that differ in K only or in M only.
Writes ``results_deepknn.md`` (and ``km_grid.png``) beside the benchmark's ``results.md``.
"""

from __future__ import annotations

import argparse
import re
from itertools import combinations
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from medknn.evaluation import PartOutputs, classification_metrics
from medknn.evaluation.verdict import verdict_lines, verdict_section
from medknn.io import atomic_write_text, read_json
from medknn.methods import get_method
from medknn.prediction import KNNClassifier
from medknn.reports import markdown_table, summarize
from medknn.reports.classification_plots import save_figure  # also selects the Agg backend
from medknn.reports.tables import METRIC_LABELS
from medknn.runs import RunDir, TrainConfig

COLUMNS = ("accuracy", "mcr", "rs")
TABLE2_KP = (1, 5)
GRID_COLUMNS = ("accuracy", "mcr")
# (K, M) → the test metrics of each seed's run.
GridCells = dict[tuple[int, int], list[dict]]
# The comparisons of docs/results/ham10000_deepknn.md: (A, B, metrics), at the runs' own K_p
# (5) unless the label names another; a pair missing from the benchmark is skipped.
COMPARISONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("deepknn", "knn-imagenet", ("accuracy", "mcr", "rs", "auc")),
    ("deepknn", "triplet", ("accuracy", "mcr", "rs", "auc")),
    ("weighted-ce", "deepknn", ("accuracy", "mcr", "rs")),
    ("deepknn-star", "deepknn", ("accuracy", "mcr", "rs")),
    ("deepknn-star", "weighted-ce", ("accuracy", "mcr", "rs", "knn_bac")),
    ("weighted-ce", "deepknn", ("knn_bac",)),  # Table 4: kNN on the CE-trained features
    ("deepknn (K_p = 1)", "knn-imagenet (K_p = 1)", ("mcr",)),
    ("deepknn (K_p = 1)", "triplet (K_p = 1)", ("mcr",)),
    ("deepknn", "deepknn-bank", ("accuracy", "mcr")),  # in-batch against whole-set neighbours
)
CELL_LABEL = re.compile(r"K(\d+)_M(\d+)")


def rescored(run: Path, k: int) -> dict:
    """The run's test metrics with ``k`` voting neighbours instead of its own K_p."""
    run_dir = RunDir(run)
    knn = KNNClassifier.load(run_dir.knn)
    outputs = PartOutputs.load(run_dir.outputs("test"))
    data = read_json(run_dir.data)
    class_names = data["class_names"]
    train_counts = np.array([data["counts"]["train"][name] for name in class_names])
    knn.set_params(n_neighbors=k)
    return classification_metrics(
        outputs.labels,
        knn.predict(outputs.embeddings),
        proba=knn.predict_proba(outputs.embeddings),
        class_names=class_names,
        train_counts=train_counts,
    )


def table_records(records: list[dict], kps: tuple[int, ...]) -> list[dict]:
    """One record per run and K_p for kNN runs (label "method (K_p = k)"), as is for the rest."""
    rows = []
    for record in records:
        run = Path(record["run"])
        if _predicts_with_knn(record):
            for k in kps:
                label = f"{record['label']} (K_p = {k})"
                rows.append({**record, "label": label, "metrics": rescored(run, k)})
        else:
            rows.append(record)
    return rows


def neighbour_counts(record: dict) -> tuple[int, int]:
    """K (same-class) and M (other-class) neighbours the run's triplets were formed from."""
    config = TrainConfig.load_saved(RunDir(Path(record["run"])).config)
    return config.num_positives, config.num_negatives


def km_cells(records: list[dict], kp: int | None) -> GridCells:
    """The deepknn runs by (K, M), re-scored with ``kp`` voters (``None``: K_p = K, as in S3)."""
    cells: GridCells = {}
    for record in records:
        if record["method"] != "deepknn":
            continue
        k, m = neighbour_counts(record)
        cells.setdefault((k, m), []).append(rescored(Path(record["run"]), kp or k))
    return cells


def _mean_std(metrics: list[dict], column: str) -> tuple[float, float]:
    values = [m[column] for m in metrics]
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def grid_table(cells: GridCells, columns: tuple[str, ...] = GRID_COLUMNS) -> str:
    """Table S3's layout: a row per M, a column per K, each cell "Acc / MCR" (± std over seeds,
    their number in brackets when more than one); "–" where the pair was not run."""
    ks = sorted({k for k, _ in cells})
    ms = sorted({m for _, m in cells})
    lines = [
        "| | " + " | ".join(f"K = {k}" for k in ks) + " |",
        "|---|" + "---|" * len(ks),
    ]
    for m in ms:
        row = [f"M = {m}"]
        for k in ks:
            metrics = cells.get((k, m))
            if not metrics:
                row.append("–")
                continue
            parts = []
            for column in columns:
                mean, std = _mean_std(metrics, column)
                parts.append(f"{mean:.3f} ± {std:.3f}" if len(metrics) > 1 else f"{mean:.3f}")
            seeds = f" ({len(metrics)})" if len(metrics) > 1 else ""
            row.append(" / ".join(parts) + seeds)
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def plot_grid(cells: GridCells, path: Path, columns: tuple[str, ...] = GRID_COLUMNS) -> Path:
    """One heatmap per metric over K (x) and M (y), each cell annotated with its mean."""
    ks = sorted({k for k, _ in cells})
    ms = sorted({m for _, m in cells})
    fig, axes = plt.subplots(1, len(columns), figsize=(3.6 * len(columns), 3.2), squeeze=False)
    for ax, column in zip(axes[0], columns, strict=True):
        grid = np.full((len(ms), len(ks)), np.nan)
        for (k, m), metrics in cells.items():
            grid[ms.index(m), ks.index(k)] = _mean_std(metrics, column)[0]
        image = ax.imshow(grid, cmap="viridis", origin="lower")
        for (row, col), value in np.ndenumerate(grid):
            if not np.isnan(value):
                # viridis is light at the top of its range: dark text there stays readable
                text_color = "black" if image.norm(value) > 0.6 else "white"
                ax.text(col, row, f"{value:.3f}", ha="center", va="center", color=text_color)
        ax.set_xticks(range(len(ks)), [str(k) for k in ks])
        ax.set_yticks(range(len(ms)), [str(m) for m in ms])
        ax.set_xlabel("K (same-class neighbours)")
        ax.set_ylabel("M (other-class neighbours)")
        ax.set_title(METRIC_LABELS.get(column, column))
        fig.colorbar(image, ax=ax, shrink=0.8)
    fig.tight_layout()
    return save_figure(fig, path)


def grid_comparisons(labels: list[str]) -> list[tuple[str, str]]:
    """Every pair of K × M cell labels (``K5_M3``) that differ in K only or in M only, the
    larger K or M first."""
    cells = {}
    for label in labels:
        match = CELL_LABEL.fullmatch(label)
        if match:
            cells[label] = (int(match.group(1)), int(match.group(2)))
    pairs = []
    for a, b in combinations(sorted(cells, key=cells.get), 2):
        (ka, ma), (kb, mb) = cells[a], cells[b]
        if (ka == kb) != (ma == mb):
            pairs.append((b, a))
    return pairs


def verdicts(records: list[dict]) -> list[str]:
    """The verdict lines of COMPARISONS and of the K × M cells (MCR), from ``records`` (the
    benchmark's runs, plus their K_p = 1 re-scoring where the label asks for it)."""
    lines = []
    for a, b, metrics in COMPARISONS:
        named = [(metric, METRIC_LABELS.get(metric, metric)) for metric in metrics]
        lines += verdict_lines(records, [(a, b)], named)
    labels = list(dict.fromkeys(r["label"] for r in records))
    lines += verdict_lines(records, grid_comparisons(labels), [("mcr", "MCR")])
    return lines


def _predicts_with_knn(record: dict) -> bool:
    return get_method(record["method"]).prediction == "knn"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the benchmark's --out folder")
    parser.add_argument("--kp", type=int, nargs="+", default=[1, 3, 5, 7, 9], help="K_p values")
    args = parser.parse_args()
    records = read_json(args.out / "results.json")["records"]
    table2 = summarize(table_records(records, TABLE2_KP), COLUMNS)
    knn_records = [r for r in records if _predicts_with_knn(r) and r["method"] != "knn-imagenet"]
    table_s4 = summarize(table_records(knn_records, tuple(args.kp)), COLUMNS)
    text = (
        "## Table 2 layout (K_p = 1 and 5)\n\n"
        + markdown_table(table2, COLUMNS)
        + "\n## Table S4 layout (the effect of K_p on the trained kNN methods)\n\n"
        + markdown_table(table_s4, COLUMNS)
    )
    at_k = km_cells(records, kp=None)
    if len(at_k) > 1:
        figure = plot_grid(at_k, args.out / "km_grid.png")
        text += (
            "\n## Table S3 layout (K × M; Acc / MCR at K_p = K, the paper's setting)\n\n"
            + grid_table(at_k)
            + "\nAt K_p = 5 for every cell:\n\n"
            + grid_table(km_cells(records, kp=5))
            + f"\n![Acc and MCR over K and M, K_p = K]({figure.name})\n"
        )
    kp1 = [r for r in table_records(records, (1,)) if "(K_p = 1)" in r["label"]]
    text += verdict_section(verdicts(records + kp1))
    print(text)
    atomic_write_text(args.out / "results_deepknn.md", text)


if __name__ == "__main__":
    main()
