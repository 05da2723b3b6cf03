"""Images and feature vectors go through one pipeline: for every method that declares
feature-vector support, the vector run builds the same head, classifier, batch sampler (with
resampling), objective and kNN settings as the image run; the other methods are refused by name
with their reason; a benchmark starts an init_from method from the method it declares."""

from __future__ import annotations

import dataclasses
import io
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from rich.console import Console
from torch import nn

import medknn.benchmark
from medknn.benchmark import run_benchmark
from medknn.data import Split
from medknn.errors import ConfigError, DataError
from medknn.evaluation import fit_knn_on_training_set
from medknn.features import FeatureParts, FeatureSet, check_feature_method, run_feature_method
from medknn.io import read_json
from medknn.methods import get_method, list_methods
from medknn.models import EmbeddingNetwork
from medknn.prediction import KNNClassifier
from medknn.run_training import RunJob, TrainingSetup, build_training, train
from medknn.runs import RunDir, TrainConfig
from medknn.runs.batches import OversampledBatchSampler
from medknn.runs.build import build_network
from medknn.runs.prepare import PreparedData, prepare_data
from medknn.runs.training_data import vector_config

ON_VECTORS = [spec.name for spec in list_methods() if spec.vector_problem is None]
NOT_ON_VECTORS = [spec.name for spec in list_methods() if spec.vector_problem is not None]


@pytest.fixture(scope="module")
def images(tiny_options: dict[str, Any]) -> PreparedData:
    return prepare_data(TrainConfig(**tiny_options), None, progress=False)


@pytest.fixture(scope="module")
def vectors(images: PreparedData) -> FeatureParts:
    """Feature vectors of the same cases, labels and split as ``images``."""
    table = images.table
    rng = np.random.default_rng(0)
    feature_set = FeatureSet(
        features=rng.normal(size=(len(table), 12)) + table.labels[:, None],
        labels=table.labels,
        class_names=list(table.class_names),
        ids=list(table.ids),
    )
    return FeatureParts.from_split(feature_set, images.split)


def build_mlp(spec: Any, vectors: FeatureParts, config: TrainConfig) -> EmbeddingNetwork:
    """The network a vector run of ``config`` builds (``run_training._train_run``)."""
    return build_network(
        vector_config(config), spec, len(vectors.class_names), in_features=vectors.in_features
    )


def _head(network: EmbeddingNetwork) -> dict[str, Any]:
    """Everything of the network that the method decides (not the backbone)."""
    classifier = network.classifier
    return {
        "head": [type(m).__name__ for m in network.embedding_head.modules()],
        "projected": not isinstance(network.embedding_head, nn.Identity),
        "activation": type(network.head_activation).__name__,
        "normalize": network.normalize,
        "projection": network.projection,
        "classifier": None if classifier is None else type(classifier).__name__,
        "classifier_type": network.classifier_type,
        "classifier_scale": network.classifier_scale,
        "frozen": network.backbone_frozen,
    }


def _setup(
    config: TrainConfig, data: Any, network: EmbeddingNetwork, tmp_path: Path
) -> TrainingSetup:
    spec = get_method(config.method)
    job = RunJob(
        config,
        spec,
        data,
        network,
        RunDir(tmp_path),
        torch.device("cpu"),
        False,
        Console(quiet=True),
    )
    return build_training(job)


def _sampler(setup: TrainingSetup) -> tuple[str, str | None, np.ndarray | None]:
    sampler = setup.batch_sampler
    if isinstance(sampler, OversampledBatchSampler):
        return type(sampler).__name__, type(sampler.sampler).__name__, sampler.positions
    return type(sampler).__name__, None, None


@pytest.mark.parametrize("method", ON_VECTORS)
def test_vectors_build_what_images_build(
    method: str,
    images: PreparedData,
    vectors: FeatureParts,
    tiny_options: dict[str, Any],
    tmp_path: Path,
) -> None:
    config = TrainConfig(**{**tiny_options, "method": method})
    spec = get_method(method)
    image_network = build_network(config, spec, len(images.class_names))
    vector_network = build_mlp(spec, vectors, config)
    assert _head(vector_network) == _head(image_network)
    if spec.embedding == "projected":
        assert vector_network.embedding_dim == image_network.embedding_dim == config.embedding_dim

    on_images = _setup(config, images, image_network, tmp_path / "images")
    on_vectors = _setup(vector_config(config), vectors, vector_network, tmp_path / "vectors")
    kind, inner, positions = _sampler(on_images)
    assert _sampler(on_vectors)[:2] == (kind, inner)
    if positions is not None:
        np.testing.assert_array_equal(_sampler(on_vectors)[2], positions)
    if kind != "ClusterBatchSampler":  # k-means groups of thumbnails vs of vectors
        assert list(on_vectors.batch_sampler) == list(on_images.batch_sampler)
    assert on_vectors.config.epochs == on_images.config.epochs
    assert type(on_vectors.objective) is type(on_images.objective)
    assert vars(on_vectors.objective).get("reweight_from") == vars(on_images.objective).get(
        "reweight_from"
    )
    assert (on_vectors.validate is None) == (on_images.validate is None)


def test_ldam_on_vectors_trains_its_cosine_classifier(vectors: FeatureParts) -> None:
    config = TrainConfig(method="ldam", method_options={"scale": 10.0}, epochs=5)
    network = build_mlp(get_method("ldam"), vectors, config)
    assert type(network.classifier).__name__ == "CosineClassifier"
    assert network.classifier_scale == 10.0


@pytest.mark.parametrize("resample", ["none", "oversample"])
def test_vectors_honour_resample(
    resample: str,
    images: PreparedData,
    vectors: FeatureParts,
    tiny_options: dict[str, Any],
    tmp_path: Path,
) -> None:
    config = TrainConfig(**{**tiny_options, "method": "ce", "resample": resample})
    network = build_mlp(get_method("ce"), vectors, config)
    on_vectors = _setup(vector_config(config), vectors, network, tmp_path)
    oversampled = isinstance(on_vectors.batch_sampler, OversampledBatchSampler)
    assert oversampled == (resample == "oversample")
    image_network = build_network(config, get_method("ce"), len(images.class_names))
    on_images = _setup(config, images, image_network, tmp_path / "images")
    assert list(on_vectors.batch_sampler) == list(on_images.batch_sampler)


def test_vectors_keep_the_knn_index_and_its_options(
    images: PreparedData, vectors: FeatureParts, tiny_options: dict[str, Any], tmp_path: Path
) -> None:
    options = {"knn_index": "hnsw", "knn_index_options": {"m": 8, "ef_search": 20}}
    config = TrainConfig(**{**tiny_options, "method": "deepknn", **options})
    run_feature_method("deepknn", vectors, config, tmp_path / "run", progress=False)
    on_vectors = KNNClassifier.load(RunDir(tmp_path / "run").knn)
    network = build_network(config, get_method("deepknn"), len(images.class_names))
    on_images = fit_knn_on_training_set(network, images, config.knn)
    assert on_vectors.index_type_ == on_images.index_type_ == "hnsw"
    assert on_vectors.index_options_ == on_images.index_options_
    assert on_vectors.index_options_["m"] == 8 and on_vectors.index_options_["ef_search"] == 20
    assert on_vectors.n_neighbors == on_images.n_neighbors == config.k_predict

    run_feature_method("knn-basic", vectors, config, tmp_path / "basic", progress=False)
    metrics = (tmp_path / "basic" / "metrics.json").read_text()
    assert '"accuracy"' in metrics


@pytest.mark.parametrize("method", NOT_ON_VECTORS)
def test_methods_without_vector_support_are_refused_with_the_reason(method: str) -> None:
    reason = get_method(method).vector_problem
    assert reason
    with pytest.raises(ConfigError, match=rf"{re.escape(repr(method))}.*{re.escape(reason)}"):
        check_feature_method(method)


def test_supcon_declares_why_it_cannot_run_on_vectors() -> None:
    assert "supcon" in NOT_ON_VECTORS and "supcon+resample" in NOT_ON_VECTORS
    assert "two contrastive augmented views" in (get_method("supcon").vector_problem or "")
    assert {"ce", "ce+resample", "ldam", "focal", "deepknn", "triplet"} <= set(ON_VECTORS)


def test_a_benchmark_starts_each_init_from_method_from_the_method_it_declares(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trained: dict[str, TrainConfig] = {}

    def fake_train(config: TrainConfig, out: Path, **_: Any) -> None:
        trained[str(Path(out).relative_to(tmp_path))] = config
        runs = [RunDir(Path(out))]
        if get_method(config.method).next_stage is not None:
            runs.append(RunDir(Path(out) / "stage1"))
        for run in runs:
            run.path.mkdir(parents=True, exist_ok=True)
            run.status.write_text('{"status": "complete", "wall_seconds": 1}')
            run.metrics.write_text('{"accuracy": 0.5, "mcr": 0.5}')

    monkeypatch.setattr(medknn.benchmark.api, "train", fake_train)
    monkeypatch.setattr(medknn.benchmark, "write_benchmark_report", lambda *a, **k: None)
    run_benchmark({"epochs": 1}, ["linear-probe", "deepknn-star"], [0], tmp_path, progress=False)

    probe = trained["linear-probe/seed0"]
    assert probe.init_from == str(tmp_path / "supcon-init" / "seed0" / "stage1")
    assert trained["supcon-init/seed0"].method == "supcon"
    star = trained["deepknn-star/seed0"]
    assert star.init_from == str(tmp_path / "weighted-ce-init" / "seed0")
    assert trained["weighted-ce-init/seed0"].method == "weighted-ce"


# --- a vector run is a run of run_training.train --------------------------------------------


def _files(run: Path) -> set[str]:
    return {path.name for path in run.iterdir()}


def test_a_vector_run_writes_the_files_of_an_image_run(
    deepknn_run: Path, vectors: FeatureParts, tiny_options: dict[str, Any], tmp_path: Path
) -> None:
    config = TrainConfig(**{**tiny_options, "method": "deepknn"})
    run = train(config, tmp_path / "vectors", data=vectors, progress=False)
    assert _files(run.path) == _files(deepknn_run), _files(run.path) ^ _files(deepknn_run)
    assert {"config.yaml", "decision.json", "metrics.json", "manifest.json", "knn"} <= _files(
        run.path
    )
    # config.yaml records what ran: the MLP on the vectors' length, no test-time augmentation
    saved = TrainConfig.load_saved(RunDir(run.path).config)
    assert (saved.backbone, saved.tta, saved.decision) == ("mlp", "none", "validated")
    assert read_json(RunDir(run.path).data)["in_features"] == vectors.dim
    assert run.network.backbone.in_features == vectors.dim
    metrics = read_json(RunDir(run.path).metrics)
    assert metrics["n"] == len(vectors.indices("test")) and metrics["tta"] == "none"
    assert set(read_json(RunDir(deepknn_run).metrics)) == set(metrics)
    # It predicts no image file: refused by name, not an input-shape error from inside torch.
    with pytest.raises(ConfigError, match="trained on feature vectors"):
        run.predict_files([tmp_path / "any.png"])


def test_a_vector_run_is_reused_resumed_and_refused_like_an_image_run(
    vectors: FeatureParts, tiny_options: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "run"
    config = TrainConfig(**{**tiny_options, "method": "ce", "epochs": 2, "decision": "plain"})
    train(config, out, data=vectors, progress=False)
    assert not RunDir(out).decision.exists()  # the plain rule: no rule chosen on validation
    assert "decision" not in read_json(RunDir(out).metrics)
    written = RunDir(out).metrics.stat().st_mtime_ns

    buffer = io.StringIO()
    train(config, out, data=vectors, console=Console(file=buffer, width=200))
    assert "already complete" in buffer.getvalue()
    assert RunDir(out).metrics.stat().st_mtime_ns == written
    with pytest.raises(ConfigError, match="finished run of 2 epochs; 1 epochs"):
        train(config.replace(epochs=1), out, data=vectors, progress=False)
    with pytest.raises(ConfigError, match="k_predict: 3 → 1"):
        train(config.replace(k_predict=1), out, data=vectors, progress=False)
    other_split = FeatureParts.from_split(_vector_set(vectors), _other_split(vectors))
    with pytest.raises(DataError, match="another split"):
        train(config.replace(epochs=3), out, data=other_split, progress=False)
    assert RunDir(out).status.exists()  # refused before anything was rewritten

    train(config.replace(epochs=3), out, data=vectors, progress=False)  # trains on
    assert len(read_json(RunDir(out).history)) == 3


def test_decision_validated_on_vectors_is_chosen_on_validation(
    vectors: FeatureParts, tiny_options: dict[str, Any], tmp_path: Path
) -> None:
    config = TrainConfig(**{**tiny_options, "method": "deepknn", "decision": "validated"})
    train(config, tmp_path / "run", data=vectors, progress=False)
    labels = vectors.table.labels.copy()
    test = vectors.indices("test")
    labels[test] = np.roll(labels[test], 1)  # every test label moves to another case
    assert not np.array_equal(labels, vectors.table.labels)
    shuffled = dataclasses.replace(vectors, table=dataclasses.replace(vectors.table, labels=labels))
    train(config, tmp_path / "shuffled", data=shuffled, progress=False)
    chosen = read_json(RunDir(tmp_path / "run").decision)
    assert chosen["tta"] == "none"  # tta: auto means none on vectors
    assert read_json(RunDir(tmp_path / "shuffled").decision) == chosen
    assert "decision" in read_json(RunDir(tmp_path / "run").metrics)


@pytest.mark.parametrize("tta", ["flips", "crops"])
def test_tta_on_vectors_is_refused_naming_the_fix(
    tta: str, vectors: FeatureParts, tiny_options: dict[str, Any], tmp_path: Path
) -> None:
    config = TrainConfig(**{**tiny_options, "method": "deepknn", "tta": tta})
    with pytest.raises(
        ConfigError, match=rf"tta: {tta} does not apply to feature vectors.*tta: none"
    ):
        train(config, tmp_path / "run", data=vectors, progress=False)
    assert not (tmp_path / "run").exists()
    with pytest.raises(ConfigError, match="'supcon' does not run on feature vectors"):
        train(config.replace(method="supcon", tta="auto"), tmp_path / "run", data=vectors)


def _vector_set(vectors: FeatureParts) -> FeatureSet:
    table = vectors.table
    rows = np.zeros((len(table), vectors.dim), dtype=np.float32)
    for part in ("train", "val", "test"):
        rows[vectors.indices(part)] = vectors.features[part]
    return FeatureSet(rows, table.labels, list(table.class_names), list(table.ids))


def _other_split(vectors: FeatureParts) -> Split:
    """The same parts with one training and one test case swapped."""
    split = vectors.split
    train_rows, test_rows = split.train.copy(), split.test.copy()
    train_rows[0], test_rows[0] = split.test[0], split.train[0]
    return dataclasses.replace(split, train=train_rows, test=test_rows)
