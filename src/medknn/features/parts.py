"""The train/val/test parts of a feature set, standardised with the training part's statistics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from sklearn.preprocessing import StandardScaler
from torch.utils.data import TensorDataset

from medknn.data import Split
from medknn.features.feature_set import FeatureSet

Part = Literal["train", "val", "test"]


@dataclass(frozen=True)
class FeatureParts:
    """Standardised features, labels and table rows of each part of one split."""

    features: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    indices: dict[str, np.ndarray]
    ids: dict[str, list[str]]
    class_names: list[str]

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
            labels={part: feature_set.labels[r] for part, r in rows.items()},
            indices=rows,
            ids={part: [feature_set.ids[i] for i in r] for part, r in rows.items()},
            class_names=list(feature_set.class_names),
        )

    @property
    def dim(self) -> int:
        return self.features["train"].shape[1]

    def size(self, part: Part) -> int:
        return len(self.indices[part])

    def class_counts(self, part: Part = "train") -> np.ndarray:
        return np.bincount(self.labels[part], minlength=len(self.class_names))

    def dataset(self, part: Part) -> TensorDataset:
        """Items ``(features, label, table row)``, the triple the Trainer's loader yields."""
        return TensorDataset(
            torch.from_numpy(self.features[part]),
            torch.from_numpy(self.labels[part]),
            torch.from_numpy(self.indices[part]),
        )
