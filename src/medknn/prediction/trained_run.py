"""A finished run loaded back: its network, its kNN index of training cases, and prediction."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from medknn.data import build_transforms, dicom_options, read_image_file, resize_size_for
from medknn.errors import ConfigError, DataError
from medknn.io import load_tensors, read_json
from medknn.methods import MethodSpec, get_method
from medknn.models import EmbeddingNetwork, backbone_normalization
from medknn.prediction.decision import DecisionRule
from medknn.prediction.embed import network_outputs
from medknn.prediction.knn import EMBEDDINGS_FILE, INDEX_FILE, KNNClassifier, Neighbour
from medknn.prediction.knn_index import probe_index
from medknn.prediction.rules import predict_with_rule
from medknn.runs.build import build_network
from medknn.runs.config import TrainConfig
from medknn.runs.run_dir import RunDir
from medknn.runs.run_manifest import check_manifest


class RunRepairWarning(UserWarning):
    """A run was loaded with a part rebuilt from its other files."""


@dataclass(frozen=True)
class Prediction:
    """One image's prediction with the nearest training cases that back it."""

    source: str
    label: str
    probability: float
    probabilities: dict[str, float]
    neighbours: list[Neighbour]


class TrainedRun:
    """Load with :meth:`load`; predict with :meth:`predict_files` or :meth:`predict_arrays`."""

    def __init__(
        self,
        run_dir: RunDir,
        config: TrainConfig,
        spec: MethodSpec,
        network: EmbeddingNetwork,
        knn: KNNClassifier,
        class_names: list[str],
        decision: DecisionRule | None = None,
    ) -> None:
        self.run_dir = run_dir
        self.config = config
        self.spec = spec
        self.network = network.eval()
        self.knn = knn
        self.class_names = class_names
        self.decision = decision
        # Test-time augmentation of predict_* (may be changed): the decision rule's, else the
        # config's (auto without a rule: none).
        self.tta = decision.tta if decision is not None else config.tta.replace("auto", "none")

    @property
    def path(self) -> Path:
        return self.run_dir.path

    @classmethod
    def load(cls, path: str | Path, *, rebuild_index: bool = False) -> TrainedRun:
        """Load a finished run. Its files are first checked against ``manifest.json`` (when the
        run has one): a missing, truncated or altered file is a DataError naming it, except a
        damaged approximate index (``knn/index.faiss``), which is rebuilt from the saved
        embeddings with a warning (``medknn repair RUN`` writes the rebuilt one to disk).
        ``rebuild_index=True`` rebuilds it without reading ``index.faiss`` at all."""
        run_dir = RunDir(Path(path))
        if run_dir.path.exists() and not run_dir.path.is_dir():
            raise ConfigError(f"{run_dir.path} is a file, not a run directory; give the folder.")
        if not run_dir.config.exists():
            raise ConfigError(f"{run_dir.path} is not a medknn run (no config.yaml there).")
        for needed in (run_dir.model, run_dir.data, run_dir.knn):
            if not needed.exists():
                raise ConfigError(
                    f"Run {run_dir.path} is unfinished ({needed.name} is missing). "
                    f"Resume it with: medknn train --config {run_dir.config} --out {run_dir.path}"
                )
        rebuild_index = _check_files(run_dir) or rebuild_index
        config = TrainConfig.load_saved(run_dir.config)
        spec = get_method(config.method)
        class_names = _class_names(run_dir.data)
        network = build_network(
            config,
            spec,
            len(class_names),
            load_weights=False,
            in_features=_in_features(run_dir.data),
        )
        try:
            network.load_state_dict(load_tensors(run_dir.model))
        except Exception as error:  # safetensors and torch report damage as several types
            raise DataError(
                f"{run_dir.model} is damaged or belongs to another run ({_first_line(error)}); "
                f"copy the run again, or retrain it."
            ) from None
        knn = KNNClassifier.load(run_dir.knn, rebuild_index=rebuild_index)
        if len(knn.class_names_) != len(class_names):
            raise DataError(
                f"{run_dir.knn / 'knn.json'} has {len(knn.class_names_)} classes but "
                f"{run_dir.data} has {len(class_names)}; the run mixes two saves, retrain it."
            )
        decision = DecisionRule.load(run_dir.path)
        return cls(run_dir, config, spec, network, knn, class_names, decision)

    def _refuse_if_vectors(self) -> None:
        if self.config.backbone == "mlp":  # what a feature-vector run records (vector_config)
            raise ConfigError(
                f"Run {self.path} was trained on feature vectors, not images: it cannot predict "
                "image files. Score it with `medknn evaluate RUN`, or train on images."
            )

    def normalization(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        return backbone_normalization(self.network.backbone)

    @torch.no_grad()
    def predict_arrays(self, images: np.ndarray, sources: list[str]) -> list[Prediction]:
        """Predict decoded uint8 images (N×S×S×C at the run's cache size) with evidence."""
        self._refuse_if_vectors()
        mean, std = self.normalization()
        transform = build_transforms(self.config.image_size, train=False, mean=mean, std=std)
        batch = torch.stack([transform(torch.from_numpy(im).permute(2, 0, 1)) for im in images])
        device = next(self.network.parameters()).device
        embeddings, logits = network_outputs(self.network, batch.to(device), self.tta)
        embeddings = embeddings.float().cpu().numpy()
        logits = None if logits is None else logits.float().cpu().numpy()
        labels, proba = predict_with_rule(
            self.spec.prediction,
            knn=self.knn,
            embeddings=embeddings,
            logits=logits,
            decision=self.decision,
        )
        # The evidence is the run's k_predict nearest cases, whatever K_p the rule votes with.
        evidence = self.knn.explain(embeddings)
        return [
            Prediction(
                source=source,
                label=self.class_names[label],
                probability=float(row[label]),
                probabilities=dict(zip(self.class_names, map(float, row), strict=True)),
                neighbours=neighbours,
            )
            for source, label, row, neighbours in zip(sources, labels, proba, evidence, strict=True)
        ]

    def predict_files(self, paths: list[str | Path], *, batch_size: int = 32) -> list[Prediction]:
        """Predict image files (any format PIL reads) with the run's evaluation transform."""
        return list(self.iter_predict_files(paths, batch_size=batch_size))

    def iter_predict_files(
        self, paths: list[str | Path], *, batch_size: int = 32
    ) -> Iterator[Prediction]:
        """Predict image files ``batch_size`` at a time, yielding each prediction as its batch is
        done: memory stays flat however many files there are. Every path is checked first."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size={batch_size!r} must be a whole number >= 1, e.g. 32.")
        self._refuse_if_vectors()
        folders = [str(p) for p in paths if Path(p).is_dir()]
        if folders:
            raise DataError(
                f"{', '.join(folders)}: a folder, not an image file; give the images in it, "
                "e.g. FOLDER/*.png."
            )
        missing = [str(p) for p in paths if not Path(p).is_file()]
        if missing:
            raise DataError(f"Image file(s) not found: {', '.join(missing)}. Check the paths.")
        size = resize_size_for(self.config.image_size)
        dicom = dicom_options(self.config.data_options)  # DICOM read as in training
        for start in range(0, len(paths), batch_size):
            chunk = paths[start : start + batch_size]
            images = np.stack(
                [_three_channels(read_image_file(p, size, dicom=dicom)) for p in chunk]
            )
            yield from self.predict_arrays(images, [str(p) for p in chunk])


def _check_files(run_dir: RunDir) -> bool:
    """Check the run against its manifest; True when only its approximate index is damaged
    and is to be rebuilt from the intact embeddings (a run without a manifest: False)."""
    check = check_manifest(run_dir)
    if not check.has_manifest:
        return _probe_legacy_index(run_dir)
    index_name = f"{run_dir.knn.name}/{INDEX_FILE}"
    embeddings_name = f"{run_dir.knn.name}/{EMBEDDINGS_FILE}"
    rebuildable = set(check.bad) == {index_name} and embeddings_name not in check.bad
    if check.bad and not (rebuildable and (run_dir.knn / EMBEDDINGS_FILE).is_file()):
        raise DataError(
            f"Run {run_dir.path} does not match its manifest: {check.describe(run_dir.path)}. "
            "The file was damaged or changed after the run finished: copy the run again from "
            "its source, or retrain it."
        )
    if check.bad:
        warnings.warn(
            f"{run_dir.path / index_name} does not match the run's manifest "
            f"({check.bad[index_name]}); using an index rebuilt from the saved embeddings. "
            f"`medknn repair {run_dir.path}` writes it to disk.",
            RunRepairWarning,
            stacklevel=3,
        )
    return bool(check.bad)


def _probe_legacy_index(run_dir: RunDir) -> bool:
    """A run saved before manifests: its approximate index is first read in a child process
    (``probe_index``); when that fails, rebuild it from saved embeddings, or refuse the run."""
    index_path = run_dir.knn / INDEX_FILE
    if not index_path.is_file():
        return False
    problem = probe_index(index_path)
    if problem is None:
        return False
    if not (run_dir.knn / EMBEDDINGS_FILE).is_file():
        raise DataError(
            f"{index_path} is damaged: {problem}. The run has no saved embeddings to rebuild it "
            "from (it was written before medknn kept them); copy the run again, or retrain it."
        )
    warnings.warn(
        f"{index_path} is damaged ({problem}); using an index rebuilt from the saved "
        f"embeddings. `medknn repair {run_dir.path}` writes it to disk.",
        RunRepairWarning,
        stacklevel=3,
    )
    return True


def _class_names(path: Path) -> list[str]:
    try:
        names = read_json(path)["class_names"]
    except (ValueError, TypeError, KeyError) as error:
        raise DataError(
            f"{path} is damaged ({_first_line(error)}); copy the run again, or retrain it."
        ) from None
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise DataError(
            f"{path}: class_names must be a non-empty list of names, got {names!r:.80}; "
            "copy the run again, or retrain it."
        )
    return names


def _in_features(path: Path) -> int | None:
    """A feature-vector run's input length (its MLP's first layer); None for image runs."""
    value = read_json(path).get("in_features")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise DataError(f"{path}: in_features must be a whole number >= 1, got {value!r:.40}.")
    return value


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0][:200]}" if lines else type(error).__name__


def _three_channels(image: np.ndarray) -> np.ndarray:
    return np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image
