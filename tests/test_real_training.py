"""Deep kNN on the real BreastMNIST with the demo's configuration must beat the majority class."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import medknn
from medknn.cli import DEMO_CONFIG
from medknn.data import resolve_data_root
from medknn.errors import DataError
from medknn.io import read_json


def _breastmnist() -> Path:
    try:
        path = resolve_data_root() / "medmnist" / "breastmnist.npz"
    except DataError:
        pytest.skip("no shared data folder")
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    return path


@pytest.mark.slow
def test_deepknn_on_breastmnist_beats_the_majority_class(tmp_path: Path) -> None:
    with np.load(_breastmnist()) as arrays:
        test_labels = arrays["test_labels"].ravel()
    majority_rate = np.bincount(test_labels).max() / len(test_labels)  # 114/156 = 0.731

    medknn.train(DEMO_CONFIG, tmp_path / "run", progress=False)

    metrics = read_json(tmp_path / "run" / "metrics.json")
    assert metrics["n"] == len(test_labels) == 156
    assert metrics["accuracy"] > majority_rate, metrics["accuracy"]
    assert metrics["mcr"] > 0.6, metrics["mcr"]
