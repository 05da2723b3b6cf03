"""The Deep kNN paper's Fig. 2: training kNN accuracy per epoch, deep kNN loss against triplet loss.

python benchmarks/deepknn_convergence.py runs/ham10000-convergence --accuracy 0.75

Reads each run's ``history.json`` (``train_knn_accuracy``: leave-one-out kNN accuracy on the
re-embedded training set, logged whenever a kNN method validates), draws one curve per method
(mean over seeds) into ``convergence.png`` and writes ``results_convergence.md`` with the first
epoch at which each method reaches ``--accuracy``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from medknn.io import atomic_write_text, read_json
from medknn.reports.classification_plots import save_figure  # also selects the Agg backend
from medknn.runs import RunDir

KEY = "train_knn_accuracy"


def curves(out: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """label -> (epochs, mean training kNN accuracy over the label's seeds)."""
    by_label: dict[str, list[dict[int, float]]] = {}
    for record in read_json(out / "results.json")["records"]:
        history = read_json(RunDir(Path(record["run"])).history)
        scores = {int(r["epoch"]): r[KEY] for r in history if r.get(KEY) is not None}
        if not scores:
            raise SystemExit(f"{record['run']} logged no {KEY}: validate kNN methods every epoch.")
        by_label.setdefault(record["label"], []).append(scores)
    result = {}
    for label, runs in by_label.items():
        epochs = sorted(set.intersection(*(set(run) for run in runs)))
        result[label] = (
            np.array(epochs),
            np.array([np.mean([r[e] for r in runs]) for e in epochs]),
        )
    return result


def first_epoch_reaching(epochs: np.ndarray, accuracy: np.ndarray, level: float) -> int | None:
    reached = np.flatnonzero(accuracy >= level)
    return int(epochs[reached[0]]) if len(reached) else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the benchmark's --out folder")
    parser.add_argument("--accuracy", type=float, default=0.75, help="the level to reach")
    args = parser.parse_args()
    data = curves(args.out)
    figure, axis = plt.subplots(figsize=(5.5, 3.6))
    lines = [
        f"| method | epochs to training kNN accuracy ≥ {args.accuracy} | final |",
        "|---|---|---|",
    ]
    for label, (epochs, accuracy) in data.items():
        axis.plot(epochs, accuracy, marker="o", label=label)
        reached = first_epoch_reaching(epochs, accuracy, args.accuracy)
        shown = "not reached" if reached is None else str(reached)
        lines.append(f"| {label} | {shown} | {accuracy[-1]:.3f} |")
    axis.axhline(args.accuracy, color="grey", linestyle=":", linewidth=1)
    axis.set_xlabel("epoch")
    axis.set_ylabel("training kNN accuracy (leave-one-out)")
    axis.legend()
    axis.grid(alpha=0.3)
    save_figure(figure, args.out / "convergence.png")
    text = "\n".join(lines) + "\n"
    print(text)
    atomic_write_text(args.out / "results_convergence.md", text)


if __name__ == "__main__":
    main()
