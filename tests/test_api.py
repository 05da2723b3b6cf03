"""The Python API: train → load_run → predict/evaluate, knn-imagenet, deep kNN*, benchmarks."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import medknn
import medknn.run_training
from medknn.benchmark import BenchmarkEntry, load_benchmark_file, run_benchmark, select_entries
from medknn.errors import ConfigError
from medknn.io import load_tensors, read_json
from medknn.methods import get_method
from medknn.models import create_backbone
from medknn.runs import RunDir, TrainConfig
from medknn.runs.build import build_network

CLASS_NAMES = ["benign", "malignant", "normal"]


def _train_ids(run: Path) -> set[str]:
    return set(read_json(RunDir(run).split)["train"]["ids"])


# --- predict ----------------------------------------------------------------------------------


def test_predict_files_gives_labels_probabilities_and_nearest_training_cases(
    deepknn_run: Path, png_files: list[Path]
) -> None:
    run = medknn.load_run(deepknn_run)
    predictions = run.predict_files(png_files)

    assert [p.source for p in predictions] == [str(path) for path in png_files]
    train_ids = _train_ids(deepknn_run)
    for prediction in predictions:
        assert prediction.label in CLASS_NAMES
        assert list(prediction.probabilities) == CLASS_NAMES
        assert sum(prediction.probabilities.values()) == pytest.approx(1.0)
        assert prediction.probability == prediction.probabilities[prediction.label]
        neighbours = prediction.neighbours
        assert len(neighbours) == run.config.k_predict == 3
        assert {n.id for n in neighbours} <= train_ids
        assert all(CLASS_NAMES[n.label] == n.class_name for n in neighbours)
        distances = [n.distance for n in neighbours]
        assert distances == sorted(distances) and distances[0] >= 0
        # The decision rule chosen on validation votes with its own K_p among these cases.
        rule = run.decision
        assert rule is not None and rule.kind == "knn"
        nearest = sorted(neighbours, key=lambda n: n.distance)
        if rule.k <= len(nearest):
            expected = rule.knn_proba(
                np.array([[n.distance for n in nearest]]), np.array([[n.label for n in nearest]])
            )[0]
            assert list(prediction.probabilities.values()) == pytest.approx(expected.tolist())


def test_a_plain_run_gives_the_neighbours_vote_fractions(
    train_tiny: Callable, tmp_path: Path, png_files: list[Path]
) -> None:
    run = train_tiny(tmp_path / "plain", method="deepknn", decision="plain")
    assert run.decision is None
    for prediction in run.predict_files(png_files):
        for name in CLASS_NAMES:
            votes = sum(n.class_name == name for n in prediction.neighbours)
            assert prediction.probabilities[name] == pytest.approx(votes / 3)


def test_a_training_image_finds_itself_as_nearest_case(
    deepknn_run: Path, tiny_npz: Path, tmp_path: Path
) -> None:
    """Prediction decodes a file exactly as training decoded the data set."""
    with np.load(tiny_npz) as arrays:
        pixels = arrays["train_images"][5]
    path = tmp_path / "train5.png"
    Image.fromarray(pixels).save(path)

    (prediction,) = medknn.predict(deepknn_run, [path])

    nearest = prediction.neighbours[0]
    assert nearest.id == "train/5"
    assert nearest.distance == pytest.approx(0.0, abs=1e-3)
    assert nearest.class_name == CLASS_NAMES[5 % 3]


def test_softmax_run_predicts_with_its_classifier_and_still_shows_neighbours(
    weighted_ce_run: Path, png_files: list[Path]
) -> None:
    run = medknn.load_run(weighted_ce_run)
    assert run.spec.prediction == "softmax"
    for prediction in run.predict_files(png_files):
        assert sum(prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
        assert prediction.label == max(prediction.probabilities, key=prediction.probabilities.get)
        assert len(prediction.neighbours) == 3
        assert {n.id for n in prediction.neighbours} <= _train_ids(weighted_ce_run)


def test_load_run_refuses_a_folder_that_is_no_finished_run(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a medknn run"):
        medknn.load_run(tmp_path)
    (tmp_path / "config.yaml").write_text(TrainConfig().to_yaml(), encoding="utf-8")
    with pytest.raises(ConfigError, match="unfinished.*--out"):
        medknn.load_run(tmp_path)


# --- evaluate ---------------------------------------------------------------------------------


def test_evaluate_reproduces_the_saved_test_metrics(deepknn_run: Path) -> None:
    saved = read_json(RunDir(deepknn_run).metrics)
    metrics = medknn.evaluate(deepknn_run, progress=False)

    assert metrics["n"] == saved["n"] == 12
    assert metrics["accuracy"] == pytest.approx(saved["accuracy"])
    assert metrics["mcr"] == pytest.approx(saved["mcr"])
    assert metrics["confusion_matrix"] == saved["confusion_matrix"]
    assert (metrics["method"], metrics["seed"]) == ("deepknn", 0)


def test_evaluate_other_parts_and_rejects_unknown_ones(weighted_ce_run: Path) -> None:
    assert medknn.evaluate(weighted_ce_run, part="val", progress=False)["n"] == 12
    assert medknn.evaluate(weighted_ce_run, part="train", progress=False)["n"] == 36
    with pytest.raises(ConfigError, match="part='dev'"):
        medknn.evaluate(weighted_ce_run, part="dev", progress=False)


# --- knn-imagenet -----------------------------------------------------------------------------


def test_knn_imagenet_indexes_frozen_pretrained_features_without_training(
    tmp_path: Path, train_tiny: Callable, png_files: list[Path]
) -> None:
    run = train_tiny(
        tmp_path / "run", method="knn-imagenet", backbone="tf_efficientnet_lite0", pretrained=True
    )

    run_dir = RunDir(run.path)
    assert medknn.history(run.path) == []
    assert not run_dir.last_checkpoint.exists()
    assert read_json(run_dir.status)["status"] == "complete"
    frozen = create_backbone("tf_efficientnet_lite0", pretrained=True, small_input=True)
    saved = load_tensors(run_dir.model)
    for key, value in frozen.state_dict().items():
        assert torch.equal(saved[f"backbone.{key}"], value), key
    (prediction,) = run.predict_files(png_files[:1])
    assert prediction.label in CLASS_NAMES and len(prediction.neighbours) == 3


# --- deep kNN* --------------------------------------------------------------------------------


def test_deepknn_star_without_init_from_asks_for_it(tmp_path: Path, train_tiny: Callable) -> None:
    with pytest.raises(ConfigError, match="--init-from"):
        train_tiny(tmp_path / "run", method="deepknn-star")


def test_deepknn_star_starts_from_the_ce_run_backbone(
    tmp_path: Path, tiny_options: dict[str, Any], weighted_ce_run: Path, train_tiny: Callable
) -> None:
    config = TrainConfig.from_dict(
        {**tiny_options, "method": "deepknn-star", "init_from": str(weighted_ce_run)}
    )
    network = build_network(config, get_method("deepknn-star"), len(CLASS_NAMES))

    source = load_tensors(RunDir(weighted_ce_run).model)
    backbone = network.backbone.state_dict()
    assert backbone and all(torch.equal(v, source[f"backbone.{k}"]) for k, v in backbone.items())
    assert network.classifier is None and network.embedding_dim == 16

    run = train_tiny(tmp_path / "star", method="deepknn-star", init_from=str(weighted_ce_run))
    assert read_json(RunDir(run.path).metrics)["method"] == "deepknn-star"


def test_deepknn_star_refuses_an_unfinished_or_mismatched_init_run(
    tmp_path: Path, tiny_options: dict[str, Any], weighted_ce_run: Path
) -> None:
    spec = get_method("deepknn-star")
    empty = tmp_path / "empty"
    empty.mkdir()
    unfinished = TrainConfig.from_dict(
        {**tiny_options, "method": "deepknn-star", "init_from": str(empty)}
    )
    with pytest.raises(ConfigError, match="finish training that run first"):
        build_network(unfinished, spec, 3)
    other_backbone = TrainConfig.from_dict(
        {
            **tiny_options,
            "method": "deepknn-star",
            "init_from": str(weighted_ce_run),
            "backbone": "resnet10t",
        }
    )
    with pytest.raises(ConfigError, match="mobilenetv3_small_050.*resnet10t.*Make them match"):
        build_network(other_backbone, spec, 3)


# --- benchmark --------------------------------------------------------------------------------


def test_benchmark_writes_mean_and_std_tables(
    tmp_path: Path, tiny_options: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "bench"
    result = run_benchmark(tiny_options, ["deepknn", "weighted-ce"], [0, 1], out, progress=False)

    assert [(r["label"], r["seed"]) for r in result.records] == [
        ("deepknn", 0),
        ("weighted-ce", 0),
        ("deepknn", 1),
        ("weighted-ce", 1),
    ]
    for record in result.records:
        assert record["metrics"] == read_json(Path(record["run"]) / "metrics.json")
        assert Path(record["run"]) == out / record["label"] / f"seed{record['seed']}"
    assert [row["label"] for row in result.rows] == ["deepknn", "weighted-ce"]
    accuracies = [r["metrics"]["accuracy"] for r in result.records if r["label"] == "deepknn"]
    assert result.rows[0]["mean"]["accuracy"] == pytest.approx(np.mean(accuracies))
    assert result.rows[0]["std"]["accuracy"] == pytest.approx(np.std(accuracies, ddof=1))

    markdown = (out / "results.md").read_text(encoding="utf-8")
    lines = [line for line in markdown.splitlines() if line.startswith("| deepknn ")]
    assert len(lines) == 1 and "±" in lines[0]
    assert "| weighted-ce |" in markdown
    rows = list(csv.DictReader(io.StringIO((out / "results.csv").read_text(encoding="utf-8"))))
    assert [row["method"] for row in rows] == ["deepknn", "weighted-ce"]
    assert [row["runs"] for row in rows] == ["2", "2"]
    assert len(read_json(out / "results.json")["records"]) == 4

    def refuse(*args, **kwargs):
        raise AssertionError("a finished benchmark run must not be trained again")

    monkeypatch.setattr(medknn.run_training, "Trainer", refuse)
    again = run_benchmark(tiny_options, ["deepknn", "weighted-ce"], [0, 1], out, progress=False)
    assert again.rows == result.rows


def test_benchmark_deepknn_star_starts_from_the_weighted_ce_run_of_its_seed(
    tmp_path: Path, tiny_options: dict[str, Any]
) -> None:
    out = tmp_path / "bench"
    run_benchmark(tiny_options, ["weighted-ce", "deepknn-star"], [0], out, progress=False)

    star = TrainConfig.from_yaml(RunDir(out / "deepknn-star" / "seed0").config)
    assert star.init_from == str(out / "weighted-ce" / "seed0")
    assert not (out / "weighted-ce-init").exists()


def test_benchmark_checks_method_names_before_training(
    tmp_path: Path, tiny_options: dict[str, Any]
) -> None:
    with pytest.raises(ConfigError, match="'tripplet'.*Did you mean: triplet"):
        run_benchmark(tiny_options, ["deepknn", "tripplet"], [0], tmp_path / "b", progress=False)
    assert not (tmp_path / "b").exists()
    with pytest.raises(ConfigError, match="seed"):
        run_benchmark(tiny_options, ["deepknn"], [], tmp_path / "b", progress=False)


def test_benchmark_file_lists_entries_with_overrides(tmp_path: Path) -> None:
    path = tmp_path / "bench.yaml"
    path.write_text(
        "base: {data: breastmnist, epochs: 3}\n"
        "methods:\n"
        "  - deepknn\n"
        "  - {method: triplet, label: 'triplet m=0.5', margin: 0.5}\n"
        "seeds: [0, 1]\n",
        encoding="utf-8",
    )
    base, entries, seeds = load_benchmark_file(path)

    assert base == {"data": "breastmnist", "epochs": 3} and seeds == [0, 1]
    assert entries == [
        BenchmarkEntry("deepknn", "deepknn"),
        BenchmarkEntry("triplet m=0.5", "triplet", {"margin": 0.5}),
    ]
    assert entries[1].slug == "triplet_m_0_5"
    with pytest.raises(ConfigError, match="needs a 'method' key"):
        BenchmarkEntry.parse({"label": "x", "margin": 0.5})
    path.write_text("base: {}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="'methods' list"):
        load_benchmark_file(path)


def test_methods_beside_a_spec_pick_its_entries_with_their_options() -> None:
    entries = [
        BenchmarkEntry("deepknn", "deepknn"),
        BenchmarkEntry("triplet m=0.5", "triplet", {"margin": 0.5}),
        BenchmarkEntry("triplet m=0.1", "triplet", {"margin": 0.1}),
    ]
    # By label (options kept), by method (every entry of it), a method the spec lacks (bare).
    assert select_entries(entries, ["triplet m=0.5"]) == [entries[1]]
    assert select_entries(entries, ["triplet", "deepknn"]) == [*entries[1:], entries[0]]
    assert select_entries(entries, ["ce"]) == [BenchmarkEntry("ce", "ce")]
    with pytest.raises(ConfigError, match=r"'tripplet'.*deepknn, triplet m=0.5, triplet m=0.1"):
        select_entries(entries, ["tripplet"])
