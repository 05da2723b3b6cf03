"""What a run trains and is scored on, whichever the input: decoded images (``PreparedData``) or
feature vectors (``medknn.features.FeatureParts``). The batch sampler, the validator, the kNN fit
and the scoring read the data through this protocol only, so both inputs share them; what a
config means on vectors (``vector_config``) is decided here too."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np

from medknn.errors import ConfigError
from medknn.methods import get_method, list_methods
from medknn.runs.config import TrainConfig

if TYPE_CHECKING:
    from torch.utils.data import Dataset

    from medknn.data import ImageTable, Split
    from medknn.methods import MethodSpec

Part = Literal["train", "val", "test"]


class TrainingData(Protocol):
    """A split data set: per part its labels, table rows and case ids; datasets whose items are
    ``(input, label, table row)``; the vectors the ``cluster`` sampler groups by k-means; the
    table and split a run directory records (``split.json``, ``data.json``)."""

    @property
    def table(self) -> ImageTable: ...

    @property
    def split(self) -> Split: ...

    @property
    def class_names(self) -> list[str]: ...

    @property
    def in_features(self) -> int | None:
        """The length of one input vector (the ``mlp`` backbone's input); None for images."""
        ...

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


def check_runs_on_vectors(method: str, *, also: Sequence[str] = ()) -> None:
    """ConfigError naming the reason when registered ``method`` declares it needs images;
    the message lists the methods that run on vectors (``also``: other kinds of method first,
    e.g. the feature setting's kNN-basic/NCA/LMNN baselines)."""
    problem = get_method(method).vector_problem
    if problem is not None:
        on_vectors = [s.name for s in list_methods() if s.vector_problem is None]
        raise ConfigError(
            f"Method {method!r} does not run on feature vectors: {problem}. Methods that do: "
            f"{', '.join((*also, *on_vectors))}."
        )


def vector_config(config: TrainConfig) -> TrainConfig:
    """``config`` as a run on feature vectors trains and is scored, and records it in its
    ``config.yaml``: the paper's MLP in the backbone's place (whatever image backbone it
    names) and no test-time augmentation (``tta: auto`` means none: there is no image to flip
    or crop). A method that needs images, or an explicit ``tta: flips``/``crops``, is refused."""
    check_runs_on_vectors(config.method)
    return config.replace(backbone="mlp", tta=vector_tta(config))


def vector_tta(config: TrainConfig) -> str:
    """``none``: the only test-time augmentation of vectors; an explicit other one is refused."""
    if config.tta not in ("auto", "none"):
        raise ConfigError(
            f"tta: {config.tta} does not apply to feature vectors (there is no image to flip or "
            "crop). Set tta: none, or leave tta: auto, which means none on vectors."
        )
    return "none"
