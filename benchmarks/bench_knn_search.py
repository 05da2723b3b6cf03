"""Exact kNN: medknn's faiss KNNClassifier against scikit-learn's brute force.

python benchmarks/bench_knn_search.py --train 10000 --queries 2000 --dim 128 --k 5
"""

from __future__ import annotations

import argparse
from importlib.metadata import version

import numpy as np
import sklearn
import torch
from _report import markdown_table, median_seconds, write_report
from sklearn.neighbors import KNeighborsClassifier

from medknn.prediction.knn import KNNClassifier


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=10_000, help="training embeddings")
    parser.add_argument("--queries", type=int, default=2_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--classes", type=int, default=7)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=1)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    rng = np.random.default_rng(0)
    train = rng.normal(size=(args.train, args.dim)).astype(np.float32)
    labels = rng.integers(0, args.classes, args.train)
    queries = rng.normal(size=(args.queries, args.dim)).astype(np.float32)

    faiss_knn = KNNClassifier(args.k).fit(train, labels)
    sklearn_knn = KNeighborsClassifier(args.k, algorithm="brute").fit(train, labels)
    agree = np.mean(faiss_knn.kneighbors(queries)[1] == sklearn_knn.kneighbors(queries)[1])

    rows = []
    for operation in ("kneighbors", "predict"):
        seconds = median_seconds(
            {
                "faiss": lambda op=operation: getattr(faiss_knn, op)(queries),
                "sklearn": lambda op=operation: getattr(sklearn_knn, op)(queries),
            },
            reps=args.reps,
            warmup=args.warmup,
        )
        for name, label in (
            ("faiss", "medknn KNNClassifier (faiss IndexFlatL2)"),
            ("sklearn", "scikit-learn KNeighborsClassifier(algorithm='brute')"),
        ):
            rows.append(
                [
                    label,
                    operation,
                    f"{seconds[name] * 1e3:.1f}",
                    f"{args.queries / seconds[name]:,.0f}",
                    f"{seconds['sklearn'] / seconds[name]:.2f}x",
                ]
            )
    table = markdown_table(
        ["method", "operation", "median ms", "queries/s", "speed-up vs scikit-learn"], rows
    )
    notes = (
        f"{args.train} x {args.dim} float32 training embeddings ({args.classes} classes), "
        f"{args.queries} queries, k={args.k}, exact search; median of {args.reps} reps after "
        f"{args.warmup} warm-up round(s), the two methods alternating. Neighbour indices agree "
        f"on {agree:.2%} of the entries. Target: faiss faster than scikit-learn."
    )
    versions = {
        "torch": torch.__version__,
        "faiss-cpu": version("faiss-cpu"),
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
    }
    write_report(
        "bench_knn_search", "Exact kNN search: faiss vs scikit-learn", table, versions, notes
    )


if __name__ == "__main__":
    main()
