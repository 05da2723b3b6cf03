"""The Deep kNN paper's Table 2 (K_p = 1 and 5) and Table S4 (the effect of K_p) from a benchmark.

python benchmarks/deepknn_tables.py runs/ham10000-deepknn --kp 1 3 5 7 9

A kNN method's trained runs keep the training-set embeddings (``knn/``) and the test embeddings
(``test_outputs.npz``), so every K_p is re-scored from them without retraining: the same network,
only the number of voting neighbours changes. Softmax methods (weighted CE) keep their one row.
Writes ``results_deepknn.md`` beside the benchmark's ``results.md``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from medknn.evaluation import PartOutputs, classification_metrics
from medknn.io import atomic_write_text, read_json
from medknn.methods import get_method
from medknn.prediction import KNNClassifier
from medknn.reports import markdown_table, summarize
from medknn.training import RunDir

COLUMNS = ("accuracy", "mcr", "rs")
TABLE2_KP = (1, 5)


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
    print(text)
    atomic_write_text(args.out / "results_deepknn.md", text)


if __name__ == "__main__":
    main()
