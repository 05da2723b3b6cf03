"""Issue 4's methods: supcon (two stages), linear-probe, focal, ldam, ce+resample; oversampling
and class-balanced batches; the two-stage run directory."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import BREASTMNIST_SHORT_RUN

import medknn
from medknn.data import ClassBalancedBatchSampler, ShuffledBatchSampler
from medknn.errors import ConfigError
from medknn.io import load_tensors, read_json
from medknn.losses import FocalLoss, LDAMLoss, SupConLoss, drw_weights
from medknn.methods import ObjectiveContext, create_objective, get_method
from medknn.prediction import TrainedRun
from medknn.runs import RunDir, TrainConfig
from medknn.runs.batches import OversampledBatchSampler, build_batch_sampler
from medknn.runs.build import build_network
from medknn.runs.prepare import prepare_data
from medknn.runs.stages import next_stage_config
from medknn.training import Trainer

COUNTS = np.array([60, 30, 10])


def context(epochs: int | None = None, **options: Any) -> ObjectiveContext:
    return ObjectiveContext(class_counts=COUNTS, options=options, epochs=epochs)


def backbone_tensors(path: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in load_tensors(path).items() if k.startswith("backbone.")}


# --- the registry -------------------------------------------------------------------------


def test_supcon_is_two_stages_with_a_projection_on_two_contrastive_views() -> None:
    for name, resample in (("supcon", "none"), ("supcon+resample", "oversample")):
        spec = get_method(name)
        assert (spec.embedding, spec.projection, spec.normalize_embedding) == (
            "projected",
            "mlp",
            True,
        )
        assert (spec.views, spec.augmentation, spec.sampler) == (2, "contrastive", "shuffle")
        assert (spec.resample, spec.next_stage, spec.classifier) == (
            resample,
            "linear-probe",
            False,
        )
    probe = get_method("linear-probe")
    assert (probe.embedding, probe.classifier, probe.classifier_type) == ("pooled", True, "linear")
    assert probe.freeze_backbone and probe.requires_init_from
    assert (probe.sampler, probe.prediction, probe.views) == ("balanced", "softmax", 1)


@pytest.mark.parametrize(("options", "scale"), [({}, 30.0), ({"scale": 10}, 10.0)])
def test_ldam_network_logits_carry_the_loss_scale(options: dict, scale: float) -> None:
    config = TrainConfig(**BREASTMNIST_SHORT_RUN, method="ldam", method_options=options)
    network = build_network(config, get_method("ldam"), 3, load_weights=False)
    assert network.classifier.scale == scale
    # The softmax the predictions read is that of the logits LDAM trains, not of bare cosines.
    weights = torch.nn.functional.normalize(network.classifier.weight, dim=1)
    assert network.classifier(weights[1:2])[0, 1].item() == pytest.approx(scale, rel=1e-5)


def test_a_bad_ldam_scale_is_refused_when_the_network_is_built() -> None:
    config = TrainConfig(**BREASTMNIST_SHORT_RUN, method="ldam", method_options={"scale": -3})
    with pytest.raises(ConfigError, match="Method 'ldam': method_options scale=-3 must be"):
        build_network(config, get_method("ldam"), 3, load_weights=False)


def test_baselines_keep_the_softmax_recipe_with_their_own_twist() -> None:
    assert get_method("ce+resample").resample == "oversample"
    assert get_method("ldam").classifier_type == "cosine"
    for name in ("ce", "focal", "ldam", "ce+resample"):
        spec = get_method(name)
        assert (spec.views, spec.next_stage, spec.freeze_backbone) == (1, None, False)
        assert (spec.embedding, spec.prediction) == ("pooled", "softmax")
    # Every method registered before issue 4 keeps the defaults: nothing changes for it.
    for name in ("deepknn", "triplet", "ce+bst", "constellation"):
        spec = get_method(name)
        assert (spec.projection, spec.classifier_type, spec.views) == ("linear", "linear", 1)
        assert (spec.augmentation, spec.resample, spec.next_stage) == ("standard", "none", None)


# --- objectives and their options ---------------------------------------------------------


def test_options_reach_the_losses() -> None:
    supcon = create_objective("supcon", context(temperature=0.05)).loss
    assert isinstance(supcon, SupConLoss) and supcon.temperature == 0.05
    focal = create_objective("focal", context(gamma=0.5)).loss
    assert isinstance(focal, FocalLoss) and focal.gamma == 0.5 and focal.weight is None
    balanced = create_objective("focal", context(balanced=True)).loss
    torch.testing.assert_close(
        balanced.weight, torch.tensor([0.5556, 1.1111, 3.3333]), atol=1e-4, rtol=0
    )
    ldam = create_objective("ldam", context(max_margin=0.3, scale=10)).loss
    assert isinstance(ldam, LDAMLoss) and (ldam.max_margin, ldam.scale) == (0.3, 10.0)
    assert ldam.margins.max().item() == pytest.approx(0.3)


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("focal", {"gamma": "high"}, "'focal': method_options gamma='high' must be a number"),
        ("focal", {"gamma": -1}, "gamma=-1"),
        ("focal", {"balanced": "yes"}, "balanced='yes' must be true"),
        ("ldam", {"drw_epoch": -2}, "drw_epoch=-2 must be the number of epochs"),
        ("ldam", {"drw_epoch": 1.5}, "drw_epoch=1.5"),
        ("ldam", {"margin": 0.5}, "no option 'margin'.*max_margin"),
        ("supcon", {"temperature": 0}, "temperature=0 must be a finite number > 0"),
        ("supcon+resample", {"temperature": "cold"}, "'supcon\\+resample'.*temperature='cold'"),
        ("supcon", {"tau": 0.1}, "no option 'tau'.*temperature"),
        ("linear-probe", {"temperature": 0.1}, "'linear-probe' has no option 'temperature'"),
        ("ce+resample", {"gamma": 2}, "'ce\\+resample' has no option 'gamma'.*none"),
    ],
)
def test_bad_options_name_the_method_and_the_fix(name: str, options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        create_objective(name, context(**options))


def test_ldam_reweights_from_80_percent_of_the_epochs_by_default() -> None:
    objective = create_objective("ldam", context(epochs=10))
    assert objective.reweight_from == 8  # the LDAM paper: 160 of 200
    logits, labels = torch.rand(6, 3) * 2 - 1, torch.tensor([0, 1, 2, 2, 1, 0])
    objective.set_epoch(7)
    plain, stats = objective(None, logits, labels)
    assert objective.loss.weight is None and stats == {"reweighted": 0.0}
    objective.set_epoch(8)
    weighted, stats = objective(None, logits, labels)
    torch.testing.assert_close(objective.loss.weight, drw_weights(COUNTS))
    assert stats == {"reweighted": 1.0} and weighted.item() != pytest.approx(plain.item())
    objective.set_epoch(0)  # a resumed run goes back to the schedule of its epoch
    assert objective.loss.weight is None
    assert create_objective("ldam", context(epochs=10, drw_epoch=None)).reweight_from is None
    assert create_objective("ldam", context(epochs=10, drw_epoch=3)).reweight_from == 3
    assert create_objective("ldam", context()).reweight_from is None  # no epochs known


@pytest.mark.parametrize("method", ["focal", "ce+resample", "supcon+resample", "linear-imagenet"])
def test_method_trains_on_the_tiny_data(
    tmp_path: Path, train_tiny: Callable[..., TrainedRun], method: str
) -> None:
    run = train_tiny(tmp_path / "run", method=method)
    (epoch,) = read_json(run.run_dir.history)
    assert np.isfinite(epoch["loss"]) and epoch["loss"] > 0
    assert run.spec.name == ("linear-probe" if method.startswith("supcon") else method)
    if method == "linear-imagenet":  # supcon's stage 2 on the backbone as it was loaded
        assert run.network.backbone_frozen and not run.spec.requires_init_from
        assert run.spec.sampler == "balanced"


def test_trainer_tells_the_objective_each_epoch(
    tmp_path: Path, train_tiny: Callable[..., TrainedRun]
) -> None:
    train_tiny(tmp_path / "ldam", method="ldam", epochs=3, method_options={"drw_epoch": 2})
    history = read_json(tmp_path / "ldam" / "history.json")
    assert [epoch["reweighted"] for epoch in history] == [0.0, 0.0, 1.0]


# --- config, samplers, datasets, networks ------------------------------------------------


def test_config_validates_the_new_options() -> None:
    with pytest.raises(ConfigError, match="resample='over'.*'none' or 'oversample'"):
        TrainConfig(resample="over")
    with pytest.raises(ConfigError, match="stage2_epochs=-1 must be a whole number"):
        TrainConfig(stage2_epochs=-1)
    with pytest.raises(ConfigError, match="stage2_lr=0 must be positive"):
        TrainConfig(stage2_lr=0)


@pytest.fixture(scope="module")
def breastmnist() -> tuple[TrainConfig, Any]:
    config = TrainConfig(**BREASTMNIST_SHORT_RUN, method="ce")
    return config, prepare_data(config, None, progress=False)


def test_oversampling_gives_every_class_the_majority_count_per_epoch(breastmnist) -> None:
    config, prepared = breastmnist
    labels = prepared.labels("train")
    counts = np.bincount(labels)
    assert counts.min() < counts.max()  # BreastMNIST is imbalanced (malignant 147 / 399)
    sampler = build_batch_sampler(config, get_method("ce+resample"), prepared)
    assert isinstance(sampler, OversampledBatchSampler)
    assert isinstance(sampler.sampler, ShuffledBatchSampler)
    sampler.set_epoch(3)
    drawn = np.concatenate([np.asarray(batch) for batch in sampler])
    assert len(drawn) == len(counts) * counts.max() and drawn.max() < len(labels)
    assert np.bincount(labels[drawn]).tolist() == [counts.max()] * len(counts)
    assert set(drawn) == set(range(len(labels)))  # every original image, copies on top
    # The config can ask any method for it; the split itself is untouched.
    ce = build_batch_sampler(config.replace(resample="oversample"), get_method("ce"), prepared)
    assert len(ce) == len(sampler)
    assert len(build_batch_sampler(config, get_method("ce"), prepared)) < len(sampler)


def test_linear_probe_draws_class_balanced_batches(breastmnist) -> None:
    config, prepared = breastmnist
    sampler = build_batch_sampler(config, get_method("linear-probe"), prepared)
    assert isinstance(sampler, ClassBalancedBatchSampler)
    drawn = np.concatenate([np.asarray(b) for epoch in range(20) for b in _epoch(sampler, epoch)])
    share = np.bincount(prepared.labels("train")[drawn]) / len(drawn)
    np.testing.assert_allclose(share, [0.5, 0.5], atol=0.03)
    with pytest.raises(ConfigError, match="Did you mean: balanced"):
        build_batch_sampler(config.replace(sampler="balance"), get_method("ce"), prepared)


def _epoch(sampler: Any, epoch: int) -> list[list[int]]:
    sampler.set_epoch(epoch)
    return list(sampler)


def test_supcon_trains_on_two_contrastive_views(breastmnist) -> None:
    _, prepared = breastmnist
    views, _, _ = prepared.training_dataset(get_method("supcon"))[0]
    assert views.shape == (2, 3, 28, 28) and not torch.equal(views[0], views[1])
    single, _, _ = prepared.training_dataset(get_method("ce"))[0]
    assert single.shape == (3, 28, 28)
    evaluated, _, _ = prepared.dataset("test", augment=False)[0]
    assert evaluated.shape == (3, 28, 28)


def test_networks_follow_the_spec() -> None:
    config = TrainConfig(**BREASTMNIST_SHORT_RUN, method="supcon", embedding_dim=16)
    supcon = build_network(config, get_method("supcon"), 2, load_weights=False)
    assert isinstance(supcon.embedding_head, torch.nn.Sequential) and supcon.classifier is None
    ldam = build_network(config.replace(method="ldam"), get_method("ldam"), 2, load_weights=False)
    logits = ldam(torch.randn(4, 3, 28, 28))[1]
    assert logits.abs().max() <= 30 + 1e-4  # cosines × LDAM's scale
    with pytest.raises(ConfigError, match="'linear-probe'.*--init-from.*supcon.*RUN/stage1"):
        build_network(config.replace(method="linear-probe"), get_method("linear-probe"), 2)


def test_stage_two_config_keeps_everything_but_the_stage_settings() -> None:
    config = TrainConfig(
        method="supcon+resample",
        epochs=7,
        lr=0.05,
        stage2_epochs=2,
        stage2_lr=0.5,
        sampler="stratified",
        method_options={"temperature": 0.5},
        seed=4,
    )
    second = next_stage_config(config, Path("runs/x/stage1"))
    assert (second.method, second.init_from, second.epochs, second.lr) == (
        "linear-probe",
        str(Path("runs/x/stage1")),
        2,
        0.5,
    )
    assert (second.sampler, second.resample, second.method_options) == (None, "none", {})
    assert (second.seed, second.batch_size, second.data) == (4, config.batch_size, config.data)
    defaults = next_stage_config(TrainConfig(method="supcon", epochs=3, lr=0.02), Path("s"))
    assert (defaults.epochs, defaults.lr) == (3, 0.02)
    with pytest.raises(ConfigError, match="'ce' has one stage"):
        next_stage_config(TrainConfig(method="ce"), Path("s"))


# --- two-stage runs -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def supcon_run(tiny_options: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished two-stage supcon run (shared: tests must not change it)."""
    out = tmp_path_factory.mktemp("runs") / "supcon"
    medknn.train(
        {**tiny_options, "method": "supcon", "epochs": 2, "stage2_epochs": 1}, out, progress=False
    )
    return out


def test_supcon_run_holds_stage_one_and_is_a_normal_finished_run(supcon_run: Path) -> None:
    first = RunDir(supcon_run / "stage1")
    assert read_json(first.status)["status"] == "complete" and first.knn.exists()
    assert TrainConfig.from_yaml(first.config).method == "supcon"
    assert len(read_json(first.history)) == 2
    second = TrainConfig.from_yaml(supcon_run / "config.yaml")
    assert (second.method, second.init_from, second.epochs) == ("linear-probe", str(first.path), 1)
    status = read_json(supcon_run / "status.json")
    assert status["wall_seconds"] == pytest.approx(sum(status["stage_wall_seconds"]), abs=0.11)
    metrics = read_json(supcon_run / "metrics.json")
    assert {"accuracy", "macro_f1", "f1_majority", "f1_middle", "f1_minority"} <= set(metrics)

    run = medknn.load_run(supcon_run)
    assert run.spec.name == "linear-probe" and run.network.backbone_frozen
    assert medknn.evaluate(supcon_run, progress=False)["accuracy"] == metrics["accuracy"]
    stage_one = medknn.load_run(first.path)
    assert stage_one.spec.prediction == "knn" and stage_one.network.embedding_dim == 16


def test_stage_two_leaves_the_backbone_bit_identical(supcon_run: Path) -> None:
    first = backbone_tensors(supcon_run / "stage1" / "model.safetensors")
    second = backbone_tensors(supcon_run / "model.safetensors")
    assert first.keys() == second.keys()
    assert any("running_mean" in k for k in first) and any(
        "num_batches_tracked" in k for k in first
    )
    changed = [k for k in first if not torch.equal(first[k], second[k])]
    assert changed == []
    checkpoint = backbone_tensors(supcon_run / "checkpoints" / "last.safetensors")
    assert checkpoint == {} or all(torch.equal(first[k], v) for k, v in checkpoint.items())


def test_stage_two_reruns_alone_on_a_saved_stage_one(
    supcon_run: Path,
    tmp_path: Path,
    train_tiny: Callable[..., TrainedRun],
    tiny_options: dict[str, Any],
) -> None:
    stage_one = supcon_run / "stage1"
    run = train_tiny(tmp_path / "probe", method="linear-probe", init_from=str(stage_one))
    assert run.spec.name == "linear-probe" and not (tmp_path / "probe" / "stage1").exists()
    first = backbone_tensors(stage_one / "model.safetensors")
    again = backbone_tensors(tmp_path / "probe" / "model.safetensors")
    assert all(torch.equal(first[k], again[k]) for k in first)
    # A finished two-stage run is loaded, not retrained.
    before = (supcon_run / "model.safetensors").stat().st_mtime_ns
    options = {**tiny_options, "method": "supcon", "epochs": 2, "stage2_epochs": 1}
    medknn.train(options, supcon_run, progress=False)
    assert (supcon_run / "model.safetensors").stat().st_mtime_ns == before


def test_a_copied_two_stage_run_is_reused_where_it_now_lives(
    supcon_run: Path, tmp_path: Path, tiny_options: dict[str, Any]
) -> None:
    """Stage 2's init_from names the stage-1 folder inside the run, so it moves with the run."""
    copy = tmp_path / "copied"
    shutil.copytree(supcon_run, copy)
    before = (copy / "model.safetensors").stat().st_mtime_ns
    options = {**tiny_options, "method": "supcon", "epochs": 2, "stage2_epochs": 1}
    medknn.train(options, copy, progress=False)
    assert (copy / "model.safetensors").stat().st_mtime_ns == before


def test_a_probe_started_elsewhere_is_not_taken_for_a_stage_two(
    supcon_run: Path,
    tmp_path: Path,
    train_tiny: Callable[..., TrainedRun],
    tiny_options: dict[str, Any],
) -> None:
    out = tmp_path / "probe"
    train_tiny(out, method="linear-probe", init_from=str(supcon_run / "stage1"), epochs=1)
    options = {**tiny_options, "method": "supcon", "epochs": 2, "stage2_epochs": 1}
    with pytest.raises(ConfigError, match="other settings.*init_from"):
        medknn.train(options, out, progress=False)
    assert not (out / "stage1").exists()


def test_a_linear_probe_on_another_split_of_the_same_data_is_refused(
    supcon_run: Path, tmp_path: Path, train_tiny: Callable[..., TrainedRun]
) -> None:
    with pytest.raises(ConfigError, match="test images of this run.*were training or valid"):
        train_tiny(
            tmp_path / "leak",
            method="linear-probe",
            init_from=str(supcon_run / "stage1"),
            split="stratified",
        )


def test_more_stage_one_epochs_on_a_finished_run_are_refused(
    supcon_run: Path, tiny_options: dict[str, Any]
) -> None:
    options = {**tiny_options, "method": "supcon", "epochs": 3, "stage2_epochs": 1}
    with pytest.raises(ConfigError, match="stage 2 trained on the 2 epochs.*stale"):
        medknn.train(options, supcon_run, progress=False)


def test_a_foreign_directory_is_refused_before_stage_one(
    tmp_path: Path, train_tiny: Callable[..., TrainedRun]
) -> None:
    out = tmp_path / "notes"
    out.mkdir()
    (out / "todo.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a medknn run"):
        train_tiny(out, method="supcon")
    assert not (out / "stage1").exists()


def test_interrupted_stages_resume(
    tmp_path: Path, train_tiny: Callable[..., TrainedRun], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C after stage 1's first epoch, then after stage 2's: each rerun carries on."""
    end_epoch = Trainer._end_epoch
    calls = {"n": 0}

    def interrupt_once_per_stage(self: Trainer, epoch: int, record: dict) -> None:
        end_epoch(self, epoch, record)
        calls["n"] += 1
        if calls["n"] in (1, 3):  # stage 1 epoch 1; stage 2 epoch 1 (after a rerun)
            raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "_end_epoch", interrupt_once_per_stage)
    out = tmp_path / "run"
    options = {"method": "supcon", "epochs": 2, "stage2_epochs": 2}
    for _ in range(2):
        with pytest.raises(KeyboardInterrupt):
            train_tiny(out, **options)
    assert read_json(out / "stage1" / "status.json")["status"] == "complete"
    assert "resuming after epoch 1" in (out / "stage1" / "train.log").read_text()
    assert not (out / "status.json").exists() and len(read_json(out / "history.json")) == 1

    run = train_tiny(out, **options)
    assert "resuming after epoch 1" in (out / "train.log").read_text()
    assert [e["epoch"] for e in read_json(out / "history.json")] == [1, 2]
    assert len(read_json(out / "stage1" / "history.json")) == 2
    assert run.spec.name == "linear-probe"


# --- every new method on real data --------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("method", ["ce+resample", "focal", "ldam", "supcon", "supcon+resample"])
def test_method_trains_one_short_epoch_on_breastmnist(tmp_path: Path, method: str) -> None:
    run = tmp_path / "run"
    medknn.train({**BREASTMNIST_SHORT_RUN, "method": method}, run, progress=False)
    (epoch,) = read_json(run / "history.json")
    metrics = read_json(run / "metrics.json")
    assert np.isfinite(epoch["loss"]) and metrics["auc"] is not None
    # BreastMNIST's 399 benign/normal and 147 malignant training images: majority and middle.
    assert metrics["frequency_groups"] == {
        "majority": ["normal+benign"],
        "middle": ["malignant"],
        "minority": [],
    }
    assert metrics["f1_minority"] is None
    if method.startswith("supcon"):
        (first,) = read_json(run / "stage1" / "history.json")
        assert np.isfinite(first["loss"]) and first["loss"] > 0
    if method == "supcon":
        probe = tmp_path / "probe"
        medknn.train(
            {**BREASTMNIST_SHORT_RUN, "method": "linear-probe", "init_from": str(run / "stage1")},
            probe,
            progress=False,
        )
        assert read_json(probe / "metrics.json")["n"] == metrics["n"]
