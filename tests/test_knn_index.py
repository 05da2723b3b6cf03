"""Approximate kNN search (faiss IVF and HNSW): recall against exact search, memory-mapped
save/load, option checks, small-set fallback, old saves, and the ``knn_index`` run option."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from medknn.cli import app
from medknn.errors import ConfigError
from medknn.io import atomic_save_tensors, read_json
from medknn.prediction import KNNClassifier, TrainedRun
from medknn.runs import RunDir, TrainConfig

APPROXIMATE = ["ivf", "hnsw"]


def clustered(seed: int, n_train: int = 4000, n_query: int = 300, clusters: int = 40, dim=32):
    """L2-normalised points around random unit centres (noise as large as the centre), the
    cluster of each, and queries from the same mixture."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        cluster = rng.integers(0, clusters, n)
        points = centres[cluster] + rng.normal(size=(n, dim)) / np.sqrt(dim)
        return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32), cluster

    (train, train_cluster), (queries, _) = draw(n_train), draw(n_query)
    return train, train_cluster, queries


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of the true neighbours of each query among those found."""
    return float((found[:, :, None] == truth[:, None, :]).any(axis=2).mean())


@pytest.mark.parametrize("index", APPROXIMATE)
def test_default_options_find_the_exact_neighbours(index):
    train, labels, queries = clustered(0)
    exact = KNNClassifier(5).fit(train, labels)
    approximate = KNNClassifier(5, index=index).fit(train, labels)
    assert approximate.index_type_ == index

    distances, indices = approximate.kneighbors(queries)
    exact_distances, exact_indices = exact.kneighbors(queries)
    assert recall_at_k(indices, exact_indices) >= 0.9
    # Distances stay non-squared Euclidean, those of the neighbours found.
    true_distances = np.linalg.norm(queries[:, None] - train[indices], axis=2)
    np.testing.assert_allclose(distances, true_distances, rtol=1e-4, atol=1e-5)
    same = indices == exact_indices
    np.testing.assert_allclose(distances[same], exact_distances[same], rtol=1e-5)


def test_ivf_with_a_single_probe_misses_neighbours_the_defaults_find():
    # Guards the recall test above: an index that probes too little does fall short.
    train, labels, queries = clustered(0)
    truth = KNNClassifier(5).fit(train, labels).kneighbors(queries)[1]
    found = KNNClassifier(5, index="ivf", index_options={"nprobe": 1}).fit(train, labels)
    assert recall_at_k(found.kneighbors(queries)[1], truth) < 0.85


@pytest.mark.parametrize("index", APPROXIMATE)
def test_same_predictions_as_exact_on_separated_classes(index):
    rng = np.random.default_rng(1)
    centres = 10 * rng.normal(size=(6, 16))
    labels = rng.integers(0, 6, 3000)
    train = (centres[labels] + rng.normal(size=(3000, 16))).astype(np.float32)
    query_labels = rng.integers(0, 6, 200)
    queries = (centres[query_labels] + rng.normal(size=(200, 16))).astype(np.float32)

    exact = KNNClassifier(5).fit(train, labels)
    approximate = KNNClassifier(5, index=index).fit(train, labels)
    np.testing.assert_array_equal(approximate.predict(queries), exact.predict(queries))
    np.testing.assert_array_equal(approximate.predict(queries), query_labels)
    np.testing.assert_allclose(approximate.predict_proba(queries), exact.predict_proba(queries))


@pytest.mark.parametrize(
    ("index", "options"),
    [("ivf", {"nlist": 20, "nprobe": 3}), ("hnsw", {"m": 8, "ef_search": 16})],
)
def test_save_then_memory_mapped_load_gives_the_same_search(tmp_path, index, options):
    train, labels, queries = clustered(2, n_train=2000)
    ids = [f"case{i}" for i in range(len(train))]
    knn = KNNClassifier(4, weights="distance", index=index, index_options=options)
    knn.fit(train, labels, ids=ids)
    knn.save(tmp_path / "knn")
    assert (tmp_path / "knn" / "index.faiss").is_file()
    # The embeddings are saved too: a damaged index.faiss can be rebuilt without reading it.
    assert (tmp_path / "knn" / "embeddings.safetensors").is_file()

    loaded = KNNClassifier.load(tmp_path / "knn")
    assert (loaded.index, loaded.index_type_, loaded.weights) == (index, index, "distance")
    assert loaded.index_options_ == knn.index_options_
    for got, want in zip(loaded.kneighbors(queries), knn.kneighbors(queries), strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(loaded.predict_proba(queries), knn.predict_proba(queries))
    assert loaded.explain(queries[:2]) == knn.explain(queries[:2])
    np.testing.assert_array_equal(loaded.embeddings_, train)
    if sys.platform == "linux":  # the file is mapped, not read into memory
        mapped = Path("/proc/self/maps").read_text()
        assert str((tmp_path / "knn" / "index.faiss").resolve()) in mapped

    (tmp_path / "knn" / "index.faiss").write_bytes(b"damaged")  # never read by a rebuild
    rebuilt = KNNClassifier.load(tmp_path / "knn", rebuild_index=True)
    assert (rebuilt.index_type_, rebuilt.index_options_) == (index, knn.index_options_)
    np.testing.assert_array_equal(rebuilt.embeddings_, train)
    assert (rebuilt.predict(queries) == knn.predict(queries)).mean() > 0.95


def test_ivf_resolves_nlist_from_the_training_set_size():
    train, labels, _ = clustered(3, n_train=2000)
    knn = KNNClassifier(5, index="ivf").fit(train, labels)
    # 2·√2000 = 89 lists would hold 22 points each; k-means wants 39: 2000 // 39 = 51.
    assert knn.index_options_ == {"nlist": 51, "nprobe": 16}
    big = KNNClassifier(5, index="ivf").fit(*clustered(3, n_train=40_000, clusters=100)[:2])
    assert big.index_options_["nlist"] == 400  # 2·√40000


def test_too_few_training_cases_for_ivf_fall_back_to_exact_search():
    train, labels, queries = clustered(4, n_train=30)
    with pytest.warns(UserWarning, match="at least 39 training embeddings, got 30: using exact"):
        knn = KNNClassifier(3, index="ivf").fit(train, labels)
    assert (knn.index_type_, knn.index_options_) == ("exact", {})
    exact = KNNClassifier(3).fit(train, labels)
    for got, want in zip(knn.kneighbors(queries), exact.kneighbors(queries), strict=True):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ConfigError, match=r"nlist=50 needs at least 1950 .* got 1000; pass nlist"):
        KNNClassifier(3, index="ivf", index_options={"nlist": 50}).fit(*clustered(4, 1000)[:2])


def test_queries_an_index_cannot_fill_are_searched_exactly():
    # Two IVF lists of 98 and 2 cases; probing only the small one returns 2 of the 5 neighbours,
    # padded with -1 by faiss.
    rng = np.random.default_rng(5)
    train = np.concatenate([rng.normal(size=(98, 4)), 50 + rng.normal(size=(2, 4))])
    train = train.astype(np.float32)
    labels = np.r_[np.zeros(98, int), np.ones(2, int)]
    queries = np.full((3, 4), 50.0, dtype=np.float32)
    knn = KNNClassifier(5, index="ivf", index_options={"nlist": 2, "nprobe": 1})
    knn.fit(train, labels)
    assert (knn.index_.search(queries, 5)[1] < 0).any()
    exact = KNNClassifier(5).fit(train, labels)
    for got, want in zip(knn.kneighbors(queries), exact.kneighbors(queries), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5)


@pytest.mark.parametrize(
    ("index", "options", "message"),
    [
        ("ivx", None, r"kNN index 'ivx' is unknown \(choices: exact, ivf, hnsw\)"),
        ("ivf", {"nprob": 8}, r"'ivf' kNN index has no option 'nprob' .*nlist, nprobe.*nprobe\?"),
        ("hnsw", {"ef_search": 0}, r"ef_search=0 is invalid .* >= 1; the default is 128"),
        ("hnsw", {"m": 1}, r"m=1 is invalid .* >= 2"),
        ("hnsw", {"m": True}, r"m=True is invalid"),
        ("ivf", {"nprobe": 2.5}, r"nprobe=2.5 is invalid"),
        ("exact", {"nprobe": 8}, r"'exact' kNN index takes no options"),
    ],
)
def test_bad_index_names_and_options_are_config_errors(index, options, message):
    train, labels, _ = clustered(6, n_train=200)
    with pytest.raises(ConfigError, match=message):
        KNNClassifier(5, index=index, index_options=options).fit(train, labels)
    with pytest.raises(ConfigError, match=message):
        TrainConfig(knn_index=index, knn_index_options=options or {})
    with pytest.raises(ConfigError, match="must be a mapping"):
        KNNClassifier(5, index="ivf", index_options=[("nprobe", 8)]).fit(train, labels)


def test_a_save_from_before_index_types_still_loads(tmp_path):
    train, labels, queries = clustered(7, n_train=300)
    atomic_save_tensors(
        {"embeddings": torch.from_numpy(train)}, tmp_path / "embeddings.safetensors"
    )
    meta = {
        "format": "medknn.KNNClassifier/1",
        "n_neighbors": 3,
        "weights": "uniform",
        "labels": labels.tolist(),
        "ids": [f"img{i}" for i in range(len(train))],
        "class_names": [f"c{i}" for i in range(int(labels.max()) + 1)],
    }
    (tmp_path / "knn.json").write_text(json.dumps(meta))

    loaded = KNNClassifier.load(tmp_path)
    assert (loaded.index, loaded.index_type_) == ("exact", "exact")
    expected = KNNClassifier(3).fit(train, labels)
    np.testing.assert_array_equal(loaded.kneighbors(queries)[1], expected.kneighbors(queries)[1])
    assert loaded.explain(queries[:1])[0][0].id.startswith("img")


def test_train_with_set_knn_index_saves_a_memory_mapped_hnsw_index(tiny_npz, tmp_path):
    out = tmp_path / "run"
    flags = ["--data", tiny_npz, "--backbone", "mobilenetv3_small_050", "--no-pretrained"]
    sets = [
        "knn_index=hnsw",
        "knn_index_options={m: 8, ef_search: 32}",
        "epochs=1",
        "batch_size=12",
        "classes_per_batch=3",
        "max_batches_per_epoch=2",
        "embedding_dim=16",
        "k_predict=3",
    ]
    args = ["train", "--out", out, *flags, *[a for s in sets for a in ("--set", s)], "--quiet"]
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output

    config = TrainConfig.from_yaml(RunDir(out).config)
    assert (config.knn_index, config.knn_index_options) == ("hnsw", {"m": 8, "ef_search": 32})
    meta = read_json(RunDir(out).knn / "knn.json")
    assert (meta["index"], meta["index_options"]["m"]) == ("hnsw", 8)
    run = TrainedRun.load(out)
    assert run.knn.index_type_ == "hnsw" and run.knn.index_.hnsw.efSearch == 32
