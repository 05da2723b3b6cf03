"""Training speed on CPU per backbone, image size and execution mode (issue 15, §1).

For EfficientNet-Lite0 and ResNet-18 at 64, 96 and 128 px, times a training step (forward,
backward, AdamW) in four modes: contiguous memory (torch's default), channels-last memory,
bf16 autocast, and channels-last with bf16 autocast (``--compile`` adds ``torch.compile``).
The modes of one configuration run back to back in fresh processes, so that a busier moment
slows them alike. Writes a Markdown table with the speed-up of each mode over contiguous
memory to docs/benchmarks/cpu_speed.md.

    python benchmarks/bench_cpu_speed.py [--steps 4] [--warmup 2] [--threads 1]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from multiprocessing import get_context
from pathlib import Path

import torch
import torch.nn.functional as F

from medknn.io import atomic_write_text
from medknn.models import create_network

DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "cpu_speed.md"
BACKBONES = {"tf_efficientnet_lite0": "EfficientNet-Lite0", "resnet18": "ResNet-18"}
SIZES = (64, 96, 128)
MODES = ("contiguous", "channels-last", "bf16", "channels-last + bf16")
# torch.compile of one Lite0 training step had not finished compiling after 3 minutes on this
# busy 2-core machine (2026-12-05): measured only on request.
COMPILE = "compile"
BATCH = 32
CLASSES = 7


def measure(backbone: str, size: int, mode: str, steps: int, warmup: int, threads: int) -> float:
    """Runs in a child process: training images per second of one configuration."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    network = create_network(backbone, embedding_dim=128, num_classes=CLASSES, pretrained=False)
    images = torch.randn(BATCH, 3, size, size)
    labels = torch.randint(CLASSES, (BATCH,))
    if "channels-last" in mode:
        network = network.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    model = torch.compile(network) if mode == "compile" else network
    model.train()
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-3)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if "bf16" in mode else nullcontext()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            _, logits = model(images)
            loss = F.cross_entropy(logits.float(), labels)
        loss.backward()
        optimizer.step()

    for _ in range(warmup):
        step()
    # CPU time of this process, not wall time: other jobs on the shared cores then stretch
    # the wall clock without changing the figure (with one thread the two agree when idle).
    start = time.process_time()
    for _ in range(steps):
        step()
    return BATCH * steps / (time.process_time() - start)


def to_markdown(results: dict[tuple[str, int, str], float], args: argparse.Namespace) -> str:
    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *sys.argv[1:]])
    load = ", ".join(f"{x:.2f}" for x in args.load_average)
    lines = [
        "# Training speed on CPU by execution mode",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, "
        f"{args.threads} torch thread(s); run on {args.date}, load average at start {load}. "
        "Speeds are images per second of the process's CPU time (`time.process_time`), so "
        "that other jobs on the shared cores do not distort them; with one thread on an idle "
        "core this is the wall-clock speed.",
        "",
        f"Training images per CPU-second (forward + backward + AdamW, batch {BATCH}, random "
        f"tensors, {args.warmup} warm-up then {args.steps} timed steps); in brackets the "
        "speed-up over contiguous memory. `torch.compile` is left out unless asked for "
        "(`--compile`): compiling one Lite0 training step had not finished after 3 minutes on "
        "this busy machine.",
        "",
        "| network | px | " + " | ".join(args.modes) + " |",
        "|---|---:|" + "---:|" * len(args.modes),
    ]
    for backbone, name in BACKBONES.items():
        for size in SIZES:
            base = results[(backbone, size, "contiguous")]
            cells = [
                f"{results[(backbone, size, m)]:.1f} (×{results[(backbone, size, m)] / base:.2f})"
                for m in args.modes
            ]
            lines.append(f"| {name} | {size} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4, help="timed steps per configuration")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before timing")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    args = parser.parse_args()
    args.modes = (*MODES, COMPILE) if args.compile else MODES
    args.load_average = os.getloadavg()
    args.date = datetime.date.today().isoformat()

    results: dict[tuple[str, int, str], float] = {}
    for backbone in BACKBONES:
        for size in SIZES:
            for mode in args.modes:
                # a fresh process each: no mode inherits compiled kernels or caches
                with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
                    job = pool.submit(
                        measure, backbone, size, mode, args.steps, args.warmup, args.threads
                    )
                    results[(backbone, size, mode)] = job.result()
                print(
                    f"{backbone} {size}px {mode}: {results[(backbone, size, mode)]:.1f} img/s",
                    file=sys.stderr,
                    flush=True,
                )
    table = to_markdown(results, args)
    print(table)
    atomic_write_text(args.output, table)
    print(f"written to {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
