"""kNN classification with faiss (exact, IVF or HNSW search), returning the nearest training
cases as evidence."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError

from medknn.errors import ConfigError, DataError, did_you_mean
from medknn.io import atomic_save_tensors, atomic_write_json, load_tensors, read_json
from medknn.prediction.knn_index import (
    build_index,
    read_index,
    set_search_options,
    stored_vectors,
    write_index,
)
from medknn.runs.knn_index_options import KNNSettings, check_knn_index

WEIGHTS = ("uniform", "distance")
_EPS = 1e-12  # keeps 1/d finite for an exact duplicate of a training case
_FORMAT = "medknn.KNNClassifier/2"
_READABLE = ("medknn.KNNClassifier/1", _FORMAT)  # /1: exact search only, written before index types
INDEX_FILE = "index.faiss"
EMBEDDINGS_FILE = "embeddings.safetensors"
_RESAVE = "copy the run again, or retrain it"


class InvalidKNNParameter(ConfigError, ValueError):
    """A bad ``KNNClassifier`` parameter: a medknn ConfigError and, as scikit-learn estimators
    raise, a ValueError."""


class KNNNotFittedError(ConfigError, NotFittedError):
    """A ``KNNClassifier`` used before ``fit``: scikit-learn's ``NotFittedError`` (a ValueError
    and AttributeError) and a medknn ConfigError."""


@dataclass(frozen=True)
class Neighbour:
    """One training case offered as evidence for a prediction."""

    id: str
    label: int
    class_name: str
    distance: float


class KNNClassifier(ClassifierMixin, BaseEstimator):
    """k-nearest-neighbour classifier on embeddings (non-squared Euclidean distances).

    ``predict`` is the majority vote of the ``n_neighbors`` nearest training cases (vote weights
    ``1 / distance`` if ``weights="distance"``); a tie goes to the tied class whose neighbours have
    the smaller summed distance. ``explain`` returns those neighbours, the case-based evidence.

    ``index`` chooses the faiss search: ``"exact"`` (default), or the approximate ``"ivf"``
    (inverted lists: ``nlist``, ``nprobe``) and ``"hnsw"`` (a graph: ``m``, ``ef_construction``,
    ``ef_search``), tuned by ``index_options``; defaults in ``KNN_INDEXES``
    (``medknn.runs.knn_index_options``), which to pick in docs/scaling.md.

    On a busy CPU start Python with ``OMP_WAIT_POLICY=PASSIVE``: faiss's OpenMP threads otherwise
    busy-wait and a search gets several times slower (docs/benchmarks/bench_knn_search.md).
    """

    def __init__(
        self,
        n_neighbors: int = 5,
        *,
        weights: str = "uniform",
        index: str = "exact",
        index_options: dict[str, int | None] | None = None,
    ) -> None:
        self.n_neighbors = n_neighbors
        self.weights = weights
        self.index = index
        self.index_options = index_options

    @classmethod
    def from_settings(cls, settings: KNNSettings, num_train: int) -> KNNClassifier:
        """An unfitted classifier with a run's kNN ``settings`` (K_p capped at ``num_train``)."""
        return cls(
            settings.neighbours_for(num_train),
            weights=settings.weights,
            index=settings.index,
            index_options=dict(settings.index_options),
        )

    def fit(
        self,
        embeddings: np.ndarray,
        labels: np.ndarray,
        *,
        ids: list[str] | None = None,
        class_names: list[str] | None = None,
    ) -> KNNClassifier:
        embeddings = _as_matrix(embeddings, "training embeddings")
        labels = np.asarray(labels)
        n = len(embeddings)
        if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
            raise DataError(
                f"labels must be {n} integers (one per training embedding), got shape "
                f"{labels.shape} of {labels.dtype}; pass class indices, not names or one-hot rows."
            )
        if labels.min() < 0:
            raise DataError(f"label {labels.min()} is negative; labels are class indices 0..C-1.")
        if ids is not None and len(ids) != n:
            raise DataError(
                f"got {len(ids)} ids for {n} training embeddings; pass one id per case."
            )
        if class_names is not None and labels.max() >= len(class_names):
            raise DataError(
                f"label {labels.max()} has no class name: only {len(class_names)} class_names "
                f"given ({', '.join(class_names)}); pass one name per class index."
            )
        options = self._check_params(n)

        self.index_, self.index_type_, self.index_options_ = build_index(
            np.ascontiguousarray(embeddings, dtype=np.float32), self.index, options
        )
        self._remember(labels, ids, class_names)
        return self

    @property
    def embeddings_(self) -> np.ndarray:
        """The training embeddings, (N, D) float32, read back from the index (a copy)."""
        return stored_vectors(self.index_)

    def kneighbors(
        self, queries: np.ndarray, n_neighbors: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Distances (non-squared Euclidean, ascending) and training indices, both (Q, k), for
        k = ``n_neighbors`` (default: the classifier's), at most the number of training cases."""
        queries = self._check_queries(queries)
        k = min(n_neighbors or self.n_neighbors, len(self.labels_))
        squared, indices = self.index_.search(queries, k)
        short = (indices < 0).any(axis=1)
        if short.any():
            # An approximate index returns -1 when the cells or graph nodes it visited held
            # fewer than k cases; those queries are searched exactly.
            squared[short], indices[short] = faiss.knn(queries[short], self.embeddings_, k)
        # faiss returns squared L2 from a dot-product expansion: it can dip just below 0.
        return np.sqrt(np.maximum(squared, 0.0)), indices

    def predict_proba(self, queries: np.ndarray) -> np.ndarray:
        """Vote fractions per class, (Q, C); rows sum to 1."""
        votes, _ = self._votes(*self.kneighbors(queries))
        return votes / votes.sum(axis=1, keepdims=True)

    def predict(self, queries: np.ndarray) -> np.ndarray:
        """Majority-vote class index per query; ties go to the smaller summed distance."""
        votes, summed_distance = self._votes(*self.kneighbors(queries))
        tied = votes == votes.max(axis=1, keepdims=True)
        return np.where(tied, summed_distance, np.inf).argmin(axis=1)

    def explain(self, queries: np.ndarray, n_neighbors: int | None = None) -> list[list[Neighbour]]:
        """The nearest training cases of each query, nearest first (``n_neighbors`` of them,
        default: the classifier's)."""
        distances, indices = self.kneighbors(queries, n_neighbors)
        return [
            [
                Neighbour(
                    id=self.ids_[i],
                    label=int(self.labels_[i]),
                    class_name=self.class_names_[self.labels_[i]],
                    distance=float(d),
                )
                for d, i in zip(row_d, row_i, strict=True)
            ]
            for row_d, row_i in zip(distances, indices, strict=True)
        ]

    def save(self, directory: str | os.PathLike) -> Path:
        """Write the index and then ``knn.json`` (labels, ids, class names, parameters). The
        training embeddings are always saved as ``embeddings.safetensors`` (the whole index of
        exact search); an approximate index is the faiss file ``index.faiss`` besides, which
        ``load(..., rebuild_index=True)`` can rebuild from the embeddings."""
        self._check_fitted()
        directory = Path(directory)
        atomic_save_tensors(
            {"embeddings": torch.from_numpy(self.embeddings_)},
            directory / EMBEDDINGS_FILE,
        )
        if self.index_type_ != "exact":
            write_index(self.index_, directory / INDEX_FILE)
        atomic_write_json(
            directory / "knn.json",
            {
                "format": _FORMAT,
                "n_neighbors": self.n_neighbors,
                "weights": self.weights,
                "index": self.index_type_,
                "index_options": self.index_options_,
                "labels": self.labels_.tolist(),
                "ids": self.ids_,
                "class_names": self.class_names_,
            },
        )
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike, *, rebuild_index: bool = False) -> KNNClassifier:
        """Rebuild a classifier written by ``save`` (no pickle is read). An approximate index is
        memory-mapped: searches read its pages from disk as they need them; with
        ``rebuild_index=True`` it is built again from ``embeddings.safetensors`` instead, and
        ``index.faiss`` is not read at all (a damaged one never reaches faiss's native reader).
        A damaged ``knn.json`` or embeddings file is a DataError naming it."""
        directory = Path(directory)
        meta_path = _existing(directory / "knn.json")
        try:
            meta = read_json(meta_path)
            if not isinstance(meta, dict) or meta.get("format") not in _READABLE:
                raise DataError(f"{meta_path} is not a saved KNNClassifier (format {_FORMAT!r}).")
            kind, options = meta.get("index", "exact"), meta.get("index_options") or None
            knn = cls(
                meta["n_neighbors"], weights=meta["weights"], index=kind, index_options=options
            )
            labels = np.asarray(meta["labels"], dtype=np.int64)
            ids, class_names = list(meta["ids"]), list(meta["class_names"])
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as error:
            raise DataError(f"{meta_path} is damaged ({_reason(error)}); {_RESAVE}") from None
        if labels.ndim != 1 or len(labels) == 0:
            raise DataError(f"{meta_path} holds no labels; {_RESAVE}")
        if kind == "exact" or rebuild_index:
            embeddings_path = _existing(directory / EMBEDDINGS_FILE)
            try:
                embeddings = load_tensors(embeddings_path)["embeddings"].float().numpy()
            except Exception as error:  # safetensors reports damage as several error types
                raise DataError(
                    f"{embeddings_path} is damaged ({_reason(error)}); {_RESAVE}"
                ) from None
            if len(embeddings) != len(labels):
                raise DataError(
                    f"{embeddings_path} holds {len(embeddings)} embeddings but {meta_path} has "
                    f"{len(labels)} labels; the directory mixes two saves, save it again."
                )
            return knn.fit(embeddings, labels, ids=ids, class_names=class_names)
        index_path = _existing(directory / INDEX_FILE)
        try:
            index = read_index(index_path)
        except RuntimeError as error:  # faiss's own format checks
            raise DataError(f"{index_path} is damaged ({_reason(error)}); {_RESAVE}") from None
        if index.ntotal != len(labels):
            raise DataError(
                f"{index_path} holds {index.ntotal} embeddings but {meta_path} has "
                f"{len(labels)} labels; the directory mixes two saves, save the classifier again."
            )
        knn.index_options_ = knn._check_params(index.ntotal)
        knn.index_, knn.index_type_ = index, kind
        set_search_options(index, kind, knn.index_options_)
        knn._remember(labels, ids, class_names)
        return knn

    def _remember(
        self, labels: np.ndarray, ids: list[str] | None, class_names: list[str] | None
    ) -> None:
        """Set the fitted attributes that describe the training cases (``index_`` is set)."""
        self.labels_ = labels.astype(np.int64)
        self.ids_ = [str(i) for i in range(len(labels))] if ids is None else [str(i) for i in ids]
        num_classes = len(class_names) if class_names is not None else int(labels.max()) + 1
        self.class_names_ = (
            [str(c) for c in range(num_classes)] if class_names is None else list(class_names)
        )
        self.classes_ = np.arange(num_classes)
        self.n_features_in_ = self.index_.d

    def _check_params(self, num_train: int) -> dict[str, int | None]:
        """Check the parameters; return the index options completed with their defaults."""
        k = self.n_neighbors
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise InvalidKNNParameter(
                f"n_neighbors={k!r} is invalid; pass an integer >= 1 (e.g. 5)."
            )
        if k > num_train:
            raise InvalidKNNParameter(
                f"n_neighbors={k} exceeds the {num_train} training embeddings; "
                f"pass n_neighbors <= {num_train} or fit on more training cases."
            )
        if self.weights not in WEIGHTS:
            raise InvalidKNNParameter(
                f"weights={self.weights!r} is unknown. {did_you_mean(str(self.weights), WEIGHTS)}"
            )
        try:
            return check_knn_index(self.index, self.index_options)
        except ConfigError as error:
            raise InvalidKNNParameter(str(error)) from None

    def _check_fitted(self) -> None:
        if not hasattr(self, "index_"):
            raise KNNNotFittedError(
                "this KNNClassifier is not fitted; call fit(embeddings, labels) first."
            )

    def _check_queries(self, queries: np.ndarray) -> np.ndarray:
        self._check_fitted()
        queries = _as_matrix(queries, "query embeddings")
        if queries.shape[1] != self.n_features_in_:
            raise ConfigError(
                f"query embeddings have dimension {queries.shape[1]} but the classifier was fitted "
                f"on dimension {self.n_features_in_}; embed queries with the same model."
            )
        return np.ascontiguousarray(queries, dtype=np.float32)

    def _votes(self, distances: np.ndarray, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-class vote weights and per-class summed neighbour distances, both (Q, C)."""
        weight = np.ones_like(distances, dtype=np.float64)
        if self.weights == "distance":
            weight = 1.0 / (distances.astype(np.float64) + _EPS)
        rows = np.broadcast_to(np.arange(len(indices))[:, None], indices.shape)
        cols = self.labels_[indices]
        shape = (len(indices), len(self.classes_))
        votes, summed_distance = np.zeros(shape), np.zeros(shape)
        np.add.at(votes, (rows, cols), weight)
        np.add.at(summed_distance, (rows, cols), distances)
        return votes, summed_distance


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise DataError(f"{path} is missing; point to a directory written by save().")
    return path


def _reason(error: Exception) -> str:
    """The first line of an error, short enough for a one-line message."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:200]}" if text else type(error).__name__


def _as_matrix(values: np.ndarray, what: str) -> np.ndarray:
    values = np.asarray(values)
    if values.ndim != 2 or values.shape[0] == 0 or not np.issubdtype(values.dtype, np.number):
        raise DataError(
            f"{what} must be a non-empty numeric (N, D) array, got shape {values.shape} "
            f"of {values.dtype}."
        )
    if not np.isfinite(values).all():
        bad = int((~np.isfinite(values).all(axis=1)).sum())
        raise ConfigError(
            f"{what} contain NaN or inf in {bad} row(s); check the model that produced them "
            "(a diverged training run gives non-finite embeddings)."
        )
    return values
