"""Training layer: config validation, checkpoints, resume, the NaN guard and the best checkpoint."""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import medknn
import medknn.run_training
from medknn.errors import ConfigError, TrainingError
from medknn.io import load_tensors, read_json
from medknn.methods import Objective
from medknn.runs import RunDir, TrainConfig
from medknn.training.checkpoint import (
    flatten_state,
    load_checkpoint,
    save_checkpoint,
    unflatten_state,
)

# --- (a) TrainConfig validation ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("image_size", 16),
        ("image_size", 300),
        ("image_size", 64.0),
        ("lr", 0),
        ("lr", -0.1),
        ("optimizer", "adamx"),
        ("epochs", -1),
        ("batch_size", 1),
        ("classes_per_batch", 1),
        ("samples_per_class", 1),
        ("num_positives", 0),
        ("k_predict", 0),
        ("margin", -0.5),
        ("knn_weights", "gaussian"),
        ("embedding_dim", 1),
        ("val_fraction", 1.0),
        ("test_fraction", 0.0),
    ],
)
def test_bad_option_value_raises_config_error_naming_it(option: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=option):
        TrainConfig(**{option: value})


def test_unknown_optimizer_suggests_close_names() -> None:
    with pytest.raises(ConfigError, match="Did you mean: adam, adamw"):
        TrainConfig(optimizer="adamx")


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("lr", "fast"),
        ("margin", "wide"),
        ("data_options", "fast"),
    ],
)
def test_option_of_the_wrong_type_raises_config_error(option: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=option):
        TrainConfig.from_dict({option: value})


def test_from_dict_rejects_an_unknown_option_with_a_suggestion() -> None:
    with pytest.raises(ConfigError, match="unknown option 'epoch'.*Did you mean: epochs"):
        TrainConfig.from_dict({"epoch": 3})


def test_from_yaml_names_the_file_and_the_unknown_option(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("method: deepknn\nlearning_rate: 0.1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown option 'learning_rate'") as error:
        TrainConfig.from_yaml(path)
    assert str(path) in str(error.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [("method: [deepknn\n", "not valid YAML"), ("- deepknn\n", "mapping")],
)
def test_from_yaml_rejects_malformed_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_yaml(path)
    with pytest.raises(ConfigError, match="does not exist"):
        TrainConfig.from_yaml(tmp_path / "missing.yaml")


def test_yaml_round_trip_keeps_every_option(tmp_path: Path) -> None:
    config = TrainConfig(method="triplet", lr=0.003, data_options={"class_names": ["a", "b"]})
    path = tmp_path / "config.yaml"
    path.write_text(config.to_yaml(), encoding="utf-8")
    assert TrainConfig.from_yaml(path) == config
    assert config.replace(epochs=3).epochs == 3
    with pytest.raises(ConfigError, match="epochs"):
        config.replace(epochs=-3)


@pytest.mark.parametrize(
    ("options", "num_classes", "shape"),
    [
        ({"batch_size": 90, "classes_per_batch": 9}, 7, (7, 12)),
        ({"batch_size": 90, "classes_per_batch": 9}, 2, (2, 45)),
        ({"batch_size": 90, "classes_per_batch": 9}, 20, (9, 10)),
        ({"batch_size": 90, "classes_per_batch": 9, "samples_per_class": 4}, 2, (2, 4)),
        ({"batch_size": 4, "classes_per_batch": 9}, 7, (7, 2)),
    ],
)
def test_stratified_batch_shape(options: dict, num_classes: int, shape: tuple[int, int]) -> None:
    assert TrainConfig(**options).stratified_batch_shape(num_classes) == shape


def test_small_input_defaults_on_up_to_32_px() -> None:
    assert TrainConfig(image_size=32).resolved_small_input
    assert not TrainConfig(image_size=33).resolved_small_input
    assert TrainConfig(image_size=224, small_input=True).resolved_small_input


# --- (b) checkpoints ------------------------------------------------------------------------


def _stepped(optimizer_class: type[torch.optim.Optimizer], **options: Any):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2))
    optimizer = optimizer_class(model.parameters(), lr=0.1, **options)
    for _ in range(2):
        optimizer.zero_grad()
        model(torch.randn(8, 4)).square().mean().backward()
        optimizer.step()
    return model, optimizer


def _assert_same(a: Any, b: Any) -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b)  # keys keep their type (int) and order
        for key in a:
            _assert_same(a[key], b[key])
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same(x, y)
    else:
        assert a == b and type(a) is type(b)


@pytest.mark.parametrize(
    ("optimizer_class", "options"),
    [(torch.optim.SGD, {"momentum": 0.9, "weight_decay": 5e-4}), (torch.optim.Adam, {})],
)
def test_checkpoint_round_trip_restores_an_optimizer_exactly(
    tmp_path: Path, optimizer_class: type[torch.optim.Optimizer], options: dict
) -> None:
    model, optimizer = _stepped(optimizer_class, **options)
    state = {
        "epoch": 2,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "rng": torch.get_rng_state(),
        "history": [{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.25, "best": 1.0}],
        "best_score": None,
    }
    tensors: dict[str, torch.Tensor] = {}
    _assert_same(unflatten_state(flatten_state(state, "s", tensors), tensors), state)
    assert tensors, "the optimizer's buffers must be stored as tensors"

    path = save_checkpoint(tmp_path / "checkpoints" / "last.safetensors", state)
    loaded = load_checkpoint(path)
    _assert_same(loaded, state)

    # The restored optimizer continues exactly like the original one.
    clone = copy.deepcopy(model)
    clone_optimizer = optimizer_class(clone.parameters(), lr=0.5, **options)
    clone.load_state_dict(loaded["model"])
    clone_optimizer.load_state_dict(loaded["optimizer"])
    batch = torch.randn(8, 4)
    for net, opt in ((model, optimizer), (clone, clone_optimizer)):
        opt.zero_grad()
        net(batch).square().mean().backward()
        opt.step()
    for a, b in zip(model.parameters(), clone.parameters(), strict=True):
        assert torch.equal(a, b)


def test_load_checkpoint_refuses_a_plain_safetensors_file(tmp_path: Path) -> None:
    path = tmp_path / "weights.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(TrainingError, match="not a medknn checkpoint"):
        load_checkpoint(path)


# --- (c, d) resume ------------------------------------------------------------------------


def _comparable(history: list[dict]) -> list[dict]:
    """History records without timings, which differ between two identical runs."""
    keys = ("epoch", "loss", "lr", "val_mcr", "best")
    return [{key: record.get(key) for key in keys} for record in history]


def _same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)


@pytest.mark.parametrize("method", ["deepknn", "weighted-ce"])
def test_resumed_training_equals_uninterrupted_training(
    tmp_path: Path, train_tiny: Callable, method: str
) -> None:
    # Stopping after one epoch of two stands in for an interruption only where the schedule
    # does not depend on the number of epochs (the cosine one is tested in test_kill_resume).
    train_tiny(tmp_path / "whole", method=method, epochs=2, schedule="step")
    train_tiny(tmp_path / "resumed", method=method, epochs=1, schedule="step")
    train_tiny(tmp_path / "resumed", method=method, epochs=2, schedule="step")

    whole, resumed = RunDir(tmp_path / "whole"), RunDir(tmp_path / "resumed")
    assert _same_tensors(load_tensors(whole.model), load_tensors(resumed.model))
    last_whole, last_resumed = (load_checkpoint(r.last_checkpoint) for r in (whole, resumed))
    assert last_resumed["epoch"] == 2
    assert _same_tensors(last_whole["model"], last_resumed["model"])
    assert [record["epoch"] for record in medknn.history(resumed.path)] == [1, 2]
    assert _comparable(medknn.history(resumed.path)) == _comparable(medknn.history(whole.path))
    assert "resuming after epoch 1" in resumed.log.read_text(encoding="utf-8")
    assert read_json(resumed.status)["status"] == "complete"
    # kNN methods also log the leave-one-out kNN accuracy on the training set (unprefixed).
    training_scores = [record.get("train_knn_accuracy") for record in medknn.history(whole.path)]
    if method == "deepknn":
        assert all(0.0 <= score <= 1.0 for score in training_scores)
    else:
        assert training_scores == [None, None]


def _crash_leftovers(run: RunDir) -> None:
    """Leave only what a crash right after the first checkpoint leaves behind."""
    keep = {run.config, run.split, run.last_checkpoint.parent}
    for path in run.path.iterdir():
        if path not in keep:
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def test_rerun_after_a_crash_completes_the_run(tmp_path: Path, train_tiny: Callable) -> None:
    run = RunDir(tmp_path / "run")
    train_tiny(run.path)
    checkpoint = load_checkpoint(run.last_checkpoint)
    _crash_leftovers(run)

    trained = train_tiny(run.path)

    assert read_json(run.status)["status"] == "complete"
    assert run.metrics.exists() and (run.knn / "knn.json").exists()
    assert _same_tensors(load_tensors(run.model), checkpoint["model"])
    assert trained.class_names == ["benign", "malignant", "normal"]


def test_rerun_after_a_crash_restores_the_history(tmp_path: Path, train_tiny: Callable) -> None:
    run = RunDir(tmp_path / "run")
    train_tiny(run.path)
    _crash_leftovers(run)
    train_tiny(run.path)
    assert [record["epoch"] for record in medknn.history(run.path)] == [1]


# --- (e) NaN guard --------------------------------------------------------------------------


class NaNAfter(Objective):
    """Wraps a real objective and returns NaN from call ``first_bad_call`` on."""

    def __init__(self, objective: Objective, first_bad_call: int) -> None:
        super().__init__()
        self.objective = objective
        self.needs_classifier = objective.needs_classifier
        self.first_bad_call = first_bad_call
        self.calls = 0

    def forward(self, embeddings, logits, labels):
        self.calls += 1
        loss, stats = self.objective(embeddings, logits, labels)
        return (loss * torch.nan if self.calls >= self.first_bad_call else loss), stats


def test_nan_loss_stops_with_epoch_and_step_and_keeps_the_last_checkpoint(
    tmp_path: Path, train_tiny: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_build = medknn.run_training.build_objective
    # Two batches per epoch: the third call is epoch 2, step 1.
    monkeypatch.setattr(
        medknn.run_training, "build_objective", lambda *a, **k: NaNAfter(real_build(*a, **k), 3)
    )
    run = RunDir(tmp_path / "run")

    with pytest.raises(TrainingError, match=r"epoch 2, step 1") as error:
        train_tiny(run.path, epochs=2)

    assert str(run.last_checkpoint) in str(error.value)
    assert "--lr" in str(error.value)
    assert "epoch 2, step 1" in run.log.read_text(encoding="utf-8")
    state = load_checkpoint(run.last_checkpoint)
    assert state["epoch"] == 1 and len(state["history"]) == 1
    assert all(torch.isfinite(value).all() for value in state["model"].values())
    assert not run.status.exists()
    with pytest.raises(ConfigError, match="unfinished"):
        medknn.load_run(run.path)

    monkeypatch.undo()
    train_tiny(run.path, epochs=2)  # the same command resumes from the kept checkpoint
    assert [record["epoch"] for record in medknn.history(run.path)] == [1, 2]


def test_diverging_learning_rate_stops_with_a_training_error(
    tmp_path: Path, train_tiny: Callable
) -> None:
    with pytest.raises(TrainingError, match=r"NaN/inf at epoch 1, step \d.*no checkpoint"):
        train_tiny(tmp_path / "run", lr=1e30)


def test_nan_advice_lower_lr_and_a_new_out_works(tmp_path: Path, train_tiny: Callable) -> None:
    with pytest.raises(TrainingError, match="lower learning rate.*new --out"):
        train_tiny(tmp_path / "run", lr=1e30)
    train_tiny(tmp_path / "run2", lr=0.01)
    assert read_json(RunDir(tmp_path / "run2").status)["status"] == "complete"


# --- (f) claiming the run directory -----------------------------------------------------------


def test_run_dir_with_other_settings_is_refused(tmp_path: Path, train_tiny: Callable) -> None:
    train_tiny(tmp_path / "run", lr=0.01)
    with pytest.raises(ConfigError, match=r"other settings \(lr: 0\.01 → 0\.02\)"):
        train_tiny(tmp_path / "run", lr=0.02)


def test_non_empty_folder_that_is_not_a_run_is_refused(
    tmp_path: Path, train_tiny: Callable
) -> None:
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(ConfigError, match="is not a medknn run"):
        train_tiny(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_finished_run_is_loaded_not_retrained(
    tmp_path: Path, train_tiny: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    train_tiny(tmp_path / "run")

    def refuse(*args, **kwargs):
        raise AssertionError("a finished run must not be trained again")

    monkeypatch.setattr(medknn.run_training, "Trainer", refuse)
    assert train_tiny(tmp_path / "run").path == tmp_path / "run"


def test_failed_start_does_not_block_the_corrected_command(
    tmp_path: Path, train_tiny: Callable
) -> None:
    with pytest.raises(ConfigError, match="Unknown method"):
        train_tiny(tmp_path / "run", method="deepknm")
    train_tiny(tmp_path / "run", method="deepknn")


# --- (g) the best checkpoint --------------------------------------------------------------


def _scripted_validator(monkeypatch: pytest.MonkeyPatch, scores: list[float]) -> list[dict]:
    """Replace validation by ``scores`` (one MCR per call); return the weights seen per call."""
    seen: list[dict] = []

    def make_validator(*args, **kwargs):
        def validate(network: nn.Module) -> dict[str, float]:
            seen.append({k: v.detach().clone() for k, v in network.state_dict().items()})
            return {"mcr": scores[len(seen) - 1], "accuracy": 0.5}

        return validate

    monkeypatch.setattr(medknn.run_training, "make_validator", make_validator)
    return seen


def test_best_checkpoint_is_the_epoch_with_the_best_val_mcr(
    tmp_path: Path, train_tiny: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _scripted_validator(monkeypatch, [0.5, 0.9, 0.7])
    run = RunDir(tmp_path / "run")
    train_tiny(run.path, epochs=3, ema_decay=None, patience=None)

    history = medknn.history(run.path)
    assert [record["val_mcr"] for record in history] == [0.5, 0.9, 0.7]
    assert [record.get("best") for record in history] == [1.0, 1.0, None]
    assert _same_tensors(load_tensors(run.model), seen[1])
    assert not _same_tensors(load_tensors(run.model), seen[2])
    assert _same_tensors(load_checkpoint(run.last_checkpoint)["model"], seen[2])


def test_unvalidated_epochs_do_not_replace_the_best_checkpoint(
    tmp_path: Path, train_tiny: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _scripted_validator(monkeypatch, [0.9, 0.5])  # validated after epochs 2 and 4
    run = RunDir(tmp_path / "run")
    train_tiny(run.path, epochs=4, validate_every=2, ema_decay=None, patience=None)

    history = medknn.history(run.path)
    assert [record.get("val_mcr") for record in history] == [None, 0.9, None, 0.5]
    assert [record.get("best") for record in history] == [None, 1.0, None, None]
    assert _same_tensors(load_tensors(run.model), seen[0])


def test_without_a_validation_set_the_final_weights_are_kept(
    tmp_path: Path, make_image_folder: Callable, train_tiny: Callable
) -> None:
    data = make_image_folder(tmp_path / "images", {"a": 8, "b": 8, "c": 8})
    run = RunDir(tmp_path / "run")
    train_tiny(run.path, data=str(data), data_options={}, val_fraction=0.0, epochs=2)

    history = medknn.history(run.path)
    assert all("val_mcr" not in record and record["best"] == 1.0 for record in history)
    assert _same_tensors(load_tensors(run.model), load_checkpoint(run.last_checkpoint)["model"])


def test_stack_views_puts_each_view_of_the_batch_together_with_repeated_labels() -> None:
    from medknn.training.trainer import stack_views

    inputs = torch.arange(2 * 3 * 1 * 1 * 1, dtype=torch.float32).reshape(3, 2, 1, 1, 1)
    labels = torch.tensor([4, 5, 6])
    stacked, repeated = stack_views(inputs, labels)
    assert stacked.shape == (6, 1, 1, 1)
    assert stacked.flatten().tolist() == [0, 2, 4, 1, 3, 5]  # view 0 of every image, then view 1
    assert repeated.tolist() == [4, 5, 6, 4, 5, 6]
    plain = torch.zeros(3, 1, 2, 2)
    assert stack_views(plain, labels)[0] is plain
