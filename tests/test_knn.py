"""KNNClassifier: faiss search against scikit-learn's brute force, tie-breaking, evidence, I/O."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier

from medknn.errors import ConfigError, DataError
from medknn.prediction.knn import KNNClassifier, Neighbour


def random_data(seed, n_train=200, n_query=60, dim=8, num_classes=4):
    rng = np.random.default_rng(seed)
    return (
        rng.normal(size=(n_train, dim)).astype(np.float32),
        rng.integers(0, num_classes, n_train),
        rng.normal(size=(n_query, dim)).astype(np.float32),
    )


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("k", [1, 4, 7])
def test_matches_sklearn_brute_force(seed, k):
    train, labels, queries = random_data(seed)
    ours = KNNClassifier(k).fit(train, labels)
    reference = KNeighborsClassifier(k, algorithm="brute").fit(train, labels)

    distances, indices = ours.kneighbors(queries)
    ref_distances, ref_indices = reference.kneighbors(queries)
    np.testing.assert_allclose(distances, ref_distances, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(indices, ref_indices)

    votes = np.stack([np.bincount(row, minlength=4) for row in labels[ref_indices]])
    untied = (votes == votes.max(axis=1, keepdims=True)).sum(axis=1) == 1
    assert untied.sum() > len(queries) // 2
    np.testing.assert_array_equal(ours.predict(queries)[untied], reference.predict(queries)[untied])
    np.testing.assert_allclose(ours.predict_proba(queries), reference.predict_proba(queries))


def test_distance_weighted_proba_matches_sklearn_and_sums_to_one():
    train, labels, queries = random_data(7)
    proba = KNNClassifier(5, weights="distance").fit(train, labels).predict_proba(queries)
    reference = KNeighborsClassifier(5, weights="distance", algorithm="brute").fit(train, labels)
    np.testing.assert_allclose(proba, reference.predict_proba(queries), rtol=1e-4)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert (proba > 0).sum(axis=1).max() > 1  # really mixed votes, not one-hot rows


def test_tie_goes_to_the_class_with_the_smaller_summed_distance():
    # Query at 0. Class 0 at distances 1 and 2 (sum 3); class 1 at 0.5 and 3 (sum 3.5).
    train = np.array([[1.0], [2.0], [-0.5], [3.0]], dtype=np.float32)
    labels = np.array([0, 0, 1, 1])
    query = np.zeros((1, 1), dtype=np.float32)
    # k=2: one vote each; class 1 is nearer (0.5 < 1) although sklearn would pick label 0.
    assert KNNClassifier(2).fit(train, labels).predict(query).tolist() == [1]
    # k=4: two votes each; class 0 is nearer in sum (3 < 3.5) although class 1 has the nearest case.
    assert KNNClassifier(4).fit(train, labels).predict(query).tolist() == [0]


def test_explain_returns_the_nearest_training_cases():
    train = np.array([[0.0, 0.0], [3.0, 4.0], [1.0, 0.0]], dtype=np.float32)
    knn = KNNClassifier(2).fit(
        train, np.array([1, 0, 0]), ids=["img_a", "img_b", "img_c"], class_names=["nv", "mel"]
    )
    [evidence] = knn.explain(np.array([[3.0, 0.0]]))
    assert evidence == [
        Neighbour(id="img_c", label=0, class_name="nv", distance=2.0),
        Neighbour(id="img_a", label=1, class_name="mel", distance=3.0),
    ]


def test_num_classes_comes_from_class_names():
    train, labels, queries = random_data(1, num_classes=3)
    knn = KNNClassifier(3).fit(train, labels, class_names=["a", "b", "c", "unseen"])
    assert knn.predict_proba(queries).shape == (len(queries), 4)
    assert KNNClassifier(3).fit(train, labels).predict_proba(queries).shape == (len(queries), 3)


def test_save_load_round_trip(tmp_path):
    train, labels, queries = random_data(2)
    ids = [f"case{i}" for i in range(len(train))]
    knn = KNNClassifier(3, weights="distance").fit(
        train, labels, ids=ids, class_names=["a", "b", "c", "d"]
    )
    knn.save(tmp_path / "knn")

    loaded = KNNClassifier.load(tmp_path / "knn")
    assert (loaded.n_neighbors, loaded.weights) == (3, "distance")
    np.testing.assert_array_equal(loaded.embeddings_, knn.embeddings_)
    np.testing.assert_array_equal(loaded.predict_proba(queries), knn.predict_proba(queries))
    assert loaded.explain(queries[:3]) == knn.explain(queries[:3])
    assert json.loads((tmp_path / "knn" / "knn.json").read_text())["ids"] == ids


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="knn.json is missing"):
        KNNClassifier.load(tmp_path)
    train, labels, _ = random_data(0)
    KNNClassifier().fit(train, labels).save(tmp_path)
    (tmp_path / "knn.json").write_text('{"format": "something else"}')
    with pytest.raises(DataError, match="not a saved KNNClassifier"):
        KNNClassifier.load(tmp_path)


def test_invalid_arguments_raise_readable_errors():
    train, labels, queries = random_data(0, n_train=6)
    with pytest.raises(ConfigError, match=r"n_neighbors=7 exceeds the 6 training .* <= 6"):
        KNNClassifier(7).fit(train, labels)
    with pytest.raises(ConfigError, match="n_neighbors=0"):
        KNNClassifier(0).fit(train, labels)
    with pytest.raises(ConfigError, match="weights='distanse'.*distance"):
        KNNClassifier(weights="distanse").fit(train, labels)
    with pytest.raises(ConfigError, match="not fitted"):
        KNNClassifier().predict(queries)

    knn = KNNClassifier(3).fit(train, labels)
    with pytest.raises(ConfigError, match="dimension 5 .* dimension 8"):
        knn.predict(queries[:, :5])
    bad = queries.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ConfigError, match="NaN or inf in 1 row"):
        knn.predict(bad)
    bad_train = train.copy()
    bad_train[0, 0] = np.inf
    with pytest.raises(ConfigError, match="training embeddings contain NaN or inf"):
        KNNClassifier(3).fit(bad_train, labels)
    with pytest.raises(DataError, match="labels must be 6 integers"):
        KNNClassifier(3).fit(train, labels[:5])
    with pytest.raises(DataError, match="label 3 has no class name"):
        KNNClassifier(3).fit(train, np.array([0, 1, 2, 3, 0, 1]), class_names=["a", "b", "c"])
    with pytest.raises(DataError, match="got 2 ids for 6"):
        KNNClassifier(3).fit(train, labels, ids=["x", "y"])


def test_errors_follow_scikit_learns_conventions():
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    train, labels, queries = random_data(0, n_train=6)
    for method in ("predict", "predict_proba", "kneighbors", "explain"):
        with pytest.raises(NotFittedError, match="not fitted"):
            getattr(KNNClassifier(), method)(queries)
    with pytest.raises(NotFittedError):
        check_is_fitted(KNNClassifier())
    check_is_fitted(KNNClassifier(3).fit(train, labels))
    bad_parameters = [
        {"n_neighbors": 0},
        {"n_neighbors": 7},
        {"weights": "distanse"},
        {"index": "annoy"},
        {"index": "hnsw", "index_options": {"m": 1}},
        {"index": "exact", "index_options": {"nprobe": 3}},
    ]
    for parameters in bad_parameters:
        with pytest.raises(ValueError):
            KNNClassifier(**parameters).fit(train, labels)
