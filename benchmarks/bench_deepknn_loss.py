"""Deep kNN miner + loss, forward + backward, against PML's batch-hard triplet loss.

python benchmarks/bench_deepknn_loss.py --batches 90:9 256:16
"""

from __future__ import annotations

import argparse
from importlib.metadata import version

import pytorch_metric_learning
import torch
from _report import markdown_table, median_seconds, write_report
from pytorch_metric_learning.distances import LpDistance
from pytorch_metric_learning.losses import TripletMarginLoss
from pytorch_metric_learning.miners import BatchHardMiner

from medknn.losses.deep_knn_loss import DeepKNNLoss


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--batches",
        nargs="+",
        default=["90:9", "256:16"],
        help="BATCH:CLASSES, a P x Q batch of CLASSES classes with BATCH/CLASSES cases each",
    )
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--k", type=int, default=5, help="Deep kNN positives per anchor")
    parser.add_argument("--m", type=int, default=5, help="Deep kNN negatives per anchor")
    parser.add_argument("--margin", type=float, default=0.2)
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    return parser.parse_args()


def forward_backward(loss_fn, base: torch.Tensor, labels: torch.Tensor):
    def run() -> None:
        embeddings = base.clone().requires_grad_(True)
        loss_fn(embeddings, labels).backward()

    return run


def main() -> None:
    args = parse_args()
    deep_knn = DeepKNNLoss(args.k, args.m, margin=args.margin)
    distance = LpDistance(normalize_embeddings=True, p=2, power=1)
    miner = BatchHardMiner(distance=distance)
    triplet = TripletMarginLoss(margin=args.margin, distance=distance)

    def batch_hard(embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return triplet(embeddings, labels, miner(embeddings, labels))

    rows = []
    generator = torch.Generator().manual_seed(0)
    for spec in args.batches:
        batch_size, num_classes = (int(v) for v in spec.split(":"))
        labels = torch.arange(num_classes).repeat_interleave(batch_size // num_classes)
        base = torch.randn(len(labels), args.dim, generator=generator)
        seconds = median_seconds(
            {
                "deep_knn": forward_backward(deep_knn, base, labels),
                "batch_hard": forward_backward(batch_hard, base, labels),
            },
            reps=args.reps,
            warmup=args.warmup,
        )
        deep_knn(base, labels)  # for the triplet count
        rows.append(
            [
                f"{len(labels)} ({num_classes}x{len(labels) // num_classes})",
                args.dim,
                deep_knn.num_triplets,
                f"{seconds['deep_knn'] * 1e3:.2f}",
                f"{seconds['batch_hard'] * 1e3:.2f}",
                f"{seconds['deep_knn'] / seconds['batch_hard']:.2f}x",
            ]
        )
    table = markdown_table(
        [
            "batch (P x Q)",
            "dim",
            "Deep kNN triplets",
            "Deep kNN ms",
            "PML batch-hard ms",
            "ratio",
        ],
        rows,
    )
    notes = (
        f"Forward + backward of one batch on CPU, median of {args.reps} reps after {args.warmup} "
        f"warm-up rounds, the two methods alternating. Deep kNN: K={args.k}, M={args.m}, "
        f"margin {args.margin}, all K*M triplets per anchor with the mean over all of them. "
        "PML: BatchHardMiner + TripletMarginLoss (one triplet per anchor), same distance "
        f"(L2 on unit vectors). torch threads: {torch.get_num_threads()}. Target: ratio <= 1.5x."
    )
    versions = {
        "torch": torch.__version__,
        "pytorch-metric-learning": pytorch_metric_learning.__version__,
        "faiss-cpu": version("faiss-cpu"),
    }
    write_report(
        "bench_deepknn_loss", "Deep kNN loss vs PML batch-hard triplet loss", table, versions, notes
    )


if __name__ == "__main__":
    main()
