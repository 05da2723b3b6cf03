"""Shared fixtures for the upper-layer tests: tiny data sets, a tiny fast config, trained runs.

Every test session decodes into a temporary image cache (``MEDKNN_CACHE``), never the home folder.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from PIL import Image

import medknn
from medknn.data import CACHE_ENV_VAR
from medknn.prediction import TrainedRun

CLASS_NAMES = ["benign", "malignant", "normal"]
# A few seconds per training run on 2 CPU cores: a small timm model, two batches an epoch.
TINY_OPTIONS: dict[str, Any] = {
    "backbone": "mobilenetv3_small_050",
    "pretrained": False,
    "image_size": 28,
    "epochs": 1,
    "batch_size": 12,
    "classes_per_batch": 3,
    "max_batches_per_epoch": 2,
    "embedding_dim": 16,
    "k_predict": 3,
}


@pytest.fixture(scope="session", autouse=True)
def _temporary_image_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    cache = tmp_path_factory.mktemp("medknn-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CACHE_ENV_VAR, str(cache))
        yield cache


def class_images(labels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 N×size×size grey images whose brightness depends on the class, plus noise."""
    noise = rng.integers(0, 90, (len(labels), size, size))
    return (noise + 60 * np.asarray(labels)[:, None, None]).astype(np.uint8)


def write_npz(path: Path, sizes: dict[str, int], num_classes: int = 3, seed: int = 0) -> Path:
    """A MedMNIST-layout npz; ``sizes`` maps train/val/test to a number of images."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for part, n in sizes.items():
        labels = np.arange(n) % num_classes
        arrays[f"{part}_images"] = class_images(labels, 28, rng)
        arrays[f"{part}_labels"] = labels.reshape(-1, 1).astype(np.uint8)
    np.savez(path, **arrays)
    return path


def write_image_folder(root: Path, counts: dict[str, int], size: int = 32, seed: int = 0) -> Path:
    """``root/<class>/<i>.png`` random RGB images, ``counts[class]`` of each class."""
    rng = np.random.default_rng(seed)
    for label, (name, count) in enumerate(counts.items()):
        (root / name).mkdir(parents=True)
        for i in range(count):
            pixels = class_images(np.full(1, label), size, rng)[0]
            Image.fromarray(np.stack([pixels] * 3, axis=2)).save(root / name / f"{i}.png")
    return root


def load_benchmark_script(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` as a module: the scripts are not part of the package."""
    path = Path(__file__).parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def make_npz() -> Callable[..., Path]:
    """``make_npz(path, {"train": n, "val": n, "test": n}, num_classes=3)``."""
    return write_npz


@pytest.fixture
def make_image_folder() -> Callable[..., Path]:
    """``make_image_folder(root, {"class": count, ...}, size=32)``."""
    return write_image_folder


@pytest.fixture(scope="session")
def tiny_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    return write_npz(folder / "tiny.npz", {"train": 36, "val": 12, "test": 12})


# One short epoch on the real BreastMNIST (two batches), imported by the method tests.
BREASTMNIST_SHORT_RUN: dict[str, Any] = {
    "data": "breastmnist",
    "backbone": "mobilenetv3_small_050",
    "image_size": 28,
    "epochs": 1,
    "batch_size": 12,
    "max_batches_per_epoch": 2,
    "k_predict": 3,
}


@pytest.fixture(scope="session")
def tiny_options(tiny_npz: Path) -> dict[str, Any]:
    """Options of a fast run on ``tiny_npz`` with named classes; copy before changing."""
    return {**TINY_OPTIONS, "data": str(tiny_npz), "data_options": {"class_names": CLASS_NAMES}}


@pytest.fixture
def train_tiny(tiny_options: dict[str, Any]) -> Callable[..., TrainedRun]:
    """``train_tiny(out, **overrides)`` trains the tiny config quietly."""

    def train(out: Path, **overrides: Any) -> TrainedRun:
        return medknn.train({**tiny_options, **overrides}, out, progress=False)

    return train


@pytest.fixture
def runs_of_two_splits(
    tmp_path: Path, train_tiny: Callable[..., TrainedRun], make_image_folder: Callable[..., Path]
) -> list[TrainedRun]:
    """Two tiny runs of one image folder whose seeds draw two different stratified splits."""
    folder = make_image_folder(tmp_path / "folder", {"a": 12, "b": 12, "c": 12})
    return [
        train_tiny(
            tmp_path / f"r{s}", data=str(folder), data_options={}, seed=s, split="stratified"
        )
        for s in (0, 1)
    ]


@pytest.fixture(scope="session")
def deepknn_run(tiny_options: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished deepknn run (shared: tests must not change it)."""
    out = tmp_path_factory.mktemp("runs") / "deepknn"
    medknn.train({**tiny_options, "method": "deepknn"}, out, progress=False)
    return out


@pytest.fixture(scope="session")
def weighted_ce_run(tiny_options: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished weighted-ce run (shared: tests must not change it)."""
    out = tmp_path_factory.mktemp("runs") / "weighted-ce"
    medknn.train({**tiny_options, "method": "weighted-ce"}, out, progress=False)
    return out


@pytest.fixture(scope="session")
def png_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two 32 px grey PNG files, one dark and one bright."""
    folder = tmp_path_factory.mktemp("pngs")
    rng = np.random.default_rng(1)
    paths = []
    for label in (0, 2):
        path = folder / f"class{label}.png"
        Image.fromarray(class_images(np.full(1, label), 32, rng)[0]).save(path)
        paths.append(path)
    return paths


@pytest.fixture(scope="session")
def serve_service(deepknn_run: Path) -> Any:
    """The ``medknn serve`` service of ``deepknn_run``, loaded once (tests must not change it)."""
    from medknn.serve import CaseService

    return CaseService.load(deepknn_run)


@pytest.fixture(scope="session")
def serve_ensemble_dir(
    deepknn_run: Path, tiny_options: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A 2-member ensemble on the tiny split: ``deepknn_run`` (28 px) and a weighted-ce run at
    32 px, so its members decode an upload at two sizes (shared: tests must not change it)."""
    folder = tmp_path_factory.mktemp("ensemble")
    other = folder / "weighted-ce-32"
    medknn.train({**tiny_options, "method": "weighted-ce", "image_size": 32}, other, progress=False)
    medknn.ensemble([deepknn_run, other], folder / "ensemble", progress=False)
    return folder / "ensemble"


@pytest.fixture(scope="session")
def serve_ensemble_service(serve_ensemble_dir: Path) -> Any:
    """The ``medknn serve`` service of ``serve_ensemble_dir`` (tests must not change it)."""
    from medknn.serve import CaseService

    return CaseService.load(serve_ensemble_dir)
