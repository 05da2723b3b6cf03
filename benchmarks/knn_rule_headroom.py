"""How much a kNN run's test AUC and MCR could move with another decision rule.

For each finished kNN run: its validation and test embeddings (with the rule's test-time
augmentation), every rule of the grid ``choose_knn_rule`` searches (K_p × prior power × vote
temperature), and three rows per run: the rule chosen on validation (what the run uses), and,
as an upper bound no run may use, the best test AUC and the best test MCR any rule of the grid
reaches ("oracle": chosen on the test split, only to show the headroom). A small gap says the
embedding, not the rule, limits the score.

    python benchmarks/knn_rule_headroom.py RUN [RUN ...]
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from medknn.evaluation.decision_choice import KNN_VOTERS, PRIOR_POWERS, TEMPERATURE_FRACTIONS
from medknn.prediction import TrainedRun, compute_outputs
from medknn.prediction.decision import knn_vote_proba
from medknn.serve.service import load_prepared


def auc(labels: np.ndarray, proba: np.ndarray) -> float:
    if proba.shape[1] == 2:
        return float(roc_auc_score(labels, proba[:, 1]))
    return float(roc_auc_score(labels, proba, multi_class="ovr", labels=range(proba.shape[1])))


def rule_grid(run_path: Path) -> list[dict[str, float]]:
    """The run's own rule, then the grid's rules with the best test AUC and the best test MCR."""
    run = TrainedRun.load(run_path)
    if run.decision is None or run.decision.kind != "knn":
        raise SystemExit(f"{run_path}: not a kNN run with a decision rule.")
    prepared = load_prepared(run)
    neighbours = {}
    for part in ("val", "test"):
        dataset = prepared.dataset(part, augment=False)
        embeddings, _ = compute_outputs(run.network, dataset, tta=run.decision.tta)
        distances, indices = run.knn.kneighbors(embeddings, max(KNN_VOTERS))
        neighbours[part] = (distances, run.knn.labels_[indices], prepared.labels(part))
    counts = prepared.class_counts("train")

    def scores(k: int, prior_power: float, temperature: float) -> dict[str, float]:
        row = {"k": k, "prior_power": prior_power}
        for part, (distances, neighbour_labels, labels) in neighbours.items():
            proba = knn_vote_proba(
                distances[:, :k],
                neighbour_labels[:, :k],
                counts,
                prior_power=prior_power,
                temperature=temperature,
            )
            row[f"{part}_mcr"] = float(balanced_accuracy_score(labels, proba.argmax(axis=1)))
            row[f"{part}_auc"] = auc(labels, proba)
        return row

    # The same temperature scale as choose_knn_rule: the validation neighbours' distance spread.
    val_distances = neighbours["val"][0]
    spread = float(np.median(val_distances[:, -1] - val_distances[:, 0])) or 1.0
    grid = [
        scores(k, power, fraction * spread)
        for k, power, fraction in itertools.product(KNN_VOTERS, PRIOR_POWERS, TEMPERATURE_FRACTIONS)
    ]
    rule = run.decision
    return [
        scores(rule.k, rule.prior_power, rule.temperature),
        max(grid, key=lambda r: r["test_auc"]),
        max(grid, key=lambda r: r["test_mcr"]),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args()
    print("| run | rule | K_p | prior power | val MCR | test MCR | test AUC |")
    print("|---|---|---|---|---|---|---|")
    for run_path in args.runs:
        names = ("chosen on validation", "oracle: best test AUC", "oracle: best test MCR")
        for name, row in zip(names, rule_grid(run_path), strict=True):
            print(
                f"| {run_path} | {name} | {row['k']} | {row['prior_power']:g} | "
                f"{row['val_mcr']:.3f} | {row['test_mcr']:.3f} | {row['test_auc']:.3f} |"
            )


if __name__ == "__main__":
    main()
