"""Constellation loss, forward + backward, against PML's multi-class N-pair loss.

python benchmarks/bench_constellation_speed.py --batches 40:8 256:8 --k 3 5 7
"""

from __future__ import annotations

import argparse

import pytorch_metric_learning
import torch
from _report import markdown_table, median_seconds, write_report
from pytorch_metric_learning.losses import NPairsLoss

from medknn.losses import ConstellationLoss


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--batches",
        nargs="+",
        default=["40:8", "256:8"],
        help="BATCH:CLASSES, a P x Q batch of CLASSES classes with BATCH/CLASSES cases each "
        "(8 classes: the paper's histology set)",
    )
    parser.add_argument("--k", nargs="+", type=int, default=[3, 5, 7], help="negatives K")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    return parser.parse_args()


def forward_backward(loss_fn, base: torch.Tensor, labels: torch.Tensor):
    def run() -> None:
        # The paper's head: sigmoid then L2 normalisation, differentiated like in training.
        raw = base.clone().requires_grad_(True)
        loss_fn(torch.nn.functional.normalize(torch.sigmoid(raw), dim=1), labels).backward()

    return run


def main() -> None:
    args = parse_args()
    npairs = NPairsLoss()
    rows = []
    generator = torch.Generator().manual_seed(0)
    for spec in args.batches:
        batch_size, num_classes = (int(v) for v in spec.split(":"))
        per_class = batch_size // num_classes
        labels = torch.arange(num_classes).repeat_interleave(per_class)
        base = torch.randn(len(labels), args.dim, generator=generator)
        losses = {f"K={k}": ConstellationLoss(k) for k in args.k}
        runs = {name: forward_backward(loss, base, labels) for name, loss in losses.items()}
        runs["npairs"] = forward_backward(npairs, base, labels)
        seconds = median_seconds(runs, reps=args.reps, warmup=args.warmup)
        for name, loss in losses.items():
            loss(base, labels)  # for the pair and term counts
            rows.append(
                [
                    f"{len(labels)} ({num_classes}x{per_class})",
                    name,
                    loss.num_pairs,
                    loss.num_terms,
                    f"{seconds[name] * 1e3:.2f}",
                    f"{seconds['npairs'] * 1e3:.2f}",
                    f"{seconds[name] / seconds['npairs']:.2f}x",
                ]
            )
    table = markdown_table(
        [
            "batch (P x Q)",
            "constellation",
            "pairs",
            "exp terms",
            "constellation ms",
            "PML N-pairs ms",
            "ratio",
        ],
        rows,
    )
    notes = (
        f"Forward + backward of one batch of {args.dim}-d embeddings (sigmoid + L2 normalisation "
        f"included) on CPU, median of {args.reps} reps after {args.warmup} warm-up rounds, the "
        "losses alternating. Constellation: every same-class pair of the batch once, each with "
        "K freshly drawn negatives from distinct classes (no Python loop over anchors). PML "
        "NPairsLoss: one pair per class, as in Sohn 2016. torch threads: "
        f"{torch.get_num_threads()}. Target: ratio <= 2x."
    )
    versions = {
        "torch": torch.__version__,
        "pytorch-metric-learning": pytorch_metric_learning.__version__,
    }
    write_report(
        "bench_constellation_speed",
        "Constellation loss vs PML multi-class N-pair loss",
        table,
        versions,
        notes,
    )


if __name__ == "__main__":
    main()
