"""Memory and time of in-batch mining as the global batch grows: Deep kNN and SupCon, B x B.

python benchmarks/bench_batch_memory.py --batches 256 512 1024 2048 4096 8192

Each batch size runs in a fresh process, so that its peak resident set size (``ru_maxrss``) is
its own: the figure is the peak increase over the moment before the loss ran.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import subprocess
import sys
import time

import pytorch_metric_learning
import torch
from _report import markdown_table, write_report

from medknn.losses import DeepKNNLoss, SupConLoss

GB = 1024**3


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", nargs="+", type=int, default=[256, 512, 1024, 2048, 4096])
    parser.add_argument("--per-class", type=int, default=10, help="Q images per class")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child: one batch size
    parser.add_argument("--loss", choices=["deepknn", "supcon"], help=argparse.SUPPRESS)
    return parser.parse_args()


def peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def measure_one(args: argparse.Namespace) -> dict[str, float]:
    """Peak memory increase and median time of forward + backward at batch ``args.one``."""
    torch.set_num_threads(1)
    loss_fn = DeepKNNLoss(5, 5) if args.loss == "deepknn" else SupConLoss(temperature=0.1)
    labels = torch.arange(args.one) // args.per_class
    base = torch.randn(args.one, args.dim, generator=torch.Generator().manual_seed(0))
    loss_fn(base[:64].clone().requires_grad_(True), labels[:64]).backward()  # load the kernels
    before = peak_bytes()
    seconds = []
    for _ in range(args.reps):
        embeddings = base.clone().requires_grad_(True)
        start = time.perf_counter()
        loss_fn(embeddings, labels).backward()
        seconds.append(time.perf_counter() - start)
    return {"peak": peak_bytes() - before, "seconds": statistics.median(seconds)}


def run_child(args: argparse.Namespace, batch: int, loss: str) -> dict[str, float]:
    command = [sys.executable, __file__, "--one", str(batch), "--loss", loss]
    command += ["--per-class", str(args.per_class), "--dim", str(args.dim)]
    command += ["--reps", str(args.reps)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def largest_batch(bytes_per_b2: float, budget: float) -> int:
    return int(math.sqrt(budget / bytes_per_b2))


def main() -> None:
    args = parse_args()
    if args.one is not None:
        print(json.dumps(measure_one(args)))
        return
    rows, ratios = [], {"deepknn": [], "supcon": []}
    for batch in args.batches:
        results = {loss: run_child(args, batch, loss) for loss in ratios}
        for loss, result in results.items():
            ratios[loss].append(result["peak"] / batch**2)
        rows.append(
            [
                batch,
                f"{4 * batch**2 / 2**20:.0f}",
                f"{results['deepknn']['peak'] / 2**20:.0f}",
                f"{results['deepknn']['peak'] / (4 * batch**2):.1f}",
                f"{results['deepknn']['seconds']:.3f}",
                f"{results['supcon']['peak'] / 2**20:.0f}",
                f"{results['supcon']['peak'] / (4 * batch**2):.1f}",
                f"{results['supcon']['seconds']:.3f}",
            ]
        )
    table = markdown_table(
        [
            "global batch B",
            "one B×B float32 (MiB)",
            "Deep kNN peak (MiB)",
            "= B×B matrices",
            "Deep kNN s",
            "SupCon peak (MiB)",
            "= B×B matrices",
            "SupCon s",
        ],
        rows,
    )
    # The largest batch's ratio: the smaller ones still carry fixed costs besides B².
    limits = {
        loss: {budget: largest_batch(values[-1], budget * GB) for budget in (1, 16)}
        for loss, values in ratios.items()
    }
    notes = (
        f"Forward + backward of the loss alone on B × {args.dim} embeddings, labels in classes "
        f"of {args.per_class} (P×Q batches), CPU, 1 torch thread, median of {args.reps} reps. "
        "Peak = increase of the peak resident set size while the loss ran, in a fresh process "
        "per batch size. Deep kNN: K = M = 5 (miner + PML TripletMarginLoss); SupCon: "
        "temperature 0.1. Extrapolated from the largest batch, the loss alone reaches 1 GB at "
        f"B ≈ {limits['deepknn'][1]} (Deep kNN) / {limits['supcon'][1]} (SupCon) and 16 GB at "
        f"B ≈ {limits['deepknn'][16]} / {limits['supcon'][16]}; one B×B float32 matrix alone "
        f"is 1 GB at B = {largest_batch(4, GB)} and 16 GB at B = {largest_batch(4, 16 * GB)}."
    )
    versions = {
        "torch": torch.__version__,
        "pytorch-metric-learning": pytorch_metric_learning.__version__,
    }
    title = "In-batch losses: memory and time vs the global batch"
    write_report("bench_batch_memory", title, table, versions, notes)


if __name__ == "__main__":
    main()
