"""Run plots are real PNG files; test outputs round-trip through their .npz."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from medknn.evaluation import PartOutputs, classification_metrics
from medknn.io import atomic_write_text
from medknn.reports import write_run_plots


def _outputs(num_classes: int, n: int = 60, seed: int = 0) -> PartOutputs:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % num_classes
    proba = rng.dirichlet(np.ones(num_classes), size=n)
    proba[np.arange(n), labels] += 0.5  # better than chance
    proba /= proba.sum(axis=1, keepdims=True)
    embeddings = rng.normal(size=(n, 8)).astype(np.float32)
    return PartOutputs(labels, proba.argmax(1), proba, embeddings, np.arange(n) + 100)


def test_part_outputs_round_trip(tmp_path: Path) -> None:
    outputs = _outputs(3)
    loaded = PartOutputs.load(outputs.save(tmp_path / "test_outputs.npz"))
    for name in ("labels", "predicted", "proba", "embeddings", "indices"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(outputs, name))


def test_run_plots_are_png_images(tmp_path: Path) -> None:
    for num_classes in (2, 4):
        names = [f"class {c}" for c in range(num_classes)]
        outputs = _outputs(num_classes)
        metrics = classification_metrics(
            outputs.labels, outputs.predicted, proba=outputs.proba, class_names=names
        )
        folder = tmp_path / str(num_classes)
        paths = write_run_plots(folder, metrics, outputs, names)
        assert {p.name for p in paths} == {
            "test_confusion_matrix.png",
            "test_roc.png",
            "test_embedding_map.png",
        }
        for path in paths:
            with Image.open(path) as image:
                assert image.format == "PNG" and min(image.size) > 200


def test_atomic_writes_get_the_usual_permissions(tmp_path: Path) -> None:
    mask = os.umask(0o022)
    os.umask(mask)
    path = atomic_write_text(tmp_path / "a.txt", "x")
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask
