"""``medknn tune``: a tiny study ends in a loadable ensemble, chooses without test labels,
resumes an interrupted trial, prunes below the median, and two workers share one study."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from conftest import CLASS_NAMES, TINY_OPTIONS, write_npz
from typer.testing import CliRunner

import medknn
import medknn.cli
import medknn.run_training
from medknn.errors import ConfigError, DataError, TrainingError
from medknn.io import read_json
from medknn.tuning import make_pruner, parse_budget
from medknn.tuning.space import SearchTrial, StudySettings
from medknn.tuning.storage import Claim, is_claimed_elsewhere, load_study, open_storage
from medknn.tuning.study import _enqueue_recipe
from medknn.tuning.worker import NOT_STARTED, EpochReporter, Orphaned, OutOfBudget, Worker

METHODS = ["deepknn", "weighted-ce"]
FIXED = {**TINY_OPTIONS, "data_options": {"class_names": CLASS_NAMES}}


def _tune(data: Path, out: Path, **changes: Any) -> Any:
    options = {
        "budget": "10m",
        "methods": METHODS,
        "options": FIXED,
        "trials": 3,
        "progress": False,
        **changes,
    }
    return medknn.tune(str(data), out, **options)


def _study(out: Path) -> optuna.Study:
    return load_study(open_storage(None, out), out.name, str(out))


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_npz(
        tmp_path_factory.mktemp("tune") / "tiny.npz", {"train": 36, "val": 24, "test": 24}
    )


@pytest.fixture(scope="module")
def study(data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    out = tmp_path_factory.mktemp("tune") / "study"
    return out, _tune(data, out)


def test_parse_budget() -> None:
    assert parse_budget("90s") == 90
    assert parse_budget("60m") == 3600
    assert parse_budget("2h") == 7200
    assert parse_budget("1h30m") == 5400
    assert parse_budget(45) == 45
    for bad in ("soon", "10x", "-5m", "0s", ""):
        with pytest.raises(ConfigError, match="budget"):
            parse_budget(bad)


def test_a_tiny_study_ends_in_a_loadable_ensemble(study: tuple[Path, Any], tmp_path: Path) -> None:
    out, result = study
    trials = _study(out).trials
    assert len(trials) == 3 and all(t.state.name == "COMPLETE" for t in trials)
    for t in trials:  # every trial is an ordinary run directory
        assert t.user_attrs["run"] == f"trials/{t.number}"
        assert medknn.evaluate(out / "trials" / str(t.number), part="val", progress=False)["n"]
    assert result.best_trial == max(trials, key=lambda t: (t.value, -t.number)).number
    ensemble = medknn.load_run(result.ensemble)
    assert len(ensemble.members) == 3
    pixels = np.zeros((1, 28, 28, 1), np.uint8)
    assert ensemble.predict_arrays(pixels, ["x"])[0].label in CLASS_NAMES
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert "medknn train --data" in summary and "| trial | state |" in summary
    assert (out / "history.png").stat().st_size > 1000
    assert (out / "importance.png").exists() or "Importances: not drawn" in summary
    assert read_json(out / "result.json")["best_trial"] == result.best_trial
    assert not list(out.rglob("*.tmp"))


def test_the_choice_never_reads_test_labels(
    study: tuple[Path, Any], data: Path, tmp_path: Path
) -> None:
    out, result = study
    with np.load(data) as arrays:
        permuted = {name: arrays[name] for name in arrays.files}
    permuted["test_labels"] = np.random.default_rng(5).permutation(permuted["test_labels"])
    np.savez(tmp_path / "tiny.npz", **permuted)
    # Same study name, so the same sampler seeds; only the test labels differ.
    other = _tune(tmp_path / "tiny.npz", tmp_path / "study")
    first, second = read_json(out / "result.json"), read_json(other.out / "result.json")
    assert second["best_trial"] == first["best_trial"]
    assert second["ensemble_members"] == first["ensemble_members"]
    assert second["validation"] == pytest.approx(first["validation"])
    assert [t.params for t in _study(other.out).trials] == [t.params for t in _study(out).trials]


def test_a_nan_trial_is_pruned_and_an_interrupted_one_resumed(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "study"
    train = medknn.run_training.train
    calls = []

    def diverging_once(config: Any, run: Path, **kwargs: Any) -> Any:
        calls.append(Path(run).name)
        if len(calls) == 1:
            raise TrainingError("The loss became NaN/inf at epoch 1, step 1")
        return train(config, run, **kwargs)

    monkeypatch.setattr(medknn.run_training, "train", diverging_once)
    _tune(data, out, trials=2)
    monkeypatch.setattr(medknn.run_training, "train", train)
    states = [t.state.name for t in _study(out).trials]
    assert states == ["PRUNED", "COMPLETE"]
    assert "NaN" in _study(out).trials[0].user_attrs["reason"]
    finished = (out / "trials" / "1" / "status.json").stat().st_mtime_ns

    # A worker killed right after taking trial 2: the trial is running, its claim is free.
    study = _study(out)
    interrupted = study.ask()
    Claim.take(out, interrupted.number, create=True).release(finished=False)

    result = _tune(data, out, trials=3)
    trials = _study(out).trials
    assert [t.state.name for t in trials] == ["PRUNED", "COMPLETE", "COMPLETE"]
    assert (out / "trials" / "1" / "status.json").stat().st_mtime_ns == finished  # not retrained
    assert result.best_trial in (1, 2) and result.ensemble is not None
    assert "pruned" in (out / "summary.md").read_text(encoding="utf-8")


def test_a_trial_that_would_overrun_is_left_and_the_study_goes_on(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "study"
    report = EpochReporter.__call__

    def overrunning_first(self: EpochReporter, epoch: int, record: dict[str, float]) -> None:
        report(self, epoch, record)
        if self.trial.number == 0:
            raise OutOfBudget(estimate=10**6, elapsed=1.0)

    monkeypatch.setattr(EpochReporter, "__call__", overrunning_first)
    result = _tune(data, out, trials=2)
    monkeypatch.setattr(EpochReporter, "__call__", report)
    first, second = _study(out).trials
    assert first.state.name == "RUNNING" and first.user_attrs["epoch_seconds"] > 0
    assert second.state.name == "COMPLETE" and result.best_trial == 1
    assert read_json(out / "result.json")["trials"] == {"stopped (budget)": 1, "complete": 1}
    assert "| 0 | stopped (budget) |" in (out / "summary.md").read_text(encoding="utf-8")

    finished = (out / "trials" / "1" / "status.json").stat().st_mtime_ns
    _tune(data, out, trials=2)  # a rerun has time again: it resumes the stopped trial
    assert [t.state.name for t in _study(out).trials] == ["COMPLETE", "COMPLETE"]
    assert (out / "trials" / "1" / "status.json").stat().st_mtime_ns == finished


def test_pruning_stops_a_trial_below_the_median() -> None:
    study = optuna.create_study(direction="maximize", pruner=make_pruner())
    for _ in range(3):
        trial = study.ask()
        reporter = EpochReporter(trial, "mcr", deadline=1e12, epochs=5, estimate=None)
        for epoch in range(5):
            reporter(epoch, {"seconds": 0.1, "val_mcr": 0.5, "ema_val_mcr": 0.8})
        study.tell(trial, 0.8)
    trial = study.ask()
    reporter = EpochReporter(trial, "mcr", deadline=1e12, epochs=5, estimate=None)
    reporter(0, {"seconds": 0.1, "val_mcr": 0.1})  # warm-up epochs are never pruned
    reporter(1, {"seconds": 0.1, "val_mcr": 0.1})
    with pytest.raises(optuna.TrialPruned, match="below the median"):
        reporter(2, {"seconds": 0.1, "val_mcr": 0.1})
    trial = study.ask()
    reporter = EpochReporter(trial, "mcr", deadline=1e12, epochs=5, estimate=None)
    with pytest.raises(optuna.TrialPruned, match="not a number"):
        reporter(0, {"seconds": 0.1, "val_mcr": float("nan")})


def test_trials_too_long_for_the_time_left_do_not_end_the_study(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = Worker._run
    calls: list[int] = []

    def five_too_long(self: Worker, trial: Any, claim: Claim, adopted: bool) -> str:
        calls.append(trial.number)
        if len(calls) <= 5:  # as _run records a trial that would not fit in the time left
            trial.set_user_attr(NOT_STARTED, True)
            return self._tell(trial, claim, optuna.trial.TrialState.FAIL, "too long", quiet=True)
        return run(self, trial, claim, adopted)

    monkeypatch.setattr(Worker, "_run", five_too_long)
    _tune(data, tmp_path / "study", trials=1)
    states = [t.state.name for t in _study(tmp_path / "study").trials]
    assert states == ["FAIL"] * 5 + ["COMPLETE"]


def test_a_worker_whose_command_is_gone_stops(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trial = optuna.create_study().ask()
    reporter = EpochReporter(trial, "mcr", 1e12, 5, None, stop_if=lambda: True)
    with pytest.raises(Orphaned):
        reporter(0, {"seconds": 0.1, "val_mcr": 0.5})
    # Orphaned from its first epoch on: the trial is left running for a rerun, the worker ends.
    monkeypatch.setattr(Worker, "__init__", _orphaned_worker(Worker.__init__))
    with pytest.raises(TrainingError, match="No trial"):
        _tune(data, tmp_path / "study", trials=2)
    (left,) = _study(tmp_path / "study").trials
    assert left.state.name == "RUNNING"
    assert not is_claimed_elsewhere(tmp_path / "study", left.number)


def _orphaned_worker(init: Any) -> Any:
    def orphaned_after_one_check(self: Worker, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        checks = iter([False])
        self.orphaned = lambda: next(checks, True)

    return orphaned_after_one_check


def test_fixed_options_are_not_searched() -> None:
    trial = optuna.create_study().ask()
    search = SearchTrial(trial, {"lr": 0.01, "method_options": {"weight": 2.0}})
    assert search.suggest_float("lr", 1e-4, 1e-2, log=True) == 0.01
    assert search.suggest_float("ce+bst/weight", 0.1, 3.0) == 2.0
    assert 0.5 <= search.suggest_float("ce+bst/bst_margin", 0.5, 1.0) <= 1.0
    assert set(trial.params) == {"ce+bst/bst_margin"}


@pytest.mark.parametrize(
    ("methods", "first"),
    [(["ce", "weighted-ce", "deepknn"], "deepknn"), (["ce", "weighted-ce"], "ce")],
)
def test_the_first_trial_is_the_readme_recipe_when_its_method_is_searched(
    methods: list[str], first: str
) -> None:
    settings = StudySettings({}, {}, methods, "mcr", [32, 48, 64])
    study = optuna.create_study()
    _enqueue_recipe(study, settings)
    assert study.ask().suggest_categorical("method", methods) == first


def test_budget_too_small_for_one_trial_says_the_minimum(data: Path, tmp_path: Path) -> None:
    # Epochs fixed for every trial, so no cheaper trial fits in the second left either.
    with pytest.raises(ConfigError, match=r"too small for one trial.*at least --budget \d+m"):
        _tune(data, tmp_path / "study", budget="1s", options={**FIXED, "epochs": 200})


def test_a_damaged_storage_file_is_named(data: Path, tmp_path: Path) -> None:
    journal = tmp_path / "study.journal"
    journal.write_text('{"op_code": 0, "worker_id": "x"}\nnot json at all\n{}\n')
    with pytest.raises(DataError, match="study.journal cannot be read"):
        _tune(data, tmp_path / "study", storage=str(journal))


def test_cli_refuses_a_bad_budget(data: Path, tmp_path: Path) -> None:
    args = ["tune", "--data", str(data), "--out", str(tmp_path / "s"), "--budget", "soon"]
    result = CliRunner().invoke(medknn.cli.app, args)
    assert result.exit_code == 2 and "90s, 60m, 2h" in result.output


def test_two_workers_share_one_study(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "study"
    storage = tmp_path / "shared.journal"
    flags = [f"--set={key}={json.dumps(value)}" for key, value in FIXED.items()]
    command = [
        sys.executable,
        "-m",
        "medknn",
        "tune",
        "--data",
        str(data),
        "--out",
        str(out),
        "--storage",
        f"journal:{storage}",
        "--methods",
        ",".join(METHODS),
        "--trials",
        "3",
        "--budget",
        "10m",
        "--quiet",
        *flags,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    workers = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    for worker in workers:
        _, error = worker.communicate(timeout=300)
        assert worker.returncode == 0, error.decode()
    study = load_study(open_storage(f"journal:{storage}", out), out.name, str(storage))
    trials = study.trials
    assert sorted(t.number for t in trials) == [0, 1, 2]  # none lost, none extra
    assert all(t.state.name == "COMPLETE" for t in trials)
    for t in trials:  # each trained exactly once: one first epoch in its log
        log = (out / "trials" / str(t.number) / "train.log").read_text(encoding="utf-8")
        assert log.count(" epoch 1 ") == 1, log
    assert not list((out / "trials").glob("*.claim"))
    assert read_json(out / "result.json")["best_trial"] in range(3)
