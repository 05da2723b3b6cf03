"""A finished run loaded back: its network, its kNN index of training cases, and prediction."""

from __future__ import annotations

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
from medknn.prediction.knn import KNNClassifier, Neighbour
from medknn.prediction.rules import predict_with_rule
from medknn.training.build import build_network
from medknn.training.config import TrainConfig
from medknn.training.run_dir import RunDir


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
        self.tta = config.tta  # test-time augmentation of predict_*; may be changed

    @property
    def path(self) -> Path:
        return self.run_dir.path

    @classmethod
    def load(cls, path: str | Path) -> TrainedRun:
        run_dir = RunDir(Path(path))
        if not run_dir.config.exists():
            raise ConfigError(f"{run_dir.path} is not a medknn run (no config.yaml there).")
        for needed in (run_dir.model, run_dir.data, run_dir.knn):
            if not needed.exists():
                raise ConfigError(
                    f"Run {run_dir.path} is unfinished ({needed.name} is missing). "
                    f"Resume it with: medknn train --config {run_dir.config} --out {run_dir.path}"
                )
        config = TrainConfig.load_saved(run_dir.config)
        spec = get_method(config.method)
        class_names = read_json(run_dir.data)["class_names"]
        network = build_network(config, spec, len(class_names), load_weights=False)
        network.load_state_dict(load_tensors(run_dir.model))
        knn = KNNClassifier.load(run_dir.knn)
        return cls(
            run_dir, config, spec, network, knn, class_names, DecisionRule.load(run_dir.path)
        )

    def normalization(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        return backbone_normalization(self.network.backbone)

    @torch.no_grad()
    def predict_arrays(self, images: np.ndarray, sources: list[str]) -> list[Prediction]:
        """Predict decoded uint8 images (N×S×S×C at the run's cache size) with evidence."""
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

    def predict_files(self, paths: list[str | Path]) -> list[Prediction]:
        """Predict image files (any format PIL reads) with the run's evaluation transform."""
        size = resize_size_for(self.config.image_size)
        missing = [str(p) for p in paths if not Path(p).is_file()]
        if missing:
            raise DataError(f"Image file(s) not found: {', '.join(missing)}. Check the paths.")
        dicom = dicom_options(self.config.data_options)  # DICOM read as in training
        images = np.stack([_three_channels(read_image_file(p, size, dicom=dicom)) for p in paths])
        return self.predict_arrays(images, [str(p) for p in paths])


def _three_channels(image: np.ndarray) -> np.ndarray:
    return np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image
