"""Repeatable runs on one machine: fixed threads, deterministic algorithms (reproducible.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from medknn.errors import ConfigError
from medknn.io import load_tensors, read_json
from medknn.prediction import TrainedRun
from medknn.runs import TrainConfig
from medknn.training.reproducible import reproducible


def test_threads_and_determinism_hold_inside_the_block_and_are_restored() -> None:
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    with reproducible(threads=1, deterministic=True):
        assert torch.get_num_threads() == 1
        assert torch.are_deterministic_algorithms_enabled()
    assert torch.get_num_threads() == threads
    assert torch.are_deterministic_algorithms_enabled() == deterministic
    with pytest.raises(RuntimeError), reproducible(threads=1):
        raise RuntimeError("restored on errors too")
    assert torch.get_num_threads() == threads


def test_config_checks_threads() -> None:
    assert TrainConfig(threads=2, deterministic=True).threads == 2
    assert TrainConfig().threads is None and not TrainConfig().deterministic
    with pytest.raises(ConfigError, match="threads=0 must be a whole number"):
        TrainConfig(threads=0)


def test_two_runs_with_fixed_threads_and_determinism_are_identical(
    tmp_path: Path, train_tiny: Callable[..., TrainedRun]
) -> None:
    options = {"method": "deepknn", "threads": 1, "deterministic": True, "seed": 3}
    first = train_tiny(tmp_path / "a", **options)
    second = train_tiny(tmp_path / "b", **options)
    assert read_json(first.run_dir.metrics) == read_json(second.run_dir.metrics)
    weights = load_tensors(first.run_dir.model), load_tensors(second.run_dir.model)
    assert weights[0].keys() == weights[1].keys()
    for name, tensor in weights[0].items():
        assert torch.equal(tensor, weights[1][name]), name
    assert not torch.are_deterministic_algorithms_enabled()  # the runs restored the default
