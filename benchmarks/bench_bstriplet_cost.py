"""BSTriplet forward + backward as a share of one MobileNetV3-Small training step (issue 3 §6).

python benchmarks/bench_bstriplet_cost.py --batches 36 256 --image-sizes 28 128
"""

from __future__ import annotations

import argparse

import pytorch_metric_learning
import timm
import torch
import torch.nn.functional as F
from _report import markdown_table, median_seconds, write_report

from medknn.losses import BSTripletLoss
from medknn.models import create_network

BACKBONE = "mobilenetv3_small_100"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", nargs="+", type=int, default=[36, 256])
    parser.add_argument("--image-sizes", nargs="+", type=int, default=[28, 128])
    parser.add_argument("--classes", type=int, default=2)
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    return parser.parse_args()


def loss_run(loss_fn: BSTripletLoss, features: torch.Tensor, labels: torch.Tensor):
    def run() -> None:
        loss_fn(features.clone().requires_grad_(True), labels).backward()

    return run


def training_step_run(
    network: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    labels: torch.Tensor,
):
    def run() -> None:
        optimizer.zero_grad(set_to_none=True)
        _, logits = network(images)
        F.cross_entropy(logits, labels).backward()
        optimizer.step()

    return run


def main() -> None:
    args = parse_args()
    torch.manual_seed(0)
    loss_fn = BSTripletLoss()
    rows = []
    for image_size in args.image_sizes:
        # As medknn trains it: small_input (stride-1 stem) at 32 px and below.
        network = create_network(
            BACKBONE,
            embedding_dim=None,
            normalize=False,
            num_classes=args.classes,
            small_input=image_size <= 32,
        ).train()
        optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
        for batch_size in args.batches:
            images = torch.randn(batch_size, 3, image_size, image_size)
            labels = torch.arange(batch_size) % args.classes
            # Non-negative like the pooled features the loss sees in training.
            features = torch.rand(batch_size, network.embedding_dim)

            seconds = median_seconds(
                {
                    "bstriplet": loss_run(loss_fn, features, labels),
                    "step": training_step_run(network, optimizer, images, labels),
                },
                reps=args.reps,
                warmup=args.warmup,
            )
            rows.append(
                [
                    batch_size,
                    image_size,
                    network.embedding_dim,
                    f"{seconds['bstriplet'] * 1e3:.2f}",
                    f"{seconds['step'] * 1e3:.1f}",
                    f"{100 * seconds['bstriplet'] / seconds['step']:.2f} %",
                ]
            )
    table = markdown_table(
        ["batch", "image px", "feature dim", "BSTriplet fwd+bwd ms", "training step ms", "share"],
        rows,
    )
    notes = (
        f"BSTriplet (squared, m = 0.9) forward + backward on the {BACKBONE} pooled feature, "
        f"against one training step of {BACKBONE} (forward, cross entropy, backward, Adam step) "
        f"on the same batch of {args.classes}-class images; CPU, median of {args.reps} reps after "
        f"{args.warmup} warm-up rounds, the two alternating. torch threads: "
        f"{torch.get_num_threads()}. Target: share under 5 %."
    )
    versions = {
        "torch": torch.__version__,
        "timm": timm.__version__,
        "pytorch-metric-learning": pytorch_metric_learning.__version__,
    }
    write_report(
        "bench_bstriplet_cost",
        "BSTriplet cost vs a MobileNetV3-Small training step",
        table,
        versions,
        notes,
    )


if __name__ == "__main__":
    main()
