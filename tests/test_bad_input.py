"""Bad input through the CLI and the API: each error names the file, column or class at fault."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import Result
from rich.console import Console
from typer.testing import CliRunner

import medknn
import medknn.cli
from medknn.cli import app
from medknn.data import load_dataset
from medknn.errors import ConfigError, DataError
from medknn.io import read_json
from medknn.runs import RunDir

Invoke = Callable[..., Result]
CSV_OPTIONS = (
    "{image_column: file, path_template: null, label_column: diagnosis, group_column: null}"
)


@pytest.fixture
def invoke(monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """Run ``medknn train --out OUT ARGS`` quietly with the tiny model; wide, unwrapped output."""
    monkeypatch.setattr(medknn.cli, "err_console", Console(width=10_000, stderr=True))
    monkeypatch.setattr(medknn.cli, "out_console", Console(width=10_000))
    runner = CliRunner()
    tiny = ["--backbone", "mobilenetv3_small_050", "--no-pretrained", "--image-size", "28"]
    tiny += ["--epochs", "1", "--quiet", "--set", "batch_size=12", "--set", "classes_per_batch=3"]
    tiny += ["--set", "max_batches_per_epoch=2"]

    def run(out: Path, *args: str | Path) -> Result:
        return runner.invoke(app, ["train", "--out", str(out), *tiny, *map(str, args)])

    return run


def _assert_user_error(result: Result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in result.output, result.output


def _write_npz(path: Path, train_labels: list[int], val_test_labels: list[int]) -> Path:
    rng = np.random.default_rng(0)
    arrays = {}
    for part, labels in (
        ("train", train_labels),
        ("val", val_test_labels),
        ("test", val_test_labels),
    ):
        arrays[f"{part}_images"] = rng.integers(0, 256, (len(labels), 28, 28), dtype=np.uint8)
        arrays[f"{part}_labels"] = np.array(labels, dtype=np.uint8).reshape(-1, 1)
    np.savez(path, **arrays)
    return path


# --- paths and folders ------------------------------------------------------------------------


def test_missing_config_file_is_named(invoke: Invoke, tmp_path: Path) -> None:
    missing = tmp_path / "settings.yaml"
    _assert_user_error(invoke(tmp_path / "run", "--config", missing), str(missing))


def test_empty_class_folder_is_named(
    invoke: Invoke, tmp_path: Path, make_image_folder: Callable
) -> None:
    images = make_image_folder(tmp_path / "images", {"benign": 4, "malignant": 4})
    (images / "normal").mkdir()
    result = invoke(tmp_path / "run", "--data", images)
    _assert_user_error(result, str(images / "normal"), "holds no image")


def test_unreadable_image_is_skipped_and_recorded(
    tmp_path: Path, make_image_folder: Callable, train_tiny: Callable
) -> None:
    images = make_image_folder(tmp_path / "images", {"a": 8, "b": 8, "c": 8})
    (images / "b" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage, not a PNG body")

    with pytest.warns(UserWarning, match="b/broken.png"):
        run = train_tiny(tmp_path / "run", data=str(images), data_options={})

    data = read_json(RunDir(run.path).data)
    assert list(data["skipped_images"]) == ["b/broken.png"]
    assert data["skipped_images"]["b/broken.png"]  # the reason
    assert sum(sum(counts.values()) for counts in data["counts"].values()) == 24
    split = read_json(run.run_dir.split)
    assert not any("b/broken.png" in split[part]["ids"] for part in ("train", "val", "test"))


def test_unreadable_image_is_an_error_with_strict_images(
    invoke: Invoke, tmp_path: Path, make_image_folder: Callable
) -> None:
    images = make_image_folder(tmp_path / "images", {"a": 8, "b": 8, "c": 8})
    (images / "b" / "broken.png").write_bytes(b"garbage")
    result = invoke(tmp_path / "run", "--data", images, "--set", "strict_images=true")
    _assert_user_error(result, "b/broken.png", "cannot be read")


def test_corrupt_npz_is_named(invoke: Invoke, tmp_path: Path) -> None:
    archive = tmp_path / "scans.npz"
    archive.write_bytes(b"not a zip archive")
    _assert_user_error(invoke(tmp_path / "run", "--data", archive), str(archive))


def test_npz_with_an_empty_validation_split_loads(tmp_path: Path) -> None:
    path = _write_npz(tmp_path / "noval.npz", [0, 1] * 6, [0, 1])
    with np.load(path) as arrays:
        parts = {key: arrays[key] for key in arrays.files}
    parts["val_images"], parts["val_labels"] = parts["val_images"][:0], parts["val_labels"][:0]
    np.savez(path, **parts)
    table = load_dataset(path)
    assert (table.official_split == "val").sum() == 0


def test_changed_data_of_a_resumed_run_is_named(
    tmp_path: Path, make_image_folder: Callable, train_tiny: Callable
) -> None:
    images = make_image_folder(tmp_path / "images", {"a": 8, "b": 8, "c": 8})
    train_tiny(tmp_path / "run", data=str(images), data_options={})
    removed = read_json(RunDir(tmp_path / "run").split)["train"]["ids"][0]
    (images / removed).unlink()
    with pytest.raises(DataError, match="the data changed since the split was saved"):
        train_tiny(tmp_path / "run", data=str(images), data_options={}, epochs=2)


# --- CSV manifests ----------------------------------------------------------------------------


@pytest.fixture
def csv_images(tmp_path: Path, make_image_folder: Callable) -> Path:
    return make_image_folder(tmp_path / "images", {"a": 8, "b": 8, "c": 8})


def _write_csv(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def test_csv_missing_the_named_column_lists_the_columns(
    invoke: Invoke, tmp_path: Path, csv_images: Path
) -> None:
    manifest = _write_csv(csv_images / "labels.csv", "file,dx", [f"a/{i}.png,a" for i in range(8)])
    result = invoke(tmp_path / "run", "--data", manifest, "--set", f"data_options={CSV_OPTIONS}")
    _assert_user_error(result, str(manifest), "no column 'diagnosis' (label_column)", "file, dx")


def test_csv_with_empty_labels_names_the_lines(
    invoke: Invoke, tmp_path: Path, csv_images: Path
) -> None:
    rows = [f"{c}/{i}.png,{c}" for c in "abc" for i in range(8)]
    rows[1] = "a/1.png,"
    manifest = _write_csv(csv_images / "labels.csv", "file,diagnosis", rows)
    result = invoke(tmp_path / "run", "--data", manifest, "--set", f"data_options={CSV_OPTIONS}")
    _assert_user_error(result, str(manifest), "'diagnosis' is empty on 1 row(s), lines 3")


def test_csv_manifest_trains(tmp_path: Path, csv_images: Path, train_tiny: Callable) -> None:
    rows = [f"{c}/{i}.png,{c.upper()}" for c in "abc" for i in range(8)]
    manifest = _write_csv(csv_images / "labels.csv", "file,diagnosis", rows)
    options = {
        "image_column": "file",
        "path_template": None,
        "label_column": "diagnosis",
        "group_column": None,
    }
    run = train_tiny(tmp_path / "run", data=str(manifest), data_options=options)
    assert run.class_names == ["A", "B", "C"]


# --- classes too small for a method -------------------------------------------------------------


@pytest.fixture
def singleton_npz(tmp_path: Path) -> Path:
    """Class 2 has a single training image (official split)."""
    return _write_npz(tmp_path / "rare.npz", [0] * 8 + [1] * 8 + [2], [0, 1, 2] * 3)


def test_singleton_class_for_deepknn_is_named_with_a_fix(
    invoke: Invoke, tmp_path: Path, singleton_npz: Path
) -> None:
    names = "--set", "data_options={class_names: [benign, malignant, rare]}"
    result = invoke(tmp_path / "run", "--data", singleton_npz, "--method", "deepknn", *names)
    _assert_user_error(result, "Class 'rare' has 1 training image(s)", "deepknn", "merge 'rare'")


def test_singleton_class_message_names_a_real_fix(
    train_tiny: Callable, tmp_path: Path, singleton_npz: Path
) -> None:
    with pytest.raises(DataError) as error:
        train_tiny(tmp_path / "run", data=str(singleton_npz), data_options={}, method="deepknn")
    assert "Lower (" not in str(error.value)
    assert "add" in str(error.value).lower()


def test_singleton_class_is_fine_for_cross_entropy(
    train_tiny: Callable, tmp_path: Path, singleton_npz: Path
) -> None:
    run = train_tiny(tmp_path / "run", data=str(singleton_npz), data_options={}, method="ce")
    assert read_json(run.run_dir.data)["counts"]["train"] == {"0": 8, "1": 8, "2": 1}


# --- unknown names ----------------------------------------------------------------------------


def test_unknown_backbone_lists_close_names(invoke: Invoke, tmp_path: Path, tiny_npz: Path) -> None:
    result = invoke(tmp_path / "run", "--data", tiny_npz, "--method", "ce", "--backbone", "resnt18")
    _assert_user_error(result, "Unknown backbone 'resnt18'", "Did you mean: resnet18")


def test_unknown_dataset_name_lists_close_names(tmp_path: Path, train_tiny: Callable) -> None:
    with pytest.raises(
        ConfigError, match="unknown dataset 'breastmnst'.*Did you mean: breastmnist"
    ):
        train_tiny(tmp_path / "run", data="breastmnst", data_options={})
