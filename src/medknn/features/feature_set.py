"""Precomputed feature vectors with labels, loaded from (and saved to) an ``.npz`` file."""

from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medknn.data import ImageTable, Split, make_split
from medknn.errors import DataError
from medknn.io import atomic_write_bytes

REQUIRED_KEYS = ("features", "labels")
OPTIONAL_KEYS = ("ids", "class_names", "groups", "official_split", "settings")


@dataclass
class FeatureSet:
    """One feature vector per sample, in the order of the image table they came from.

    ``groups`` (e.g. HAM10000 lesion ids) and ``official_split`` are kept so that
    :meth:`split` reproduces the image pipeline's split for the same seed. ``settings`` records
    how the features were made (backbone, image size, ...); it is empty for a user's own file.
    """

    features: np.ndarray  # (N, D) float32
    labels: np.ndarray  # (N,) int64 class indices
    class_names: list[str]
    ids: list[str]
    groups: np.ndarray | None = None
    official_split: np.ndarray | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    def __post_init__(self) -> None:
        where = self.source or "feature set"
        self.features = np.asarray(self.features)
        if self.features.ndim != 2 or not np.issubdtype(self.features.dtype, np.number):
            raise DataError(
                f"{where}: 'features' must be a numeric N×D array, got shape "
                f"{self.features.shape} of {self.features.dtype}; save one row per sample."
            )
        n = len(self.features)
        if n == 0:
            raise DataError(f"{where}: 'features' has no rows.")
        if not np.isfinite(self.features).all():
            bad = int((~np.isfinite(self.features).all(axis=1)).sum())
            raise DataError(f"{where}: 'features' has NaN or inf in {bad} row(s); drop them.")
        self.features = self.features.astype(np.float32, copy=False)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        for key, values in (("labels", self.labels), ("ids", self.ids)):
            if len(values) != n:
                raise DataError(
                    f"{where}: {len(values)} {key} for {n} feature rows; they must match."
                )
        if self.labels.min() < 0 or self.labels.max() >= len(self.class_names):
            raise DataError(
                f"{where}: labels must lie in 0..{len(self.class_names) - 1} (one per class "
                f"name: {', '.join(self.class_names)}), got "
                f"{self.labels.min()}..{self.labels.max()}."
            )
        for key in ("groups", "official_split"):
            values = getattr(self, key)
            if values is not None:
                values = np.asarray(values, dtype=str)
                if values.shape != (n,):
                    raise DataError(
                        f"{where}: '{key}' has shape {values.shape}; need one entry per row ({n})."
                    )
                setattr(self, key, values)

    def __len__(self) -> int:
        return len(self.features)

    @property
    def dim(self) -> int:
        return self.features.shape[1]

    def table(self) -> ImageTable:
        """The rows as an image-less :class:`ImageTable`, for the data layer's split functions."""
        return ImageTable(
            ids=list(self.ids),
            labels=self.labels,
            class_names=list(self.class_names),
            reader=NoImages(len(self)),
            groups=self.groups,
            official_split=self.official_split,
            name=str(self.settings.get("data", "")) or Path(self.source).stem,
            source=str(self.settings.get("data_source", self.source)),
        )

    def split(
        self,
        strategy: str = "auto",
        *,
        seed: int = 0,
        val_fraction: float = 0.1,
        test_fraction: float = 0.2,
    ) -> Split:
        """:func:`medknn.data.make_split` on these rows: grouped when there are groups, the
        official split when there is one, stratified otherwise (``strategy="auto"``)."""
        return make_split(
            self.table(),
            strategy,
            seed=seed,
            val_fraction=val_fraction,
            test_fraction=test_fraction,
        )

    def save(self, path: str | os.PathLike) -> Path:
        """Write an uncompressed ``.npz`` atomically (no pickled objects inside)."""
        arrays: dict[str, np.ndarray] = {
            "features": self.features,
            "labels": self.labels,
            "ids": np.asarray(self.ids, dtype=str),
            "class_names": np.asarray(self.class_names, dtype=str),
            "settings": np.asarray(json.dumps(self.settings)),
        }
        for key in ("groups", "official_split"):
            if getattr(self, key) is not None:
                arrays[key] = getattr(self, key)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return atomic_write_bytes(path, buffer.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike) -> FeatureSet:
        """Read a file written by :meth:`save`, or a user's ``.npz`` with at least ``features``
        (N×D) and ``labels`` (N integers or N names; N×1 is accepted)."""
        path = Path(path)
        if not path.is_file():
            raise DataError(
                f"feature file {path} does not exist; create it with `medknn features` or "
                "save an .npz with 'features' (N×D) and 'labels' (N)."
            )
        try:
            with np.load(path, allow_pickle=False) as npz:
                missing = [key for key in REQUIRED_KEYS if key not in npz.files]
                if missing:
                    raise DataError(
                        f"{path} has no {missing[0]!r} array (it holds: "
                        f"{', '.join(npz.files) or 'nothing'}); a feature file needs 'features' "
                        "(N×D) and 'labels' (N)."
                    )
                arrays = {key: npz[key] for key in (*REQUIRED_KEYS, *OPTIONAL_KEYS) if key in npz}
        except (OSError, ValueError, zipfile.BadZipFile) as error:
            # allow_pickle=False refuses object arrays with a ValueError, too.
            raise DataError(
                f"{path} is not a readable .npz of plain arrays ({error}); save it with "
                "numpy.savez(path, features=..., labels=...)."
            ) from None
        labels, class_names = _class_indices(arrays, path)
        n = len(labels)
        ids = arrays["ids"].tolist() if "ids" in arrays else [str(i) for i in range(n)]
        try:
            settings = json.loads(str(arrays["settings"])) if "settings" in arrays else {}
        except json.JSONDecodeError:
            raise DataError(
                f"{path}: 'settings' is not the JSON text `medknn features` writes; remove it."
            ) from None
        return cls(
            features=arrays["features"],
            labels=labels,
            class_names=class_names,
            ids=[str(i) for i in ids],
            groups=arrays.get("groups"),
            official_split=arrays.get("official_split"),
            settings=settings,
            source=str(path),
        )


def load_feature_set(path: str | os.PathLike) -> FeatureSet:
    """A feature ``.npz``: see :meth:`FeatureSet.load`."""
    return FeatureSet.load(path)


def _class_indices(arrays: dict[str, np.ndarray], path: Path) -> tuple[np.ndarray, list[str]]:
    """Integer labels and class names from ``labels`` (indices or names) and ``class_names``."""
    labels = arrays["labels"]
    if labels.ndim == 2 and labels.shape[1] == 1:  # MedMNIST stores N×1
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise DataError(
            f"{path}: 'labels' has shape {arrays['labels'].shape}; give one label per row "
            "(class indices or class names), not one-hot rows."
        )
    if np.issubdtype(labels.dtype, np.integer):
        if "class_names" in arrays:
            return labels.astype(np.int64), [str(c) for c in arrays["class_names"].tolist()]
        if labels.min() < 0:
            raise DataError(f"{path}: label {labels.min()} is negative; use indices 0..C-1.")
        return labels.astype(np.int64), [str(c) for c in range(int(labels.max()) + 1)]
    if labels.dtype.kind in "US":
        names, indices = np.unique(labels.astype(str), return_inverse=True)
        return indices.astype(np.int64), names.tolist()
    raise DataError(
        f"{path}: 'labels' has dtype {labels.dtype}; use integer class indices or class names."
    )


@dataclass(frozen=True)
class NoImages:
    """The reader of a table of feature vectors: it counts rows and has no pixels."""

    count: int

    def __len__(self) -> int:
        return self.count

    def open(self, i: int, *, draft_size: tuple[int, int] | None = None) -> Any:
        raise DataError("a feature-vector table has no images; use FeatureSet.features.")

    def read(self, i: int) -> np.ndarray:
        raise DataError("a feature-vector table has no images; use FeatureSet.features.")

    def subset(self, indices: np.ndarray) -> NoImages:
        return NoImages(len(indices))

    def fingerprint(self) -> str:
        return f"no-images-{self.count}"
