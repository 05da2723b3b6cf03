"""How far one seed's run moves when only the machine's arithmetic changes.

Trains one tiny run (BreastMNIST, Deep kNN, Lite0 at 32 px, 2 epochs of 6 batches, seed 0,
``deterministic: true``) several times, each in a fresh process whose environment differs in one
thing: nothing (a repeat), the thread count, or the instruction set torch and oneDNN may use
(``ATEN_CPU_CAPABILITY``, ``ONEDNN_MAX_CPU_ISA``), which is what changes from one machine to
another. Prints, for each condition, the largest weight difference from the reference run and
the test metrics. Another machine cannot be emulated exactly; limiting the instruction set on
this one shows how much kernel choice alone moves a run, and whether pinning it repeats a run.

    python benchmarks/repeatability.py --out runs/repeatability
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import markdown_table, write_report  # noqa: E402

from medknn.io import read_json  # noqa: E402

TINY_RUN = [
    "--data", "breastmnist", "--method", "deepknn", "--seed", "0",
    "--set", "image_size=32", "--set", "epochs=2", "--set", "max_batches_per_epoch=6",
    "--set", "deterministic=true",
]  # fmt: skip

PINNED_ISA = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"}

# (name, threads, extra environment, the row it is compared with); row 0 is the reference.
CONDITIONS: list[tuple[str, int, dict[str, str], int]] = [
    ("reference: 1 thread, this CPU's instruction set", 1, {}, 0),
    ("the reference again", 1, {}, 0),
    ("2 threads", 2, {}, 0),
    ("instruction set limited to AVX2", 1, PINNED_ISA, 0),
    ("limited to AVX2 again", 1, PINNED_ISA, 3),
    (
        "instruction set limited to the scalar path",
        1,
        {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41"},
        0,
    ),
]


def train_once(out: Path, threads: int, extra_env: dict[str, str]) -> None:
    """Train the tiny run in a fresh process into ``out``."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), **extra_env}
    command = [sys.executable, "-m", "medknn", "train", *TINY_RUN,
               "--set", f"threads={threads}", "--out", str(out), "--quiet"]  # fmt: skip
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)


def largest_relative_difference(a: Path, b: Path) -> float:
    """The largest relative difference, ||a - b|| / ||a||, over the two runs' weight tensors."""
    left, right = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    differences = [
        float((left[name].double() - right[name].double()).norm() / left[name].double().norm())
        for name in left
        if left[name].is_floating_point() and left[name].double().norm() > 0
    ]
    return max(differences)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/repeatability"))
    args = parser.parse_args()
    rows: list[list[object]] = []
    for index, (_name, threads, extra_env, _) in enumerate(CONDITIONS):
        if not (args.out / f"run{index}" / "metrics.json").exists():
            train_once(args.out / f"run{index}", threads, extra_env)
    for index, (name, _, _, compared) in enumerate(CONDITIONS):
        run = args.out / f"run{index}"
        metrics = read_json(run / "metrics.json")
        difference = largest_relative_difference(args.out / f"run{compared}", run)
        rows.append([name, CONDITIONS[compared][0] if index else "–", f"{difference:.2g}",
                     f"{metrics['accuracy']:.4f}", f"{metrics['mcr']:.4f}"])  # fmt: skip
    header = ["condition", "compared with", "largest relative weight difference",
              "test accuracy", "test MCR"]  # fmt: skip
    capability = torch.backends.cpu.get_cpu_capability()
    notes = (
        f"One tiny run (`medknn train {' '.join(TINY_RUN)}`), each row in a fresh process. "
        f"torch's CPU capability here: {capability}; the instruction-set rows set "
        "`ATEN_CPU_CAPABILITY` / `ONEDNN_MAX_CPU_ISA` / `MKL_CBWR`, as another machine's CPU "
        "would. The weight difference is the largest ||a − b|| / ||a|| over the weight tensors; "
        "0 is a bit-identical run."
    )
    versions = {"torch": torch.__version__}
    write_report("repeatability", "Repeatability of one seed's run", markdown_table(header, rows),
                 versions, notes)  # fmt: skip


if __name__ == "__main__":
    main()
