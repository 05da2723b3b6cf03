"""The ``medknn`` command via typer's CliRunner: listings, train → evaluate → predict, errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from rich.console import Console
from typer.testing import CliRunner

import medknn.cli
from medknn.cli import app
from medknn.io import read_json
from medknn.methods import list_methods
from medknn.runs import RunDir, TrainConfig

Invoke = Callable[..., Result]


@pytest.fixture
def invoke(monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """Run ``medknn ARGS``; wide consoles, so messages are not wrapped inside paths."""
    monkeypatch.setattr(medknn.cli, "out_console", Console(width=10_000))
    monkeypatch.setattr(medknn.cli, "err_console", Console(width=10_000, stderr=True))
    runner = CliRunner()

    def run(*args: str | Path) -> Result:
        return runner.invoke(app, [str(arg) for arg in args])

    return run


def _tiny_flags(data: Path) -> list[str]:
    return [
        "--data",
        str(data),
        "--backbone",
        "mobilenetv3_small_050",
        "--no-pretrained",
        "--image-size",
        "28",
        "--epochs",
        "1",
        "--k-predict",
        "3",
        "--set",
        "batch_size=12",
        "--set",
        "classes_per_batch=3",
        "--set",
        "max-batches-per-epoch=2",
        "--set",
        "embedding_dim=16",
        "--quiet",
    ]


def _assert_user_error(result: Result, *needles: str) -> None:
    """Exit code 2 with a readable message, no traceback."""
    assert result.exit_code == 2, result.output
    assert "error:" in result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in result.output


# --- listings ---------------------------------------------------------------------------------


def test_methods_lists_every_registered_method(invoke: Invoke) -> None:
    result = invoke("methods")
    assert result.exit_code == 0
    for spec in list_methods():
        assert spec.name in result.output
    assert "temperature" in result.output and "drw_epoch" in result.output


def test_datasets_lists_the_named_data_sets(invoke: Invoke) -> None:
    result = invoke("datasets")
    assert result.exit_code == 0
    for name in ("ham10000", "pneumoniamnist", "breastmnist"):
        assert name in result.output


def test_backbones_filters_with_a_pattern(invoke: Invoke) -> None:
    result = invoke("backbones", "resnet1*")
    names = result.output.split()
    assert result.exit_code == 0
    assert {"resnet10t", "resnet18", "resnet101"} <= set(names)
    assert all(name.startswith("resnet1") for name in names)
    assert "mlp" in invoke("backbones", "ml*").output.split()


# --- end to end -------------------------------------------------------------------------------


def test_train_then_evaluate_then_predict(
    invoke: Invoke, tiny_npz: Path, png_files: list[Path], tmp_path: Path
) -> None:
    out = tmp_path / "run"
    result = invoke("train", "--out", out, "--method", "deepknn", *_tiny_flags(tiny_npz))
    assert result.exit_code == 0, result.output
    assert "MCR" in result.output and f"run saved in {out}" in result.output
    config = TrainConfig.from_yaml(RunDir(out).config)
    assert (config.max_batches_per_epoch, config.embedding_dim, config.k_predict) == (2, 16, 3)

    result = invoke("evaluate", out, "--json", "--quiet")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["accuracy"] == pytest.approx(read_json(RunDir(out).metrics)["accuracy"])
    assert metrics["n"] == 12

    result = invoke("predict", out, *png_files, "--json")
    assert result.exit_code == 0, result.output
    predictions = json.loads(result.stdout)
    assert [p["image"] for p in predictions] == [str(path) for path in png_files]
    for prediction in predictions:
        assert prediction["label"] in prediction["probabilities"]
        assert sum(prediction["probabilities"].values()) == pytest.approx(1.0)
        assert len(prediction["neighbours"]) == 3
        assert set(prediction["neighbours"][0]) == {"id", "label", "class_name", "distance"}

    result = invoke("predict", out, png_files[0])
    assert result.exit_code == 0 and "training case" in result.output


def test_benchmark_writes_the_results_tables(
    invoke: Invoke, tiny_npz: Path, tmp_path: Path
) -> None:
    flags = [flag for flag in _tiny_flags(tiny_npz) if flag not in ("--k-predict", "3")]
    out = tmp_path / "bench"
    result = invoke("benchmark", "--methods", "deepknn,ce", "--seeds", "0", "--out", out, *flags)

    assert result.exit_code == 0, result.output
    assert "±" in result.output
    markdown = (out / "results.md").read_text(encoding="utf-8")
    assert "| deepknn |" in markdown and "| ce |" in markdown
    assert (out / "results.csv").exists() and (out / "results.json").exists()
    assert TrainConfig.from_yaml(RunDir(out / "ce" / "seed0").config).epochs == 1


# --- errors -----------------------------------------------------------------------------------


def test_unknown_method_is_a_short_error(invoke: Invoke, tiny_npz: Path, tmp_path: Path) -> None:
    result = invoke("train", "--out", tmp_path / "r", "--method", "deepknm", *_tiny_flags(tiny_npz))
    _assert_user_error(result, "Unknown method 'deepknm'", "deepknn")


def test_set_without_equals_is_a_short_error(invoke: Invoke, tmp_path: Path) -> None:
    result = invoke("train", "--out", tmp_path / "r", "--set", "lr0.1")
    _assert_user_error(result, "--set 'lr0.1'", "key=value")


def test_set_with_an_unknown_key_is_a_short_error(invoke: Invoke, tmp_path: Path) -> None:
    result = invoke("train", "--out", tmp_path / "r", "--set", "learning_rate=0.1")
    _assert_user_error(result, "unknown option 'learning_rate'")


def test_set_with_a_non_numeric_value_is_a_short_error(invoke: Invoke, tmp_path: Path) -> None:
    result = invoke("train", "--out", tmp_path / "r", "--set", "lr=fast")
    _assert_user_error(result, "lr")


def test_train_on_a_missing_data_path_names_it(invoke: Invoke, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "scans.npz"
    result = invoke("train", "--out", tmp_path / "r", "--data", missing, "--quiet")
    _assert_user_error(result, str(missing))
    missing_folder = tmp_path / "nowhere" / "scans"
    result = invoke("train", "--out", tmp_path / "r2", "--data", missing_folder, "--quiet")
    _assert_user_error(result, str(missing_folder), "does not exist")


def test_predict_with_a_missing_image_names_it(
    invoke: Invoke, deepknn_run: Path, png_files: list[Path], tmp_path: Path
) -> None:
    missing = tmp_path / "lesion.png"
    result = invoke("predict", deepknn_run, png_files[0], missing)
    _assert_user_error(result, str(missing))


def test_predict_with_a_file_that_is_no_image_names_it(
    invoke: Invoke, deepknn_run: Path, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.png"
    notes.write_text("not an image", encoding="utf-8")
    result = invoke("predict", deepknn_run, notes)
    _assert_user_error(result, str(notes))


def test_evaluate_a_folder_that_is_no_run(invoke: Invoke, tmp_path: Path) -> None:
    _assert_user_error(invoke("evaluate", tmp_path), "not a medknn run")


def test_benchmark_errors(invoke: Invoke, tmp_path: Path) -> None:
    _assert_user_error(invoke("benchmark", "--out", tmp_path / "b"), "--methods")
    _assert_user_error(
        invoke("benchmark", "--out", tmp_path / "b", "--methods", "ce", "--seeds", "0,x"),
        "--seeds '0,x'",
    )


def test_demo_on_a_lone_clone_downloads_breastmnist_into_the_cache_and_says_so(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import medknn.api
    import medknn.data.catalog as catalog

    asked: list[TrainConfig] = []

    def stop(config: TrainConfig, out: Path, **_: object) -> None:
        asked.append(config)
        raise SystemExit(0)  # the demo's training itself is not under test here

    monkeypatch.delenv("MEDKNN_DATA", raising=False)
    monkeypatch.setenv("MEDKNN_SETTINGS", str(tmp_path / "none.yaml"))
    monkeypatch.setenv("MEDKNN_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(catalog, "source_checkout", lambda: None)  # no ../shared
    monkeypatch.setattr(medknn.api, "train", stop)
    result = invoke("demo", "--out", tmp_path / "demo", "--quiet")
    assert asked and asked[0].download is True
    assert "downloading it with its MD5 check into" in result.output
    assert str(tmp_path / "cache" / "data" / "medmnist" / "breastmnist.npz") in result.output
