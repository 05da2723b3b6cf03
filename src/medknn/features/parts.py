"""The train/val/test parts of a feature set, standardised with the training part's statistics."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.preprocessing import StandardScaler
from torch.utils.data import TensorDataset

from medknn.data import ImageTable, Split
from medknn.errors import ConfigError
from medknn.features.feature_set import FeatureSet
from medknn.methods import MethodSpec
from medknn.runs.training_data import Part


@dataclass(frozen=True)
class FeatureParts:
    """Standardised features of each part of one split, with the rows' table (labels, ids,
    groups; no images) and the split: the feature-vector kind of
    ``medknn.runs.training_data.TrainingData``. The table and split are those an image run
    keeps, so a vector run's ``split.json`` and ``data.json`` are written by the same code."""

    features: dict[str, np.ndarray]
    table: ImageTable
    split: Split

    @classmethod
    def from_split(cls, feature_set: FeatureSet, split: Split) -> FeatureParts:
        """Every feature is centred and scaled by the training part's mean and std, so that no
        statistic of the validation or test rows leaks into training."""
        rows = split.parts()
        scaler = StandardScaler().fit(feature_set.features[rows["train"]])
        return cls(
            features={
                part: scaler.transform(feature_set.features[r]).astype(np.float32)
                for part, r in rows.items()
            },
            table=feature_set.table(),
            split=split,
        )

    @property
    def class_names(self) -> list[str]:
        return list(self.table.class_names)

    @property
    def dim(self) -> int:
        return self.features["train"].shape[1]

    @property
    def in_features(self) -> int:
        """The length of one input vector: the MLP backbone's input size."""
        return self.dim

    def size(self, part: Part) -> int:
        return len(self.indices(part))

    def indices(self, part: Part) -> np.ndarray:
        return getattr(self.split, part)

    def labels(self, part: Part) -> np.ndarray:
        return self.table.labels[self.indices(part)]

    def ids(self, part: Part) -> list[str]:
        return [self.table.ids[i] for i in self.indices(part)]

    def class_counts(self, part: Part = "train") -> np.ndarray:
        return self.table.class_counts(self.indices(part))

    def cluster_features(self, positions: np.ndarray) -> np.ndarray:
        """The training vectors themselves: the ``cluster`` sampler groups them by k-means."""
        return self.features["train"][positions]

    def dataset(
        self, part: Part, *, augment: bool = False, augmentation: str = "standard", views: int = 1
    ) -> TensorDataset:
        """Items ``(features, label, table row)``, the triple the Trainer's loader yields.
        Vectors are not augmented; several views of a vector are refused (no method that
        declares feature-vector support asks for them)."""
        if views != 1:
            raise ConfigError(f"feature vectors have one view each, not {views}.")
        return TensorDataset(
            torch.from_numpy(self.features[part]),
            torch.from_numpy(self.labels(part)),
            torch.from_numpy(self.indices(part)),
        )

    def training_dataset(self, spec: MethodSpec, augmentation: str | None = None) -> TensorDataset:
        return self.dataset("train", augment=True, views=spec.views)
