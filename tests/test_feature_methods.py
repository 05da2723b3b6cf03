"""The feature-vector setting: extraction and its cache, the .npz source and its split, and the
kNN-basic / NCA / LMNN / MLP methods with their benchmark (the Deep kNN paper's Table 3)."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from sklearn.preprocessing import FunctionTransformer
from typer.testing import CliRunner

from medknn.cli import app
from medknn.data import load_dataset, make_split
from medknn.errors import ConfigError, DataError
from medknn.features import (
    LMNN,
    FeatureParts,
    FeatureSet,
    SubsampledFit,
    extract_features,
    make_metric_knn,
    methods_as_columns_table,
    run_feature_benchmark,
    run_feature_method,
)
from medknn.io import read_json
from medknn.runs import RunDir, TrainConfig

CLASSES = ["benign", "malignant", "normal"]
# One short epoch of the MLP methods on the blobs below.
FAST = {"epochs": 1, "batch_size": 30, "classes_per_batch": 3, "embedding_dim": 16, "k_predict": 3}


def blobs(n: int = 240, dim: int = 12, seed: int = 0, groups: bool = False) -> FeatureSet:
    """Three well-separated Gaussian classes (chance accuracy 1/3); lesion-like groups of 2."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    features = rng.normal(0, 4, (3, dim))[labels] + rng.normal(0, 1, (n, dim))
    return FeatureSet(
        features=features,
        labels=labels,
        class_names=CLASSES,
        ids=[f"case{i}" for i in range(n)],
        groups=np.array([f"lesion{i % (n // 2)}" for i in range(n)]) if groups else None,
    )


@pytest.fixture(scope="module")
def parts() -> FeatureParts:
    feature_set = blobs()
    return FeatureParts.from_split(feature_set, feature_set.split(seed=0))


def quiet_console() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=200), buffer


# --- extraction -----------------------------------------------------------------------------


def test_extraction_writes_the_npz_and_reuses_it(
    make_image_folder: Callable[..., Path], tmp_path: Path
) -> None:
    folder = make_image_folder(tmp_path / "images", {"a": 4, "b": 3})
    out = tmp_path / "features.npz"
    options = dict(backbone="mobilenetv3_small_050", image_size=28, pretrained=False)
    console, printed = quiet_console()
    made = extract_features(str(folder), out, console=console, **options)

    with np.load(out, allow_pickle=False) as npz:
        assert {"features", "labels", "ids", "class_names", "settings"} <= set(npz.files)
        assert npz["features"].dtype == np.float32
        assert npz["features"].shape == (7, made.dim)
    loaded = FeatureSet.load(out)
    table = load_dataset(str(folder))
    assert loaded.ids == table.ids
    assert loaded.class_names == ["a", "b"]
    np.testing.assert_array_equal(loaded.labels, table.labels)
    assert loaded.settings["backbone"] == "mobilenetv3_small_050"
    assert loaded.settings["image_size"] == 28
    assert "reusing" not in printed.getvalue()

    written = out.stat().st_mtime_ns
    again = extract_features(str(folder), out, console=console, **options)
    assert "reusing the features" in printed.getvalue()
    assert out.stat().st_mtime_ns == written
    np.testing.assert_array_equal(again.features, made.features)

    with pytest.raises(ConfigError, match="image_size: 28 → 32"):
        extract_features(str(folder), out, console=console, **{**options, "image_size": 32})
    with pytest.raises(ConfigError, match="Unknown backbone 'resnet-18'"):
        extract_features(str(folder), tmp_path / "x.npz", **{**options, "backbone": "resnet-18"})
    assert not (tmp_path / "x.npz").exists()


def test_cli_features_then_benchmark(
    make_image_folder: Callable[..., Path], tmp_path: Path
) -> None:
    folder = make_image_folder(tmp_path / "images", {"a": 10, "b": 10})
    npz = tmp_path / "f.npz"
    runner = CliRunner()
    extract = [
        "features", "--data", folder, "--out", npz, "--backbone", "mobilenetv3_small_050",
        "--image-size", "28", "--no-pretrained", "--quiet",
    ]  # fmt: skip
    result = runner.invoke(app, [str(a) for a in extract])
    assert result.exit_code == 0, result.output
    assert "20 × " in result.output
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "base: {k_predict: 3}\nseeds: [1]\n"
        "methods: [knn-basic, {method: nca, method_options: {n_components: 2}}]\n"
    )
    bench = ["features-benchmark", npz, "--out", tmp_path / "bench", "--spec", spec]
    result = runner.invoke(app, [str(a) for a in [*bench, "--quiet"]])
    assert result.exit_code == 0, result.output
    assert "| metric (%) | kNN-basic | NCA |" in result.output
    nca = TrainConfig.from_yaml(RunDir(tmp_path / "bench/NCA/seed1").config)
    assert (nca.k_predict, nca.method_options) == (3, {"n_components": 2})
    result = runner.invoke(app, [str(a) for a in [*bench, "--seeds", "0,x"]])
    assert result.exit_code == 2
    assert "--seeds '0,x'" in result.output


# --- the .npz source and its split ----------------------------------------------------------


def test_a_users_npz_needs_features_and_labels(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        FeatureSet.load(tmp_path / "missing.npz")

    no_labels = tmp_path / "no_labels.npz"
    np.savez(no_labels, features=np.zeros((4, 3)))
    with pytest.raises(DataError, match=r"no_labels\.npz has no 'labels' array"):
        FeatureSet.load(no_labels)

    short = tmp_path / "short.npz"
    np.savez(short, features=np.zeros((4, 3)), labels=np.array([0, 1, 0]))
    with pytest.raises(DataError, match=r"short\.npz: 3 labels for 4 feature rows"):
        FeatureSet.load(short)

    flat = tmp_path / "flat.npz"
    np.savez(flat, features=np.zeros(4), labels=np.array([0, 1, 0, 1]))
    with pytest.raises(DataError, match=r"flat\.npz: 'features' must be a numeric N×D array"):
        FeatureSet.load(flat)

    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, features=np.zeros((2, 2)), labels=np.array([{"a": 1}, {"b": 2}]))
    with pytest.raises(DataError, match="not a readable .npz of plain arrays"):
        FeatureSet.load(pickled)


def test_a_users_npz_with_named_or_medmnist_style_labels(tmp_path: Path) -> None:
    named = tmp_path / "named.npz"
    np.savez(named, features=np.eye(4), labels=np.array(["nv", "mel", "nv", "bcc"]))
    loaded = FeatureSet.load(named)
    assert loaded.class_names == ["bcc", "mel", "nv"]
    np.testing.assert_array_equal(loaded.labels, [2, 1, 2, 0])
    assert loaded.ids == ["0", "1", "2", "3"]

    column = tmp_path / "column.npz"
    np.savez(column, features=np.eye(3), labels=np.array([[1], [0], [1]], dtype=np.uint8))
    np.testing.assert_array_equal(FeatureSet.load(column).labels, [1, 0, 1])


def test_the_split_is_the_image_pipelines_split(
    make_image_folder: Callable[..., Path], tmp_path: Path
) -> None:
    table = load_dataset(str(make_image_folder(tmp_path / "images", {"a": 20, "b": 20})))
    feature_set = FeatureSet(
        features=np.zeros((len(table), 2)),
        labels=table.labels,
        class_names=table.class_names,
        ids=table.ids,
    )
    for seed in (0, 1):
        ours, theirs = feature_set.split(seed=seed), make_split(table, seed=seed)
        for part in ("train", "val", "test"):
            np.testing.assert_array_equal(getattr(ours, part), getattr(theirs, part))
    assert not np.array_equal(feature_set.split(seed=0).test, feature_set.split(seed=1).test)


def test_groups_make_a_grouped_split_that_survives_saving(tmp_path: Path) -> None:
    path = blobs(groups=True).save(tmp_path / "grouped.npz")
    feature_set = FeatureSet.load(path)
    split = feature_set.split(seed=3)
    assert split.strategy == "grouped"
    parts = [set(feature_set.groups[getattr(split, p)]) for p in ("train", "val", "test")]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])


def test_parts_are_standardised_with_training_statistics_only(parts: FeatureParts) -> None:
    np.testing.assert_allclose(parts.features["train"].mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(parts.features["train"].std(axis=0), 1, atol=1e-4)
    assert abs(parts.features["test"].mean(axis=0)).max() > 1e-3


# --- linear methods -------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["knn-basic", "nca"])
def test_linear_methods_beat_chance(method: str, parts: FeatureParts) -> None:
    model = make_metric_knn(method, num_features=parts.dim, n_neighbors=3)
    model.fit(parts.features["train"], parts.labels("train"))
    accuracy = (model.predict(parts.features["test"]) == parts.labels("test")).mean()
    assert accuracy > 0.9  # chance is 1/3


def test_lmnn_runs_and_beats_chance(parts: FeatureParts) -> None:
    model = make_metric_knn("lmnn", num_features=parts.dim, n_neighbors=3, options={"max_iter": 30})
    model.fit(parts.features["train"], parts.labels("train"))
    assert (model.predict(parts.features["test"]) == parts.labels("test")).mean() > 0.9


def test_lmnn_pulls_target_neighbours_in_and_pushes_impostors_out() -> None:
    # Two classes told apart by feature 0 alone; features 1-4 are ten times larger noise. kNN
    # on the raw features is poor; LMNN's map must weigh feature 0 up.
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 60)
    rows = np.c_[labels + 0.2 * rng.normal(size=120), 3 * rng.normal(size=(120, 4))]
    train, test = np.arange(0, 120, 2), np.arange(1, 120, 2)
    lmnn = LMNN(n_neighbors=3, n_components=2, max_iter=100).fit(rows[train], labels[train])
    assert lmnn.components_.shape == (2, 5) and lmnn.transform(rows[test]).shape == (60, 2)
    assert lmnn.loss_ < 0.5 * lmnn.loss_curve_[0]
    # the learned map weighs the informative feature most, relative to its noise
    weight = np.abs(lmnn.components_).sum(0)
    assert weight[0] > weight[1:].max()

    def knn_accuracy(train_rows: np.ndarray, test_rows: np.ndarray) -> float:
        from sklearn.neighbors import KNeighborsClassifier

        knn = KNeighborsClassifier(3).fit(train_rows, labels[train])
        return float((knn.predict(test_rows) == labels[test]).mean())

    raw = knn_accuracy(rows[train], rows[test])
    learned = knn_accuracy(lmnn.transform(rows[train]), lmnn.transform(rows[test]))
    assert learned > 0.95 and learned > raw + 0.1
    # same rows, same seed: the same map
    again = LMNN(n_neighbors=3, n_components=2, max_iter=100).fit(rows[train], labels[train])
    np.testing.assert_array_equal(again.components_, lmnn.components_)


def test_lmnn_refuses_a_class_of_one_row() -> None:
    with pytest.raises(ConfigError, match="two rows of every class"):
        LMNN().fit(np.zeros((3, 2)) + np.arange(3)[:, None], np.array([0, 0, 1]))


def test_nca_is_fitted_on_a_stratified_subsample(parts: FeatureParts) -> None:
    model = make_metric_knn(
        "nca", num_features=parts.dim, options={"max_samples": 30, "n_components": 4}
    )
    model.fit(parts.features["train"], parts.labels("train"))
    metric = model.named_steps["metric"]
    assert metric.n_fit_samples_ == 30
    assert metric.estimator_.components_.shape == (4, parts.dim)
    assert metric.transform(parts.features["test"]).shape == (parts.size("test"), 4)


def test_subsampled_fit_keeps_class_proportions() -> None:
    seen = []

    class LabelCounter(FunctionTransformer):
        def fit(self, X, y=None):
            seen.append(np.bincount(y))
            return super().fit(X, y)

    labels = np.repeat([0, 1], [90, 10])
    SubsampledFit(LabelCounter(), max_samples=20).fit(np.zeros((100, 2)), labels)
    np.testing.assert_array_equal(seen, [[18, 2]])


def test_linear_method_options_are_checked(parts: FeatureParts) -> None:
    with pytest.raises(ConfigError, match="'nca' has no option 'k'.*n_components"):
        make_metric_knn("nca", num_features=parts.dim, options={"k": 3})
    with pytest.raises(ConfigError, match="max_iter=0 must be a whole number >= 1"):
        make_metric_knn("nca", num_features=parts.dim, options={"max_iter": 0})
    with pytest.raises(ConfigError, match="not one of the linear methods"):
        make_metric_knn("pca", num_features=parts.dim)


# --- MLP methods, run directories and the benchmark -----------------------------------------


@pytest.mark.parametrize("method", ["triplet", "ce", "deepknn"])
def test_mlp_methods_train_one_epoch(method: str, parts: FeatureParts, tmp_path: Path) -> None:
    config = TrainConfig(**FAST)
    metrics = run_feature_method(method, parts, config, tmp_path / method, progress=False)
    run = RunDir(tmp_path / method)
    assert len(read_json(run.history)) == 1
    assert run.model.exists() and run.metrics.exists()
    # every method keeps its kNN index of training vectors, as on images (the evidence of CE too)
    assert (run.knn / "knn.json").exists() and (run.path / "manifest.json").exists()
    assert metrics["method"] == method and metrics["n"] == parts.size("test")
    assert metrics["accuracy"] > 0.6  # chance is 1/3


def test_a_finished_run_is_reused_and_other_settings_are_refused(
    parts: FeatureParts, tmp_path: Path
) -> None:
    config = TrainConfig(**FAST)
    first = run_feature_method("knn-basic", parts, config, tmp_path / "run", progress=False)
    console, printed = quiet_console()
    again = run_feature_method("knn-basic", parts, config, tmp_path / "run", console=console)
    assert again == first
    assert "already complete" in printed.getvalue()
    with pytest.raises(ConfigError, match="k_predict: 3 → 1"):
        run_feature_method("knn-basic", parts, config.replace(k_predict=1), tmp_path / "run")
    with pytest.raises(ConfigError, match="'deepknn-star' does not run on feature vectors"):
        run_feature_method("deepknn-star", parts, config, tmp_path / "star")


def test_benchmark_writes_the_table3_layout(tmp_path: Path) -> None:
    npz = blobs().save(tmp_path / "blobs.npz")
    methods = ["knn-basic", "nca", {"method": "deepknn", "margin": 0.3}]
    result = run_feature_benchmark(
        npz, methods, [0, 1], tmp_path / "bench", config=FAST, progress=False
    )
    assert [row["label"] for row in result.rows] == ["kNN-basic", "NCA", "MLP+deep-kNN"]
    assert len(result.records) == 6 and {r["seed"] for r in result.records} == {0, 1}
    assert result.markdown.splitlines()[0] == "| metric (%) | kNN-basic | NCA | MLP+deep-kNN |"
    assert TrainConfig.from_yaml(RunDir(tmp_path / "bench/MLP+deep-kNN/seed1").config).margin == 0.3
    page = (tmp_path / "bench" / "results.md").read_text()
    assert result.markdown in page and "stratified 168/24/48 train/val/test" in page
    assert (tmp_path / "bench" / "results.csv").exists()

    with pytest.raises(ConfigError, match="'deep-knn' does not run on feature vectors.*deepknn"):
        run_feature_benchmark(npz, ["deep-knn"], [0], tmp_path / "other", progress=False)
    assert not (tmp_path / "other").exists()


def test_wide_table_marks_the_best_method_per_metric() -> None:
    rows = [
        {"label": "A", "mean": {"accuracy": 0.5, "mcr": None}, "std": {"accuracy": 0.01, "mcr": 0},
         "wall_seconds": 3.0},
        {"label": "B", "mean": {"accuracy": 0.75, "mcr": 0.4}, "std": {"accuracy": 0.0, "mcr": 0},
         "wall_seconds": 12.4},
    ]  # fmt: skip
    lines = methods_as_columns_table(rows, ["accuracy", "mcr"]).splitlines()
    assert lines[0] == "| metric (%) | A | B |"
    assert lines[2] == "| Acc | 50.0 ± 1.0 | **75.0 ± 0.0** |"
    assert lines[3] == "| MCR | n/a | **40.0 ± 0.0** |"
    assert lines[4] == "| wall s/run | 3 | 12 |"


# --- the Table 3 reproduction keeps the rule its numbers were scored with --------------------

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_the_documented_table3_mlp_runs_pin_the_plain_rule() -> None:
    commands = (DOCS / "feature_vectors.md").read_text().split("medknn features-benchmark")[1:]
    training = [c.split("```")[0] for c in commands if "--epochs" in c]
    assert training and all("--set decision=plain" in c for c in training)


def _legacy_config(path: Path, **values: object) -> None:
    """A vector run's config.yaml as medknn wrote it before vector runs went through
    run_training.train: the defaults decision: validated and tta: auto, scored plain."""
    path.mkdir(parents=True)
    config = TrainConfig(**FAST, backbone="mlp", method="deepknn", **values)
    (path / "config.yaml").write_text(config.to_yaml())


def test_saved_vector_runs_from_before_the_pipeline_read_as_scored_plain(tmp_path: Path) -> None:
    _legacy_config(tmp_path / "old")
    old = TrainConfig.load_saved(tmp_path / "old" / "config.yaml")
    assert (old.decision, old.tta) == ("plain", "none")
    # a vector run of today records tta: none and keeps the decision it asked for
    _legacy_config(tmp_path / "new", tta="none")
    assert TrainConfig.load_saved(tmp_path / "new" / "config.yaml").decision == "validated"
    # an image run's config is read as written
    image = tmp_path / "image.yaml"
    image.write_text(TrainConfig(**FAST).to_yaml())
    assert (TrainConfig.load_saved(image).decision, TrainConfig.load_saved(image).tta) == (
        "validated",
        "auto",
    )


def test_a_finished_vector_run_of_an_earlier_medknn_is_reused(
    parts: FeatureParts, tmp_path: Path
) -> None:
    old = tmp_path / "MLP+deep-kNN" / "seed0"
    _legacy_config(old)
    (old / "metrics.json").write_text('{"accuracy": 0.75, "method": "deepknn", "seed": 0}')
    (old / "status.json").write_text('{"status": "complete", "wall_seconds": 3.0}')
    config = TrainConfig(**FAST, backbone="mlp", decision="plain")
    metrics = run_feature_method("deepknn", parts, config, old, progress=False)
    assert metrics["accuracy"] == 0.75
    assert not (old / "model.safetensors").exists()  # read back, not retrained
    with pytest.raises(ConfigError, match="margin: 0.2 → 0.3"):
        run_feature_method("deepknn", parts, config.replace(margin=0.3), old, progress=False)


def test_linear_baselines_record_the_plain_vote_they_are_scored_with(
    parts: FeatureParts, tmp_path: Path
) -> None:
    run_feature_method("knn-basic", parts, TrainConfig(**FAST), tmp_path / "run", progress=False)
    saved = TrainConfig.load_saved(RunDir(tmp_path / "run").config)
    assert (saved.decision, saved.tta) == ("plain", "none")
    assert read_json(RunDir(tmp_path / "run").data)["class_names"] == CLASSES
    assert RunDir(tmp_path / "run").split.exists()
    with pytest.raises(ConfigError, match="tta: flips does not apply to feature vectors"):
        run_feature_method("nca", parts, TrainConfig(**FAST, tta="flips"), tmp_path / "nca")
    assert not (tmp_path / "nca").exists()
