"""What ``medknn serve`` answers with: a finished run loaded once, its cases looked up by id."""

from __future__ import annotations

import base64
import functools
import io
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
from PIL import Image

from medknn.data import (
    Split,
    decode_images,
    dicom_options,
    load_dataset,
    read_image_bytes,
    resize_size_for,
)
from medknn.errors import DataError
from medknn.evaluation import PartOutputs
from medknn.io import read_json
from medknn.prediction import Neighbour, Prediction, TrainedRun
from medknn.runs.prepare import PreparedData

# Image sizes a client may ask for: the cached size is small; "enlarge" upsamples on the server
# so that every browser shows the same smooth image.
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 16, 512


@dataclass(frozen=True)
class Limits:
    """Bounds on one request: its bytes, its number of images, and each image's pixels (checked
    from the header, before the pixels are decoded)."""

    max_request_bytes: int = 32 * 2**20
    max_files: int = 16
    max_pixels: int = 40_000_000


def load_prepared(trained: TrainedRun, *, progress: bool = False) -> PreparedData:
    """The run's data decoded (from the image cache when warm) with its saved split; unlike
    ``prepare_data`` this never writes into the run directory, which may be read-only."""
    config = trained.config
    table = load_dataset(config.data, download=False, **config.data_options)
    table, images = decode_images(
        table, resize_size_for(config.image_size), strict=config.strict_images, progress=progress
    )
    split = Split.from_dict(read_json(trained.run_dir.split), table)
    return PreparedData(table, images, split, config.image_size)


def png_bytes(pixels: np.ndarray, size: int | None = None) -> bytes:
    image = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)
    if size is not None and size != image.width:
        image = image.resize((size, size), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def case_image_url(case_id: str) -> str:
    return f"/api/cases/image?id={quote(case_id, safe='')}"


class CaseService:
    """Predicts uploaded images with a :class:`TrainedRun` and shows training and test cases.

    Case images come only from the run's decoded data, looked up by case id among the training
    and test rows of its split: no request names a file, so none can read one."""

    def __init__(
        self,
        trained: TrainedRun,
        prepared: PreparedData,
        test: PartOutputs | None = None,
        limits: Limits = Limits(),  # noqa: B008 (frozen)
    ) -> None:
        self.trained = trained
        self.prepared = prepared
        self.test = test
        self.limits = limits
        self.dicom = dicom_options(trained.config.data_options)
        self.decode_size = resize_size_for(trained.config.image_size)
        shown = np.concatenate([prepared.indices("train"), prepared.indices("test")])
        self._rows = {prepared.table.ids[row]: int(row) for row in shown}
        # One forward pass at a time: on a few cores parallel passes only fight for them.
        self._lock = threading.Lock()
        self._png = functools.lru_cache(maxsize=4096)(self._png_uncached)

    @classmethod
    def load(
        cls,
        run: str | Path,
        *,
        limits: Limits = Limits(),  # noqa: B008 (frozen)
        progress: bool = False,
    ) -> CaseService:
        trained = TrainedRun.load(run)
        prepared = load_prepared(trained, progress=progress)
        outputs_path = trained.run_dir.outputs("test")
        test = PartOutputs.load(outputs_path) if outputs_path.exists() else None
        return cls(trained, prepared, test, limits)

    # --- cases -----------------------------------------------------------------------------

    def _png_uncached(self, row: int, size: int | None) -> bytes:
        return png_bytes(self.prepared.images[row], size)

    def case_png(self, case_id: str, size: int | None = None) -> bytes:
        """A training or test case's image as PNG; KeyError for any other id."""
        row = self._rows[case_id]
        if size is not None:
            size = min(max(int(size), MIN_IMAGE_SIZE), MAX_IMAGE_SIZE)
        return self._png(row, size)

    def _neighbour(self, neighbour: Neighbour, inline: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": neighbour.id,
            "label": neighbour.class_name,
            "distance": neighbour.distance,
            "thumbnail_url": case_image_url(neighbour.id),
        }
        if inline:
            out["thumbnail"] = data_uri(self.case_png(neighbour.id))
        return out

    # --- prediction --------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        config = self.trained.config
        return {
            "run": self.trained.path.name,
            "method": config.method,
            "backbone": config.backbone,
            "image_size": config.image_size,
            "classes": self.trained.class_names,
            "neighbours": self.trained.knn.n_neighbors,
            "training_cases": int(len(self.prepared.indices("train"))),
            "test_cases": 0 if self.test is None else int(len(self.test.labels)),
            "limits": vars(self.limits),
        }

    def decode(self, name: str, data: bytes) -> np.ndarray:
        """One upload as the model sees it (DataError if it is no readable image)."""
        if not data:
            raise DataError(f"{name} is empty")
        pixels = read_image_bytes(
            data,
            self.decode_size,
            name=name,
            dicom=self.dicom,
            max_pixels=self.limits.max_pixels,
        )
        return np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels

    def predict(self, uploads: list[tuple[str, bytes]], *, inline: bool) -> list[dict[str, Any]]:
        """Each upload's class, probabilities and nearest training cases; ``inline`` adds the
        thumbnails as data URIs (the page uses them; API clients can fetch the URLs)."""
        images = [self.decode(name, data) for name, data in uploads]
        names = [name for name, _ in uploads]
        with self._lock:
            predictions = self.trained.predict_arrays(np.stack(images), names)
        return [
            self._prediction(p, image, inline) for p, image in zip(predictions, images, strict=True)
        ]

    def _prediction(self, p: Prediction, image: np.ndarray, inline: bool) -> dict[str, Any]:
        return {
            "name": p.source,
            "label": p.label,
            "probability": p.probability,
            "probabilities": p.probabilities,
            "query_image": data_uri(png_bytes(image)),
            "neighbours": [self._neighbour(n, inline) for n in p.neighbours],
        }

    # --- the test split ----------------------------------------------------------------------

    def test_cases(
        self, offset: int, limit: int, *, wrong_only: bool, inline: bool
    ) -> dict[str, Any]:
        """A page of the run's test split: each case with its prediction and neighbours."""
        if self.test is None:
            return {"total": 0, "offset": offset, "cases": []}
        test = self.test
        positions = np.arange(len(test.labels))
        if wrong_only:
            positions = positions[test.predicted != test.labels]
        page = positions[offset : offset + limit]
        names = self.trained.class_names
        evidence = self.trained.knn.explain(test.embeddings[page]) if len(page) else []
        cases = []
        for i, neighbours in zip(page, evidence, strict=True):
            case_id = self.prepared.table.ids[int(test.indices[i])]
            case = {
                "id": case_id,
                "true_label": names[int(test.labels[i])],
                "label": names[int(test.predicted[i])],
                "probability": float(test.proba[i, int(test.predicted[i])]),
                "correct": bool(test.labels[i] == test.predicted[i]),
                "image_url": case_image_url(case_id),
                "neighbours": [self._neighbour(n, inline) for n in neighbours],
            }
            if inline:
                case["image"] = data_uri(self.case_png(case_id))
            cases.append(case)
        return {"total": int(len(positions)), "offset": offset, "cases": cases}
