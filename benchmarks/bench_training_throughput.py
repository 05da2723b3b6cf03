"""Training throughput and memory of medknn networks on this machine's CPU.

Each configuration runs in a fresh process (so its peak RSS is its own) on random tensors:
a few warm-up steps, then timed forward + backward + SGD steps. Prints a Markdown table and
writes it to docs/benchmarks/training_throughput.md.

    python benchmarks/bench_training_throughput.py [--steps 5] [--warmup 2] [--threads N]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import resource
import shlex
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

import torch
import torch.nn.functional as F

from medknn.io import atomic_write_text
from medknn.models import create_network

DEFAULT_OUTPUT = (
    Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "training_throughput.md"
)
EMBEDDING_DIM = 128
NUM_CLASSES = 7  # the loss is cross-entropy on a linear classifier over the embedding
DERMAMNIST_TRAIN = 7007  # images per epoch, to translate throughput into epoch time


@dataclass(frozen=True)
class Config:
    label: str
    backbone: str
    image_size: int
    batch_size: int
    pretrained: bool
    small_input: bool


CONFIGS = (
    Config("ResNet-18, small_input", "resnet18", 28, 128, pretrained=False, small_input=True),
    Config("EfficientNet-Lite0, pretrained", "tf_efficientnet_lite0", 64, 96, True, False),
    Config(
        "EfficientNet-Lite0, pretrained, small_input", "tf_efficientnet_lite0", 64, 96, True, True
    ),
)


def _max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def measure(config: Config, steps: int, warmup: int, threads: int) -> dict[str, float]:
    """Runs in a child process: images/s and RSS for one configuration."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    network = create_network(
        config.backbone,
        embedding_dim=EMBEDDING_DIM,
        num_classes=NUM_CLASSES,
        pretrained=config.pretrained,
        small_input=config.small_input,
    ).train()
    optimizer = torch.optim.SGD(network.parameters(), lr=0.01, momentum=0.9)
    images = torch.randn(config.batch_size, 3, config.image_size, config.image_size)
    labels = torch.randint(NUM_CLASSES, (config.batch_size,))
    rss_before = _max_rss_mib()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        _, logits = network(images)
        F.cross_entropy(logits, labels).backward()
        optimizer.step()

    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds_per_step = (time.perf_counter() - start) / steps
    return {
        "images_per_s": config.batch_size / seconds_per_step,
        "seconds_per_step": seconds_per_step,
        "rss_before_mib": rss_before,
        "peak_rss_mib": _max_rss_mib(),
        "parameters_m": sum(p.numel() for p in network.parameters()) / 1e6,
    }


def to_markdown(rows: list[tuple[Config, dict[str, float]]], args: argparse.Namespace) -> str:
    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *sys.argv[1:]])
    load = ", ".join(f"{x:.2f}" for x in args.load_average)
    lines = [
        "# Training throughput on CPU",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPU cores, Python "
        f"{platform.python_version()}, torch {torch.__version__}, {args.threads} torch threads. "
        f"Run on {args.date}; 1/5/15-minute load average at start: {load}.",
        "",
        (
            "Other jobs were using the same CPU during the run, so these are lower bounds "
            "for an idle machine."
            if args.load_average[0] > 1.0
            else "Nothing else was running on the machine."
        ),
        "",
        "Each step is forward + backward + SGD (momentum 0.9) on random tensors, with a "
        f"{EMBEDDING_DIM}-d L2-normalised embedding head and a {NUM_CLASSES}-class linear "
        f"classifier trained with cross-entropy; {args.warmup} warm-up steps, then "
        f"{args.steps} timed steps. Memory is the peak resident set size (`resource.getrusage` "
        "maxrss) of a fresh process per row: 'before' is after building the network and the "
        "batch, 'peak' is after training.",
        "",
        "| network | input | batch | params (M) | images/s | s/step "
        f"| epoch of {DERMAMNIST_TRAIN:,} images (s) | RSS before (MiB) | peak RSS (MiB) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for config, r in rows:
        lines.append(
            f"| {config.label} | {config.image_size}x{config.image_size} | {config.batch_size} "
            f"| {r['parameters_m']:.2f} | {r['images_per_s']:.1f} | {r['seconds_per_step']:.2f} "
            f"| {DERMAMNIST_TRAIN / r['images_per_s']:.0f} | {r['rss_before_mib']:.0f} "
            f"| {r['peak_rss_mib']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5, help="timed steps per configuration")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before timing")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    args.load_average = os.getloadavg()
    args.date = datetime.date.today().isoformat()

    rows = []
    for config in CONFIGS:
        print(f"measuring {config.label} ...", file=sys.stderr, flush=True)
        # a fresh process per configuration, so that maxrss is not the previous one's peak
        with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
            result = pool.submit(measure, config, args.steps, args.warmup, args.threads).result()
        rows.append((config, result))
        print(f"  {asdict(config)} -> {result}", file=sys.stderr, flush=True)

    table = to_markdown(rows, args)
    print(table)
    atomic_write_text(args.output, table)
    print(f"written to {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
