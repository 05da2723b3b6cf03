"""Embedding quality (kNN balanced accuracy, silhouette, Davies-Bouldin) and the embedding map."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, davies_bouldin_score, silhouette_score
from sklearn.neighbors import KNeighborsClassifier

from medknn.errors import ConfigError, DataError
from medknn.evaluation import embedding_quality
from medknn.reports import plot_embedding_map

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _blobs(n: int, spread: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three Gaussian classes in 8-D with unequal sizes."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(3, size=n, p=[0.6, 0.3, 0.1])
    centres = 3.0 * np.eye(3, 8)
    return centres[labels] + spread * rng.standard_normal((n, 8)), labels


def test_metrics_equal_scikit_learns():
    train, train_labels = _blobs(80, 1.5, seed=0)
    test, test_labels = _blobs(60, 1.5, seed=1)
    quality = embedding_quality(
        test, test_labels, train_embeddings=train, train_labels=train_labels, k=5
    )
    knn = KNeighborsClassifier(5).fit(train, train_labels)
    expected_bac = balanced_accuracy_score(test_labels, knn.predict(test))
    assert 0.5 < expected_bac < 1  # overlapping classes: the test is not trivially 1
    assert quality["knn_bac"] == pytest.approx(expected_bac)
    assert quality["silhouette"] == pytest.approx(silhouette_score(test, test_labels))
    assert quality["davies_bouldin"] == pytest.approx(davies_bouldin_score(test, test_labels))


def test_tighter_clusters_score_better():
    train, train_labels = _blobs(80, 0.3, seed=0)
    loose = embedding_quality(
        *_blobs(60, 1.5, seed=1), train_embeddings=train, train_labels=train_labels
    )
    tight = embedding_quality(
        *_blobs(60, 0.3, seed=1), train_embeddings=train, train_labels=train_labels
    )
    assert tight["knn_bac"] == 1.0
    assert tight["silhouette"] > loose["silhouette"]
    assert tight["davies_bouldin"] < loose["davies_bouldin"]


@pytest.mark.filterwarnings("ignore:A single label was found")
def test_cluster_scores_are_none_for_a_single_test_class():
    train, train_labels = _blobs(30, 1.0, seed=0)
    quality = embedding_quality(
        train[train_labels == 0][:5],
        np.zeros(5, dtype=int),
        train_embeddings=train,
        train_labels=train_labels,
    )
    assert quality["silhouette"] is None and quality["davies_bouldin"] is None
    assert 0 <= quality["knn_bac"] <= 1


def test_bad_inputs_name_the_problem():
    train, labels = _blobs(20, 1.0, seed=0)
    with pytest.raises(DataError, match="8 dimensions but test embeddings 4"):
        embedding_quality(train[:, :4], labels, train_embeddings=train, train_labels=labels)
    broken = train.copy()
    broken[0, 0] = np.nan
    with pytest.raises(DataError, match="test embeddings hold NaN"):
        embedding_quality(broken, labels, train_embeddings=train, train_labels=labels)
    with pytest.raises(DataError, match="train embeddings"):
        embedding_quality(train, labels, train_embeddings=train, train_labels=labels[:5])
    with pytest.raises(ConfigError, match="k=0"):
        embedding_quality(train, labels, train_embeddings=train, train_labels=labels, k=0)


@pytest.mark.parametrize("with_thumbnails", [False, True])
def test_embedding_map_png_is_written(tmp_path: Path, with_thumbnails: bool):
    embeddings, labels = _blobs(30, 0.5, seed=0)
    rng = np.random.default_rng(0)
    thumbnails = rng.integers(0, 256, (30, 12, 12), dtype=np.uint8) if with_thumbnails else None
    path = plot_embedding_map(
        embeddings,
        labels,
        ["a", "b", "c"],
        tmp_path / "maps" / "test_tsne.png",
        thumbnails=thumbnails,
        max_thumbnails=10,
    )
    assert path == tmp_path / "maps" / "test_tsne.png"
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    assert [p.name for p in path.parent.iterdir()] == ["test_tsne.png"]  # no temporary left


def test_embedding_map_rejects_bad_input(tmp_path: Path):
    embeddings, labels = _blobs(10, 0.5, seed=0)
    with pytest.raises(ConfigError, match="'tnse'.*tsne"):
        plot_embedding_map(embeddings, labels, ["a", "b", "c"], tmp_path / "m.png", method="tnse")
    with pytest.raises(DataError, match="one name per class"):
        plot_embedding_map(embeddings, labels, ["a", "b"], tmp_path / "m.png")
    with pytest.raises(DataError, match="thumbnails"):
        plot_embedding_map(
            embeddings, labels, ["a", "b", "c"], tmp_path / "m.png", thumbnails=np.zeros((3, 4, 4))
        )
    if importlib.util.find_spec("umap") is None:
        with pytest.raises(ConfigError, match="umap-learn"):
            plot_embedding_map(
                embeddings, labels, ["a", "b", "c"], tmp_path / "m.png", method="umap"
            )


def test_leave_one_out_accuracy_leaves_each_case_out_of_its_own_vote():
    from medknn.evaluation import leave_one_out_knn_accuracy

    # A class-0 pair, a lone class-1 case next to it and a class-1 pair far away: left out of
    # its own vote, the lone case's nearest neighbour is class 0 (wrong); counted, it would win.
    embeddings = np.array([[0.0], [0.1], [0.3], [5.0], [5.1]])
    labels = np.array([0, 0, 1, 1, 1])
    assert leave_one_out_knn_accuracy(embeddings, labels, k=1) == pytest.approx(4 / 5)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    y = rng.integers(0, 3, 60)
    reference = KNeighborsClassifier(n_neighbors=4)
    loo_correct = [
        reference.fit(np.delete(x, i, 0), np.delete(y, i)).predict(x[i : i + 1])[0] == y[i]
        for i in range(len(y))
    ]
    # scikit-learn's own tie rule (first class in sorted order) is also ours.
    assert leave_one_out_knn_accuracy(x, y, k=4) == pytest.approx(np.mean(loo_correct))
    with pytest.raises(ConfigError, match="k=5"):
        leave_one_out_knn_accuracy(x[:5], y[:5], k=5)
