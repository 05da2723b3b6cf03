"""How good an embedding is, as in the constellation-loss paper: kNN accuracy and cluster shape."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import balanced_accuracy_score, davies_bouldin_score, silhouette_score
from sklearn.neighbors import KNeighborsClassifier

from medknn.errors import ConfigError, DataError


def embedding_quality(
    test_embeddings: np.ndarray,
    test_labels: np.ndarray,
    *,
    train_embeddings: np.ndarray,
    train_labels: np.ndarray,
    k: int = 5,
) -> dict[str, float | None]:
    """``knn_bac``, ``silhouette`` and ``davies_bouldin`` of the test embeddings.

    ``knn_bac``: balanced accuracy (mean recall) of a Euclidean k-NN classifier fitted on the
    training embeddings and predicting the test ones (the paper's Fig. 2 protocol, scikit-learn).
    ``silhouette`` (higher is better, in [-1, 1]) and ``davies_bouldin`` (lower is better) score
    the test embeddings grouped by their true class; both are None when the test labels hold
    fewer than two classes, or (silhouette) as many classes as cases, where they are undefined.
    """
    test_embeddings, test_labels = _checked("test", test_embeddings, test_labels)
    train_embeddings, train_labels = _checked("train", train_embeddings, train_labels)
    if train_embeddings.shape[1] != test_embeddings.shape[1]:
        raise DataError(
            f"train embeddings have {train_embeddings.shape[1]} dimensions but test embeddings "
            f"{test_embeddings.shape[1]}; embed both parts with the same network."
        )
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"k={k!r} must be a whole number >= 1, e.g. k=5.")
    knn = KNeighborsClassifier(n_neighbors=min(k, len(train_labels)))
    predicted = knn.fit(train_embeddings, train_labels).predict(test_embeddings)
    num_classes = len(np.unique(test_labels))
    clustered = num_classes >= 2
    return {
        "knn_bac": float(balanced_accuracy_score(test_labels, predicted)),
        "silhouette": (
            float(silhouette_score(test_embeddings, test_labels))
            if clustered and num_classes < len(test_labels)
            else None
        ),
        "davies_bouldin": (
            float(davies_bouldin_score(test_embeddings, test_labels)) if clustered else None
        ),
    }


def _checked(
    part: str, embeddings: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    embeddings, labels = np.asarray(embeddings), np.asarray(labels)
    if embeddings.ndim != 2 or labels.shape != (len(embeddings),) or len(labels) == 0:
        raise DataError(
            f"{part} embeddings {embeddings.shape} and labels {labels.shape} must be a non-empty "
            "N×D array and N class indices."
        )
    if not np.isfinite(embeddings).all():
        raise DataError(
            f"{part} embeddings hold NaN or infinite values; the network diverged (lower the lr)."
        )
    return embeddings, labels


def leave_one_out_knn_accuracy(embeddings: np.ndarray, labels: np.ndarray, k: int = 5) -> float:
    """Accuracy of k-NN on the training embeddings themselves, each case's own entry left out of
    its vote: the "training accuracy" of a kNN classifier (the Deep kNN paper's Fig. 2). A tie
    goes to the lower class index."""
    embeddings, labels = _checked("train", embeddings, labels)
    if not 1 <= k < len(labels):
        raise ConfigError(f"k={k} must lie in 1..{len(labels) - 1} for {len(labels)} cases.")
    model = KNeighborsClassifier(n_neighbors=k).fit(embeddings, labels)
    _, neighbours = model.kneighbors()  # without X, scikit-learn leaves each point itself out
    classes, codes = np.unique(labels, return_inverse=True)
    votes = np.zeros((len(labels), len(classes)), dtype=np.int64)
    np.add.at(votes, (np.arange(len(labels))[:, None], codes[neighbours]), 1)
    return float(np.mean(classes[votes.argmax(axis=1)] == labels))
