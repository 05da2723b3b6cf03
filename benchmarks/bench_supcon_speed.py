"""SupCon stage 1 (two views) against CE on EfficientNet-Lite0 at 64 px, and the SupCon loss's
share of a training step (issue 4 §6).

python benchmarks/bench_supcon_speed.py --batch 96 --loss-batches 128 512

Part 1 times one training step of each method on random tensors (forward, loss, backward, SGD
with momentum) and the training transforms on decoded 73 px images, as medknn trains them with
``num_workers: 0`` (the transforms run in the training process). Part 2 times the SupCon loss
alone (forward + backward on random L2-normalised 128-d projections) against a whole SupCon step
on the same number of views.
"""

from __future__ import annotations

import argparse

import numpy as np
import pytorch_metric_learning
import timm
import torch
import torchvision
from _report import markdown_table, median_seconds, write_report

from medknn.data import MultiViewTransform, build_transforms, resize_size_for
from medknn.methods import ObjectiveContext, create_objective, get_method
from medknn.models import backbone_normalization, create_network

BACKBONE = "tf_efficientnet_lite0"
IMAGE_SIZE = 64
HAM10000_COUNTS = np.array([327, 514, 1099, 115, 1113, 6705, 142])  # labels drawn like HAM10000


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=96, help="images per step (part 1)")
    parser.add_argument("--loss-batches", nargs="+", type=int, default=[128, 512], help="views")
    parser.add_argument("--reps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--augment-images", type=int, default=192)
    return parser.parse_args()


def network_for(method: str) -> torch.nn.Module:
    spec = get_method(method)
    network = create_network(
        BACKBONE,
        embedding_dim=128 if spec.embedding == "projected" else None,
        normalize=spec.normalize_embedding,
        num_classes=len(HAM10000_COUNTS) if spec.classifier else None,
        pretrained=True,
        projection=spec.projection,
        classifier_type=spec.classifier_type,
    )
    if spec.freeze_backbone:
        network.freeze_backbone()
    return network.train()


def labels_like_ham10000(n: int, rng: np.random.Generator) -> torch.Tensor:
    return torch.as_tensor(rng.choice(7, size=n, p=HAM10000_COUNTS / HAM10000_COUNTS.sum()))


def step_run(method: str, images: int, rng: np.random.Generator):
    """One training step of ``method`` on ``images`` images (× the method's views)."""
    network = network_for(method)
    views = get_method(method).views
    objective = create_objective(
        method, ObjectiveContext(class_counts=HAM10000_COUNTS, options={}, epochs=10)
    )
    optimizer = torch.optim.SGD(
        [p for p in network.parameters() if p.requires_grad], lr=0.01, momentum=0.9
    )
    batch = torch.randn(images * views, 3, IMAGE_SIZE, IMAGE_SIZE)
    labels = labels_like_ham10000(images, rng).repeat(views)

    def run() -> None:
        optimizer.zero_grad(set_to_none=True)
        embeddings, logits = network(batch)
        objective(embeddings, logits, labels)[0].backward()
        optimizer.step()

    return run


def inference_run(images: int):
    network = network_for("ce").eval()
    batch = torch.randn(images, 3, IMAGE_SIZE, IMAGE_SIZE)

    def run() -> None:
        with torch.no_grad():
            network(batch)

    return run


def augment_run(augmentation: str | None, views: int, images: np.ndarray):
    """The training (or, for None, evaluation) transforms of ``images`` decoded uint8 tensors."""
    mean, std = backbone_normalization(timm.create_model(BACKBONE, pretrained=False))
    transform = build_transforms(
        IMAGE_SIZE,
        train=augmentation is not None,
        mean=mean,
        std=std,
        augmentation=augmentation or "standard",
    )
    if views > 1:
        transform = MultiViewTransform(transform, views=views)
    tensors = [torch.from_numpy(image).permute(2, 0, 1) for image in images]

    def run() -> None:
        for tensor in tensors:
            transform(tensor)

    return run


def throughput_table(args: argparse.Namespace, rng: np.random.Generator) -> str:
    size = resize_size_for(IMAGE_SIZE)
    decoded = rng.integers(0, 256, (args.augment_images, size, size, 3), dtype=np.uint8)
    rows = [
        ("ce", "train: forward, CE, backward, SGD", 1, "standard"),
        ("supcon", "train stage 1: 2 views, MLP head, SupCon", 2, "contrastive"),
        ("linear-probe", "train stage 2: frozen backbone, linear CE", 1, "standard"),
        ("inference", "no_grad forward (validation, kNN index, test)", 1, None),
    ]
    runs = {
        name: inference_run(args.batch) if name == "inference" else step_run(name, args.batch, rng)
        for name, *_ in rows
    }
    runs |= {
        f"augment {name}": augment_run(augmentation, views, decoded)
        for name, _, views, augmentation in rows
    }
    seconds = median_seconds(runs, reps=args.reps, warmup=args.warmup)
    table = []
    for name, what, views, _ in rows:
        step = seconds[name]
        augment = seconds[f"augment {name}"] / args.augment_images  # per image, all its views
        table.append(
            [
                name,
                what,
                f"{args.batch} × {views}",
                f"{step:.2f}",
                f"{args.batch / step:.0f}",
                f"{augment * 1e3:.2f}",
                f"{1 / (step / args.batch + augment):.0f}",
            ]
        )
    return markdown_table(
        [
            "method",
            "step",
            "images × views",
            "s/step",
            "images/s (network)",
            "transforms ms/image",
            "images/s (network + transforms)",
        ],
        table,
    )


def loss_share_table(args: argparse.Namespace, rng: np.random.Generator) -> str:
    loss = create_objective(
        "supcon", ObjectiveContext(class_counts=HAM10000_COUNTS, options={})
    ).loss
    table = []
    for views in args.loss_batches:
        base = torch.randn(views, 128)
        labels = labels_like_ham10000(views // 2, rng).repeat(2)

        def loss_only(base: torch.Tensor = base, labels: torch.Tensor = labels) -> None:
            raw = base.clone().requires_grad_(True)
            loss(torch.nn.functional.normalize(raw, dim=1), labels).backward()

        seconds = median_seconds(
            {"loss": loss_only, "step": step_run("supcon", views // 2, rng)},
            reps=max(3, args.reps // 2),
            warmup=1,
        )
        table.append(
            [
                views,
                views // 2,
                f"{seconds['loss'] * 1e3:.2f}",
                f"{seconds['step']:.2f}",
                f"{100 * seconds['loss'] / seconds['step']:.2f} %",
            ]
        )
    return markdown_table(
        ["views (loss batch)", "images", "SupCon fwd+bwd ms", "SupCon step s", "share"], table
    )


def main() -> None:
    args = parse_args()
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    throughput = throughput_table(args, rng)
    share = loss_share_table(args, rng)
    notes = (
        f"{BACKBONE} (ImageNet weights) at {IMAGE_SIZE} px, batches of {args.batch} images; "
        "SupCon: 128-d MLP projection, τ = 0.1, two views per image, so a step runs the network "
        "on twice the images of a CE step. Labels drawn with HAM10000's class frequencies. "
        f"Medians of {args.reps} reps after {args.warmup} warm-up rounds, the callables "
        "alternating; transforms timed on "
        f"{args.augment_images} random decoded {resize_size_for(IMAGE_SIZE)} px images, all views "
        "of an image counted in its time. 'images/s (network + transforms)' is 1 / (s/step / "
        "batch + transforms s/image): training with num_workers 0, where both run in turn. "
        f"torch threads: {torch.get_num_threads()}.\n\n"
        "SupCon loss share: the loss's forward + backward on random L2-normalised 128-d "
        "projections of the given number of views (half as many images, two views each), "
        "against one whole SupCon training step on that many views.\n\n" + share
    )
    versions = {
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "timm": timm.__version__,
        "pytorch-metric-learning": pytorch_metric_learning.__version__,
    }
    write_report(
        "bench_supcon_speed",
        "SupCon stage 1 against CE: throughput and the loss's share of a step",
        throughput,
        versions,
        notes,
    )


if __name__ == "__main__":
    main()
