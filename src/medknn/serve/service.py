"""What ``medknn serve`` answers with: a finished run, or an ensemble of runs, loaded once, its
cases looked up by id."""

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
from medknn.errors import ConfigError, DataError
from medknn.evaluation import PartOutputs
from medknn.io import read_json
from medknn.prediction import Neighbour, Prediction, TrainedRun
from medknn.prediction.ensemble_run import EnsemblePrediction, EnsembleRun
from medknn.runs.prepare import PreparedData
from medknn.runs.run_dir import RunDir

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


def check_shared_cases(members: list[TrainedRun], prepared: PreparedData) -> None:
    """The service shows every member's nearest cases from one decoded data set (the first
    member's, ``prepared``): each member must read the same data with the same options, hold the
    same training and test cases, and index only those training cases. ConfigError otherwise."""
    first = members[0]
    train = prepared.indices("train")
    train_ids = {prepared.table.ids[row] for row in train}
    fix = (
        "medknn serve shows every member's nearest cases from one data set, so an ensemble's "
        "members must share the data, its options and the split (e.g. --set split_seed=0)."
    )
    for run in members[1:]:
        mine = (run.config.data, run.config.data_options)
        if mine != (first.config.data, first.config.data_options):
            raise ConfigError(
                f"Ensemble member {run.path} reads {mine[0]} with options {mine[1]}, member "
                f"{first.path} reads {first.config.data} with options "
                f"{first.config.data_options}. {fix}"
            )
        try:
            split = Split.from_dict(read_json(run.run_dir.split), prepared.table)
        except DataError as error:
            raise ConfigError(
                f"Ensemble member {run.path}'s split does not fit the data of {first.path} "
                f"({error}). {fix}"
            ) from None
        for part in ("train", "test"):
            if not np.array_equal(np.sort(getattr(split, part)), np.sort(prepared.indices(part))):
                raise ConfigError(
                    f"Ensemble members {run.path} and {first.path} have other {part} cases. {fix}"
                )
    for run in members:
        strangers = set(run.knn.ids_) - train_ids
        if strangers:
            raise ConfigError(
                f"Ensemble member {run.path} indexes {len(strangers)} case(s) that are not "
                f"training cases of {first.path}'s split, e.g. {min(strangers)!r}. {fix}"
            )


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
    """Predicts uploaded images with a :class:`TrainedRun` or an :class:`EnsembleRun` and shows
    training and test cases.

    Case images come only from the decoded data (an ensemble's members share it: checked), looked
    up by case id among the training and test rows of the split: no request names a file, so
    none can read one. ``trained`` is what predicts, the run or the ensemble; ``members`` the
    runs behind it (the run itself for a single run)."""

    def __init__(
        self,
        trained: TrainedRun | EnsembleRun,
        prepared: PreparedData,
        test: PartOutputs | None = None,
        limits: Limits = Limits(),  # noqa: B008 (frozen)
        member_tests: list[PartOutputs | None] | None = None,
    ) -> None:
        self.trained = trained
        self.ensemble = isinstance(trained, EnsembleRun)
        self.members = trained.members if isinstance(trained, EnsembleRun) else [trained]
        if self.ensemble:
            check_shared_cases(self.members, prepared)
        first = self.members[0]
        self.prepared = prepared
        self.test = test
        self.limits = limits
        self.dicom = dicom_options(first.config.data_options)  # the members' (checked)
        # Thumbnails and the query are shown at the first member's size; an upload is decoded
        # once for each distinct size the members read.
        self.decode_size = resize_size_for(first.config.image_size)
        self.member_sizes = [resize_size_for(run.config.image_size) for run in self.members]
        # Each member's saved test outputs locate its nearest cases in the test-split browser:
        # only those of the same cases in the same order as the served test outputs.
        if member_tests is None:
            member_tests = [None] * len(self.members) if self.ensemble else [test]
        self.member_tests = [_same_cases(outputs, test) for outputs in member_tests]
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
        """A run directory, or an ensemble's (``medknn ensemble``)."""
        if EnsembleRun.is_ensemble(run):
            ensemble = EnsembleRun.load(run)
            prepared = load_prepared(ensemble.members[0], progress=progress)
            test = _saved_outputs(RunDir(ensemble.path))
            member_tests = [_saved_outputs(member.run_dir) for member in ensemble.members]
            return cls(ensemble, prepared, test, limits, member_tests)
        trained = TrainedRun.load(run)
        prepared = load_prepared(trained, progress=progress)
        return cls(trained, prepared, _saved_outputs(trained.run_dir), limits)

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
        if self.ensemble:
            return self._ensemble_info()
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

    def _ensemble_info(self) -> dict[str, Any]:
        members = [
            {
                "run": run.path.name,
                "method": run.config.method,
                "backbone": run.config.backbone,
                "image_size": run.config.image_size,
                "neighbours": run.knn.n_neighbors,
            }
            for run in self.members
        ]

        def common(key: str) -> Any:  # the members' value, or None when they differ
            values = {member[key] for member in members}
            return values.pop() if len(values) == 1 else None

        return {
            "run": self.trained.path.name,
            "method": "ensemble",
            "backbone": " + ".join(dict.fromkeys(m["backbone"] for m in members)),
            "image_size": common("image_size"),
            "classes": self.trained.class_names,
            "neighbours": common("neighbours"),
            "training_cases": int(len(self.prepared.indices("train"))),
            "test_cases": 0 if self.test is None else int(len(self.test.labels)),
            "limits": vars(self.limits),
            "ensemble": True,
            "members": members,
        }

    def decode(self, name: str, data: bytes, size: int | None = None) -> np.ndarray:
        """One upload as the model sees it, decoded at ``size`` (the first member's decode size
        by default); DataError if it is no readable image."""
        if not data:
            raise DataError(f"{name} is empty")
        pixels = read_image_bytes(
            data,
            self.decode_size if size is None else size,
            name=name,
            dicom=self.dicom,
            max_pixels=self.limits.max_pixels,
        )
        return np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels

    def predict(self, uploads: list[tuple[str, bytes]], *, inline: bool) -> list[dict[str, Any]]:
        """Each upload's class, probabilities and nearest training cases; ``inline`` adds the
        thumbnails as data URIs (the page uses them; API clients can fetch the URLs). An
        ensemble's prediction is its own (:meth:`EnsembleRun.predict_member_arrays`), with each
        member's label, probability and nearest cases."""
        sizes = list(dict.fromkeys([self.decode_size, *self.member_sizes]))
        decoded = {
            size: np.stack([self.decode(name, data, size) for name, data in uploads])
            for size in sizes
        }
        names = [name for name, _ in uploads]
        with self._lock:
            if isinstance(self.trained, EnsembleRun):
                batches = [decoded[size] for size in self.member_sizes]
                predictions: list[Prediction] = list(
                    self.trained.predict_member_arrays(batches, names)
                )
            else:
                predictions = self.trained.predict_arrays(decoded[self.decode_size], names)
        shown = decoded[self.decode_size]
        return [
            self._prediction(p, image, inline) for p, image in zip(predictions, shown, strict=True)
        ]

    def _prediction(self, p: Prediction, image: np.ndarray, inline: bool) -> dict[str, Any]:
        out = {
            "name": p.source,
            "label": p.label,
            "probability": p.probability,
            "probabilities": p.probabilities,
            "query_image": data_uri(png_bytes(image)),
            "neighbours": [self._neighbour(n, inline) for n in p.neighbours],
        }
        if isinstance(p, EnsemblePrediction):
            out["members"] = [
                {
                    "run": run.path.name,
                    "label": member.label,
                    "probability": member.probability,
                    "neighbours": [self._neighbour(n, inline) for n in member.neighbours],
                }
                for run, member in zip(self.members, p.members, strict=True)
            ]
            out["agreement"] = p.agreement
        return out

    # --- the test split ----------------------------------------------------------------------

    def test_cases(
        self, offset: int, limit: int, *, wrong_only: bool, inline: bool
    ) -> dict[str, Any]:
        """A page of the saved test split: each case with its prediction and neighbours; for an
        ensemble, each member's saved label and nearest cases besides."""
        if self.test is None:
            return {"total": 0, "offset": offset, "cases": []}
        test = self.test
        positions = np.arange(len(test.labels))
        if wrong_only:
            positions = positions[test.predicted != test.labels]
        page = positions[offset : offset + limit]
        names = self.trained.class_names
        # (run, its saved test outputs, their page's nearest cases) of each member that has them.
        evidence = [
            (run, outputs, run.knn.explain(outputs.embeddings[page]) if len(page) else [])
            for run, outputs in zip(self.members, self.member_tests, strict=True)
            if outputs is not None
        ]
        cases = []
        for position, i in enumerate(page):
            case_id = self.prepared.table.ids[int(test.indices[i])]
            label = int(test.predicted[i])
            first = (
                evidence[0][2][position] if evidence and evidence[0][0] is self.members[0] else []
            )
            case: dict[str, Any] = {
                "id": case_id,
                "true_label": names[int(test.labels[i])],
                "label": names[label],
                "probability": float(test.proba[i, label]),
                "correct": bool(test.labels[i] == label),
                "image_url": case_image_url(case_id),
                "neighbours": [self._neighbour(n, inline) for n in first],
            }
            if self.ensemble:
                members = [
                    {
                        "run": run.path.name,
                        "label": names[int(outputs.predicted[i])],
                        "probability": float(outputs.proba[i, int(outputs.predicted[i])]),
                        "neighbours": [self._neighbour(n, inline) for n in found[position]],
                    }
                    for run, outputs, found in evidence
                ]
                case["members"] = members
                case["agreement"] = (
                    float(np.mean([m["label"] == names[label] for m in members]))
                    if members
                    else None
                )
            if inline:
                case["image"] = data_uri(self.case_png(case_id))
            cases.append(case)
        return {"total": int(len(positions)), "offset": offset, "cases": cases}


def _same_cases(outputs: PartOutputs | None, test: PartOutputs | None) -> PartOutputs | None:
    """``outputs`` when they are of ``test``'s cases in its order, else None."""
    if outputs is None or test is None or not np.array_equal(outputs.indices, test.indices):
        return None
    return outputs


def _saved_outputs(run_dir: RunDir) -> PartOutputs | None:
    path = run_dir.outputs("test")
    return PartOutputs.load(path) if path.exists() else None
