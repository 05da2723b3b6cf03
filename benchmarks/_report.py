"""Shared by the benchmark scripts: timing, Markdown tables, and the report file."""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from medknn.io import atomic_write_text

REPO = Path(__file__).resolve().parents[1]


def median_seconds(
    runs: dict[str, Callable[[], object]], reps: int, warmup: int
) -> dict[str, float]:
    """Median wall time of each callable; the callables alternate so that load spikes on the
    shared CPU hit all of them alike. ``warmup`` untimed rounds come first."""
    for _ in range(warmup):
        for run in runs.values():
            run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(reps):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write_report(name: str, title: str, table: str, versions: dict[str, str], notes: str) -> Path:
    """Print the report and write it atomically to docs/benchmarks/<name>.md."""
    command = "python " + shlex.join([os.path.relpath(sys.argv[0], REPO), *sys.argv[1:]])
    # Fixed when OpenMP loads; GNU OpenMP (torch, scikit-learn, faiss) spins by default.
    if "OMP_WAIT_POLICY" in os.environ:
        command = f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']} {command}"
    software = ", ".join(f"{lib} {version}" for lib, version in versions.items())
    text = (
        f"# {title}\n\n{table}\n\n{notes}\n\n"
        f"- command: `{command}`\n"
        f"- software: Python {platform.python_version()}, {software}\n"
        f"- machine: {platform.machine()}, {os.cpu_count()} CPU cores, no GPU; the CPU is shared "
        "with other engineers' jobs, so absolute times are noisy (ratios are measured in the "
        "same run)\n"
        f"- OpenMP wait policy: {os.environ.get('OMP_WAIT_POLICY', 'unset (GNU default: spin)')}\n"
        f"- 1-minute load average when written: {os.getloadavg()[0]:.1f}\n"
        f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}\n"
    )
    print(text)
    return atomic_write_text(REPO / "docs" / "benchmarks" / f"{name}.md", text)
