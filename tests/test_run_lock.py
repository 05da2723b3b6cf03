"""One process per run directory, and wall times that survive a resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from medknn.benchmark import run_benchmark
from medknn.errors import RunLockedError
from medknn.io import read_json
from medknn.runs import RunDir
from medknn.training.checkpoint import load_checkpoint, save_checkpoint

HOLD_LOCK = """
import sys, time
from medknn.runs import run_lock
with run_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(120)
"""


def _hold_lock(run: Path) -> subprocess.Popen:
    """A process that holds the lock of ``run`` until it is killed."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(run)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "held"
    return process


@pytest.fixture
def lock_holder(tmp_path: Path):
    """A process holding the lock of ``tmp_path/run``; killed -9 afterwards."""
    process = _hold_lock(tmp_path / "run")
    yield process
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
        process.wait()


def test_a_run_being_trained_elsewhere_is_refused_and_left_untouched(
    tmp_path: Path, train_tiny: Callable, lock_holder: subprocess.Popen
) -> None:
    with pytest.raises(RunLockedError, match=rf"another process \(PID {lock_holder.pid} "):
        train_tiny(tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_the_lock_of_a_killed_process_does_not_block_the_run(
    tmp_path: Path, train_tiny: Callable, lock_holder: subprocess.Popen
) -> None:
    lock_holder.send_signal(signal.SIGKILL)
    lock_holder.wait()
    train_tiny(tmp_path / "run")
    assert read_json(RunDir(tmp_path / "run").status)["status"] == "complete"


def test_two_sequential_runs_in_one_process_both_train(
    tmp_path: Path, train_tiny: Callable
) -> None:
    train_tiny(tmp_path / "run")
    train_tiny(tmp_path / "run", epochs=2)  # the lock of the first call was released
    assert len(read_json(RunDir(tmp_path / "run").history)) == 2


def test_wall_seconds_include_the_epochs_restored_from_a_checkpoint(
    tmp_path: Path, train_tiny: Callable
) -> None:
    run = RunDir(tmp_path / "run")
    train_tiny(run.path)
    state = load_checkpoint(run.last_checkpoint)
    state["history"][0]["seconds"] = 1000.0  # as if the first attempt had trained for long
    save_checkpoint(run.last_checkpoint, state)
    for leftover in (run.status, run.metrics, run.history, run.model):
        leftover.unlink()  # what a crash right after the checkpoint leaves behind

    train_tiny(run.path)

    assert 1000.0 <= read_json(run.status)["wall_seconds"] < 1000.0 + 300.0
    assert os.path.exists(run.metrics)


def test_a_benchmark_skips_the_runs_another_process_trains(
    tmp_path: Path, tiny_options: dict
) -> None:
    out = tmp_path / "bench"
    holder = _hold_lock(out / "weighted-ce" / "seed0")
    try:
        result = run_benchmark(tiny_options, ["weighted-ce"], [0, 1], out, progress=False)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert [record["seed"] for record in result.records] == [1]
    assert not (out / "weighted-ce" / "seed0").exists()
    again = run_benchmark(tiny_options, ["weighted-ce"], [0, 1], out, progress=False)
    assert [record["seed"] for record in again.records] == [0, 1]
