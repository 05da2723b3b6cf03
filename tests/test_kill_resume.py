"""kill -9 in the middle of training, then the same command again: the run finishes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import medknn


def _tiny_npz(path: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    arrays = {}
    for part, n in (("train", 60), ("val", 12), ("test", 12)):
        labels = np.arange(n) % 3
        images = rng.integers(0, 60, size=(n, 28, 28), dtype=np.uint8)
        images += (labels * 60).astype(np.uint8)[:, None, None]  # classes differ in brightness
        arrays[f"{part}_images"] = images
        arrays[f"{part}_labels"] = labels.astype(np.uint8)[:, None]
    np.savez(path, **arrays)
    return path


def test_sigkill_mid_training_then_rerun_completes(tmp_path: Path) -> None:
    data = _tiny_npz(tmp_path / "tiny.npz")
    out = tmp_path / "run"
    options = {
        "data": str(data),
        "method": "deepknn",
        "backbone": "resnet10t",
        "image_size": 28,
        "epochs": 40,
        "batch_size": 30,
    }
    args = [f"--set={key}={value}" for key, value in options.items()]
    env = {**os.environ, "MEDKNN_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "medknn", "train", "--out", str(out), "--quiet", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    checkpoint = out / "checkpoints" / "last.safetensors"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert process.poll() is None, process.stderr.read().decode()
    assert checkpoint.exists(), "no checkpoint within 120 s"
    time.sleep(1.0)  # let it get into the middle of a later epoch
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (out / "status.json").exists()
    finished_before = len(json.loads((out / "history.json").read_text()))
    assert 1 <= finished_before < 40

    options["epochs"] = finished_before + 2  # finish quickly: two more epochs after the kill
    run = medknn.train(options, out, progress=False)

    history = medknn.history(out)
    assert [int(r["epoch"]) for r in history] == list(range(1, finished_before + 3))
    assert json.loads((out / "status.json").read_text())["status"] == "complete"
    assert run.predict_arrays(np.zeros((1, 32, 32, 1), np.uint8), ["blank"])[0].neighbours
    assert not list(out.rglob("*.tmp")), "a temporary file was left behind"
