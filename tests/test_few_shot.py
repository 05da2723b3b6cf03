"""The few-shot protocol: N images per class per seed, one fixed test set, same draws per method."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from medknn.benchmark import run_benchmark
from medknn.cli import app
from medknn.data import few_shot_indices
from medknn.errors import ConfigError, DataError
from medknn.io import read_json
from medknn.runs import TrainConfig

LABELS = np.array([0] * 10 + [1] * 6 + [2] * 8)
TRAIN = np.flatnonzero(np.arange(len(LABELS)) % 4 != 0)  # every 4th row is held out


def test_draw_takes_n_training_images_of_every_class():
    drawn = few_shot_indices(LABELS, TRAIN, 3, seed=0)
    assert np.all(np.diff(drawn) > 0) and np.isin(drawn, TRAIN).all()
    assert np.bincount(LABELS[drawn]).tolist() == [3, 3, 3]


def test_draw_depends_on_the_seed_only():
    first = few_shot_indices(LABELS, TRAIN, 3, seed=4)
    assert np.array_equal(first, few_shot_indices(LABELS, TRAIN[::-1].copy(), 3, seed=4))
    others = [few_shot_indices(LABELS, TRAIN, 3, seed=s) for s in range(5)]
    assert len({tuple(o) for o in others}) == 5


def test_a_class_with_too_few_training_images_is_named():
    with pytest.raises(DataError, match=r"'normal' has 5 training image\(s\), fewer than shots=6"):
        few_shot_indices(LABELS, TRAIN, 6, seed=0, class_names=["benign", "normal", "other"])
    with pytest.raises(ConfigError, match="shots=0"):
        few_shot_indices(LABELS, TRAIN, 0, seed=0)
    with pytest.raises(ConfigError, match="shots=0"):
        TrainConfig(shots=0)


def test_benchmark_shares_draws_across_methods_and_the_test_set_across_seeds(
    tmp_path: Path, tiny_options: dict[str, Any]
):
    base = {**tiny_options, "split": "stratified", "shots": 4}
    out = tmp_path / "bench"
    result = run_benchmark(base, ["knn-imagenet", "constellation"], [0, 1], out, progress=False)

    splits = {
        (r["label"], r["seed"]): read_json(Path(r["run"]) / "split.json") for r in result.records
    }
    train_ids = {key: split["train"]["ids"] for key, split in splits.items()}
    assert train_ids["knn-imagenet", 0] == train_ids["constellation", 0]
    assert train_ids["knn-imagenet", 1] == train_ids["constellation", 1]
    assert train_ids["constellation", 0] != train_ids["constellation", 1]
    assert all(len(ids) == 4 * 3 for ids in train_ids.values())
    assert len({tuple(split["test"]["ids"]) for split in splits.values()}) == 1
    data = read_json(out / "constellation" / "seed1" / "data.json")
    assert data["few_shot"] == {"shots": 4, "seed": 1}
    assert data["counts"]["train"] == {"benign": 4, "malignant": 4, "normal": 4}
    assert [row["runs"] for row in result.rows] == [2, 2]


def test_cli_repeats_need_shots_and_exclude_seeds(tmp_path: Path):
    runner = CliRunner()
    common = ["benchmark", "--out", str(tmp_path / "b"), "--methods", "knn-imagenet"]
    result = runner.invoke(app, [*common, "--repeats", "3"])
    assert result.exit_code == 2 and "--shots" in result.output
    result = runner.invoke(app, [*common, "--shots", "5", "--repeats", "3", "--seeds", "0"])
    assert result.exit_code == 2 and "not both" in result.output
    assert not (tmp_path / "b").exists()
