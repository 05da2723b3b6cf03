"""The training recipe: parameter groups, warm-up + cosine schedule, EMA, early stopping,
linear probing first, augmentation presets, automatic epochs, test-time augmentation,
ensembles, and that the paper-like benchmark specs do not follow the recipe's defaults."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import save_file

import medknn
from medknn.data.transforms import AUGMENTATIONS, build_transforms
from medknn.io import load_tensors, read_json
from medknn.models import create_backbone, create_network
from medknn.prediction.embed import compute_outputs, network_outputs
from medknn.runs import RunDir, TrainConfig
from medknn.runs.config import OPTIONS_BEFORE_THE_RECIPE
from medknn.training.checkpoint import load_checkpoint
from medknn.training.optim import LearningRateSchedule, build_optimizer

SPECS = sorted((Path(__file__).parents[1] / "benchmarks" / "specs").glob("*.yaml"))
# TrainConfig's defaults before the recipe (2026-12-04): a spec that relied on one pins it.
DEFAULTS_BEFORE_THE_RECIPE = {
    **OPTIONS_BEFORE_THE_RECIPE,
    "backbone": "resnet18",
    "image_size": 28,
    "epochs": 20,
    "optimizer": "sgd",
    "lr": 0.01,
    "weight_decay": 5e-4,
}


def _network() -> torch.nn.Module:
    return create_network("resnet10t", embedding_dim=8, num_classes=3, small_input=True)


def test_a_pretrained_backbone_learns_at_the_scaled_rate() -> None:
    config = TrainConfig(lr=1e-3, backbone_lr_scale=0.3)
    network = _network()
    groups = build_optimizer(config, network, pretrained_backbone=True).param_groups
    assert [g["name"] for g in groups] == ["backbone", "head"]
    assert groups[0]["lr"] == pytest.approx(3e-4) and groups[1]["lr"] == pytest.approx(1e-3)
    backbone = {id(p) for p in network.backbone.parameters()}
    assert {id(p) for p in groups[0]["params"]} == backbone
    assert not backbone & {id(p) for p in groups[1]["params"]}
    # From scratch, every layer is new: one rate.
    scratch = build_optimizer(config, network, pretrained_backbone=False).param_groups
    assert len(scratch) == 1 and scratch[0]["lr"] == 1e-3


def test_warm_up_then_cosine_decay() -> None:
    config = TrainConfig(lr=1e-3, epochs=4, warmup_epochs=1, backbone_lr_scale=1.0)
    optimizer = build_optimizer(config, _network())
    schedule = LearningRateSchedule(config, optimizer, updates_per_epoch=10)
    rates = []
    for update in range(1, 41):
        schedule.after_update(update)
        rates.append(optimizer.param_groups[0]["lr"])
    assert rates[:10] == sorted(rates[:10]) and rates[9] == pytest.approx(1e-3, rel=0.01)
    assert rates[10:] == sorted(rates[10:], reverse=True) and rates[-1] < 1e-5


def test_epochs_null_trains_enough_epochs_for_the_data() -> None:
    config = TrainConfig(epochs=None)
    assert config.resolved_epochs(6) == 100  # a few hundred images: many passes
    assert config.resolved_epochs(30) == 20
    assert config.resolved_epochs(200) == 12
    assert TrainConfig(epochs=3).resolved_epochs(6) == 3


@pytest.mark.parametrize("name", AUGMENTATIONS)
def test_every_augmentation_preset_gives_the_input_size(name: str) -> None:
    transform = build_transforms(48, train=True, mean=(0.5,) * 3, std=(0.5,) * 3, augmentation=name)
    for channels in (1, 3):
        image = torch.randint(0, 255, (channels, 55, 55), dtype=torch.uint8)
        assert transform(image).shape == (3, 48, 48)


def test_an_unknown_augmentation_is_named_with_the_choices() -> None:
    with pytest.raises(medknn.ConfigError, match="augmentation='flipz'"):
        TrainConfig(augmentation="flipz")


def _scripted(monkeypatch: pytest.MonkeyPatch, scores: list[float]) -> list[dict]:
    """Validation returns ``scores`` in turn and records the weights it was shown."""
    import medknn.run_training

    seen: list[dict] = []
    queue = list(scores)

    def make_validator(*args, **kwargs):
        def validate(network):
            seen.append({k: v.clone() for k, v in network.state_dict().items()})
            return {"mcr": queue.pop(0), "accuracy": 0.0}

        return validate

    monkeypatch.setattr(medknn.run_training, "make_validator", make_validator)
    return seen


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_ema_weights_are_kept_when_they_validate_better(
    tmp_path: Path, train_tiny: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _scripted(monkeypatch, [0.5, 0.8, 0.6, 0.7])  # epoch 1: raw, EMA; epoch 2: raw, EMA
    run = RunDir(tmp_path / "run")
    train_tiny(run.path, epochs=2, ema_decay=0.9, decision="plain")
    history = medknn.history(run.path)
    assert [r["val_mcr"] for r in history] == [0.5, 0.6]
    assert [r["ema_val_mcr"] for r in history] == [0.8, 0.7]
    assert not _same(seen[0], seen[1])  # the average is not the raw network
    assert _same(load_tensors(run.model), seen[1])  # epoch 1's average: the best of all four
    assert history[0]["best_is_ema"] == 1.0 and "best" not in history[1]


def test_early_stopping_ends_training_and_says_why(
    tmp_path: Path, train_tiny: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    _scripted(monkeypatch, [0.9, 0.5, 0.4, 0.3, 0.2])
    run = RunDir(tmp_path / "run")
    train_tiny(run.path, epochs=5, ema_decay=None, patience=2, decision="plain")
    history = medknn.history(run.path)
    assert len(history) == 3 and history[-1]["stopped_early"] == 1.0
    assert "stopping early after epoch 3" in run.log.read_text()
    # The same command again finds the run complete and trains nothing more.
    train_tiny(run.path, epochs=5, ema_decay=None, patience=2, decision="plain")
    assert len(medknn.history(run.path)) == 3


def test_linear_probing_first_keeps_the_backbone_fixed_for_its_epochs(
    tmp_path: Path, train_tiny: Callable
) -> None:
    options = {"ema_decay": None, "decision": "plain", "lp_epochs": 1}
    train_tiny(tmp_path / "start", epochs=0, **options)
    train_tiny(tmp_path / "probed", epochs=1, **options)
    train_tiny(tmp_path / "tuned", epochs=2, **options)
    start, probed = (load_tensors(RunDir(tmp_path / n).model) for n in ("start", "probed"))
    tuned = load_checkpoint(RunDir(tmp_path / "tuned").last_checkpoint)["model"]
    backbone = [k for k in start if k.startswith("backbone.")]
    head = [k for k in start if not k.startswith("backbone.")]
    # Probing: the backbone (BatchNorm statistics too) stays as it started; the head learns.
    assert all(torch.equal(start[k], probed[k]) for k in backbone)
    assert any(not torch.equal(start[k], probed[k]) for k in head)
    # Fine-tuning: then the backbone learns too.
    assert any(not torch.equal(probed[k], tuned[k]) for k in backbone)


def test_tta_with_identical_views_equals_no_tta(
    weighted_ce_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import medknn.prediction.embed as embed

    network = medknn.load_run(weighted_ce_run).network
    batch = torch.randn(4, 3, 28, 28)
    plain_embedding, plain_logits = network_outputs(network, batch, "none")
    monkeypatch.setattr(embed, "tta_views", lambda inputs, tta: [inputs, inputs.clone()])
    embedding, logits = network_outputs(network, batch, "flips")
    torch.testing.assert_close(embedding, plain_embedding)
    torch.testing.assert_close(torch.softmax(logits, 1), torch.softmax(plain_logits, 1))


def test_flip_tta_averages_the_image_and_its_mirror(deepknn_run: Path) -> None:
    network = medknn.load_run(deepknn_run).network
    dataset = [(torch.randn(3, 28, 28), 0, 0) for _ in range(3)]
    flipped = [(image.flip(-1), label, i) for image, label, i in dataset]
    with_tta, _ = compute_outputs(network, dataset, tta="flips")
    mirrored, _ = compute_outputs(network, flipped, tta="flips")
    np.testing.assert_allclose(with_tta, mirrored, atol=1e-5)  # symmetric in the flip
    assert not np.allclose(with_tta, compute_outputs(network, dataset)[0], atol=1e-5)


def test_an_ensemble_of_one_run_equals_that_run(
    tmp_path: Path, weighted_ce_run: Path, png_files: list[Path]
) -> None:
    metrics = medknn.ensemble([weighted_ce_run], tmp_path / "ens", progress=False)
    single = read_json(weighted_ce_run / "metrics.json")
    run = medknn.load_run(weighted_ce_run)
    ensemble = medknn.load_run(tmp_path / "ens")
    # Its own decision rule is chosen on the same validation split, so compare it without.
    ensemble.decision = None
    for mine, theirs in zip(
        ensemble.predict_files(png_files), run.predict_files(png_files), strict=True
    ):
        assert mine.probabilities == pytest.approx(theirs.probabilities)
        assert mine.neighbours == theirs.neighbours and mine.agreement == 1.0
    assert metrics["n"] == single["n"] and metrics["agreement"] == 1.0


def test_an_ensemble_predicts_with_every_members_evidence(
    tmp_path: Path, train_tiny: Callable, png_files: list[Path]
) -> None:
    # The tiny npz has an official split: seeds 0 and 1 share it (split.json records each seed).
    members = [train_tiny(tmp_path / f"seed{s}", method="deepknn", seed=s) for s in (0, 1)]
    medknn.ensemble([m.path for m in members], tmp_path / "ens", progress=False)
    predictions = medknn.predict(tmp_path / "ens", png_files)
    assert len(predictions) == 2
    for p in predictions:
        assert len(p.members) == 2 and all(m.neighbours for m in p.members)
        assert sum(p.probabilities.values()) == pytest.approx(1.0)
    evaluated = medknn.evaluate(tmp_path / "ens", progress=False)
    assert evaluated["method"] == "ensemble" and 0 <= evaluated["agreement"] <= 1
    # Its report shows every shown case once per member, with that member's nearest cases.
    page = medknn.report(tmp_path / "ens", progress=False)
    shown = read_json(page.parent / "report.json")
    assert page == tmp_path / "ens" / "report" / "index.html"
    assert shown["metrics"]["agreement"] == pytest.approx(evaluated["agreement"])
    assert len(shown["cases"]) % 2 == 0 and shown["cases"]
    for first, second in zip(shown["cases"][::2], shown["cases"][1::2], strict=True):
        assert "member 1 (seed0)" in first["id"] and "member 2 (seed1)" in second["id"]
        assert first["neighbours"] and second["neighbours"]
    assert "agreement between members" in page.read_text(encoding="utf-8")


def test_runs_of_other_splits_cannot_form_an_ensemble(
    tmp_path: Path, runs_of_two_splits: list
) -> None:
    with pytest.raises(medknn.ConfigError, match="another split"):
        paths = [r.path for r in runs_of_two_splits]
        medknn.ensemble(paths, tmp_path / "ens", progress=False)


@pytest.mark.parametrize("spec", SPECS, ids=[s.stem for s in SPECS])
def test_a_paper_like_spec_does_not_follow_the_recipe_defaults(spec: Path) -> None:
    """Changing a default must change no reproduction: a spec either pins each option whose
    default changed, or is a quality spec, which is meant to follow the defaults."""
    values = yaml.safe_load(spec.read_text())
    if spec.stem.startswith("quality_"):
        return
    base = values.get("base", values)  # a benchmark spec, or a train config
    defaults = TrainConfig().to_dict()
    changed = {k for k, v in DEFAULTS_BEFORE_THE_RECIPE.items() if defaults[k] != v}
    unpinned = sorted(k for k in changed if k not in base)
    assert not unpinned, f"{spec.name} relies on changed defaults: {unpinned}"


def test_a_killed_cosine_run_resumes_to_the_same_weights(tmp_path: Path) -> None:
    """kill -9 mid-training, the same command again: schedule, parameter groups, EMA and
    weights continue exactly as in an uninterrupted run (all on one thread)."""
    rng = np.random.default_rng(0)
    arrays = {}
    for part, n in (("train", 60), ("val", 12), ("test", 12)):
        labels = np.arange(n) % 3
        images = (
            rng.integers(0, 60, size=(n, 28, 28), dtype=np.uint8) + (labels * 60)[:, None, None]
        )
        arrays[f"{part}_images"] = images.astype(np.uint8)
        arrays[f"{part}_labels"] = labels.astype(np.uint8)[:, None]
    np.savez(tmp_path / "tiny.npz", **arrays)
    # A backbone from a weights file counts as pretrained: two parameter groups to resume.
    weights = tmp_path / "backbone.safetensors"
    save_file(create_backbone("resnet10t", small_input=True).state_dict(), str(weights))
    options = {
        "data": str(tmp_path / "tiny.npz"),
        "method": "weighted-ce",
        "backbone": "resnet10t",
        "weights": str(weights),
        "image_size": 28,
        "epochs": 6,
        "batch_size": 12,
        "decision": "plain",
        "backbone_lr_scale": 0.3,  # two parameter groups to resume
    }
    args = [f"--set={key}={value}" for key, value in options.items()]
    env = {**os.environ, "MEDKNN_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}

    def command(out: Path) -> list[str]:
        return [sys.executable, "-m", "medknn", "train", "--out", str(out), "--quiet", *args]

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the subprocesses, so that the arithmetic is the same
    try:
        medknn.train({**options, "data_options": {}}, tmp_path / "whole", progress=False)
    finally:
        torch.set_num_threads(threads)
    process = subprocess.Popen(command(tmp_path / "killed"), env=env, stderr=subprocess.PIPE)
    # history.json is written just after the epoch's checkpoint: both exist once it does.
    history = tmp_path / "killed" / "history.json"
    deadline = time.monotonic() + 120
    while not history.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert process.poll() is None, process.stderr.read().decode()
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = len(json.loads((tmp_path / "killed" / "history.json").read_text()))
    assert 1 <= done < 6
    subprocess.run(command(tmp_path / "killed"), env=env, check=True, capture_output=True)

    whole, killed = RunDir(tmp_path / "whole"), RunDir(tmp_path / "killed")
    assert _same(load_tensors(whole.model), load_tensors(killed.model))
    last = [load_checkpoint(r.last_checkpoint) for r in (whole, killed)]
    assert _same(last[0]["model"], last[1]["model"]) and _same(last[0]["ema"], last[1]["ema"])
    rates = [[r["lr"] for r in medknn.history(r.path)] for r in (whole, killed)]
    assert rates[0] == rates[1] and rates[0][0] > rates[0][-1]
    groups = last[1]["optimizer"]["param_groups"]
    assert [g["name"] for g in groups] == ["backbone", "head"]


def test_a_run_from_before_tta_auto_resumes_under_the_new_default(
    tmp_path: Path, train_tiny: Callable
) -> None:
    train_tiny(tmp_path / "run", epochs=1, schedule="step", tta="none")
    run = train_tiny(tmp_path / "run", epochs=2, schedule="step", tta="auto")
    assert len(medknn.history(run.path)) == 2
    assert run.tta in ("none", "flips")


def test_channels_last_computes_what_contiguous_memory_computes() -> None:
    torch.manual_seed(0)
    network = create_network("resnet18", embedding_dim=16, num_classes=3, pretrained=False).eval()
    images = torch.randn(2, 3, 32, 32)
    embedding, logits = network(images)
    network.use_channels_last()
    convs = [m.weight for m in network.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    fast_embedding, fast_logits = network(images)
    torch.testing.assert_close(fast_embedding, embedding, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(fast_logits, logits, atol=1e-4, rtol=1e-4)


def test_memory_format_follows_the_config_and_saved_weights_load_either_way(
    weighted_ce_run: Path,
) -> None:
    from medknn.runs.build import uses_channels_last

    assert uses_channels_last(TrainConfig(data="x", backbone="tf_efficientnet_lite0"))
    assert not uses_channels_last(TrainConfig(data="x", memory_format="contiguous"))
    assert not uses_channels_last(TrainConfig(data="x", backbone="mlp"))
    with pytest.raises(medknn.ConfigError, match="memory_format"):
        TrainConfig(data="x", memory_format="nhwc")
    run = medknn.load_run(weighted_ce_run)
    assert run.network.channels_last == (run.config.memory_format != "contiguous")


def test_bf16_autocast_trains_float32_weights_differently(
    tmp_path: Path, train_tiny: Callable
) -> None:
    exact = train_tiny(tmp_path / "fp32", epochs=1)
    rounded = train_tiny(tmp_path / "bf16", epochs=1, precision="bf16")
    weights = [load_tensors(RunDir(r.path).model) for r in (exact, rounded)]
    assert all(t.dtype == torch.float32 for t in weights[1].values() if t.is_floating_point())
    assert any(not torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert np.isfinite(medknn.history(rounded.path)[0]["loss"])
    with pytest.raises(medknn.ConfigError, match="precision"):
        TrainConfig(data="x", precision="fp16")


def test_a_run_saved_before_the_recipe_still_loads_predicts_evaluates_and_reports(
    deepknn_run: Path, png_files: list[Path], tmp_path: Path
) -> None:
    # A run directory as medknn wrote it before the recipe (the reproductions in docs/results):
    # no decision rule, no manifest, and a config.yaml without the options
    # added since, which are read back with the values it trained with.
    old = tmp_path / "old-run"
    shutil.copytree(deepknn_run, old)
    for name in ("decision.json", "manifest.json"):
        (old / name).unlink()
    config = yaml.safe_load((old / "config.yaml").read_text())
    newer = set(OPTIONS_BEFORE_THE_RECIPE) | {"memory_format", "precision", "threads"}
    (old / "config.yaml").write_text(
        yaml.safe_dump({k: v for k, v in config.items() if k not in newer})
    )

    run = medknn.load_run(old)
    assert run.decision is None and run.tta == "none" and run.config.decision == "plain"
    assert run.config.memory_format == "contiguous"
    predictions = run.predict_files(png_files)
    assert [len(p.neighbours) for p in predictions] == [run.knn.n_neighbors] * len(png_files)
    metrics = medknn.evaluate(old, progress=False)
    assert metrics["n"] == read_json(RunDir(deepknn_run).metrics)["n"]
    assert "decision" not in metrics  # scored with the plain rule it was trained with
    assert medknn.report(old, progress=False).is_file()
