"""What a run trains and is scored on, whichever the input: decoded images (``PreparedData``) or
feature vectors (``medknn.features.FeatureParts``). The batch sampler, the validator, the kNN fit
and the scoring read the data through this protocol only, so both inputs share them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np

if TYPE_CHECKING:
    from torch.utils.data import Dataset

    from medknn.methods import MethodSpec

Part = Literal["train", "val", "test"]


class TrainingData(Protocol):
    """A split data set: per part its labels, table rows and case ids; datasets whose items are
    ``(input, label, table row)``; the vectors the ``cluster`` sampler groups by k-means."""

    @property
    def class_names(self) -> list[str]: ...

    def indices(self, part: Part) -> np.ndarray: ...

    def labels(self, part: Part) -> np.ndarray: ...

    def ids(self, part: Part) -> list[str]: ...

    def class_counts(self, part: Part = "train") -> np.ndarray: ...

    def dataset(
        self, part: Part, *, augment: bool, augmentation: str = "standard", views: int = 1
    ) -> Dataset: ...

    def training_dataset(self, spec: MethodSpec, augmentation: str | None = None) -> Dataset: ...

    def cluster_features(self, positions: np.ndarray) -> np.ndarray:
        """One vector per training position (positions index the training part)."""
        ...
