"""The workers of a ``medknn tune`` study: each takes trials one after another (a new one, or one
an interrupted worker left), trains it into ``OUT/trials/N`` with an epoch hook that reports the
validation metric to the pruner and stops a trial that would overrun the budget, and tells the
study the outcome."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from medknn.errors import ConfigError, DataError, MedknnError, TrainingError
from medknn.tuning.budget import (
    SAFETY,
    STOPPED_FOR_BUDGET,
    TrialTiming,
    budget_flag,
    describe_seconds,
    estimate_seconds,
)
from medknn.tuning.progress import StudyProgress
from medknn.tuning.space import EPOCH_SCALES, StudySettings, planned_epochs, trial_config
from medknn.tuning.storage import (
    Claim,
    is_claimed_elsewhere,
    load_study,
    open_storage,
    storage_description,
    study_lock,
)

METRICS = ("mcr", "accuracy", "macro_f1", "auc")
# A trial that was sampled but not started (it would not have finished in the time left).
NOT_STARTED = "not_started"
PRUNER_STARTUP_TRIALS, PRUNER_WARMUP_EPOCHS = 3, 2
TPE_STARTUP_TRIALS = 8
MAX_FAILURES_IN_A_ROW = 3
# Sampled trials that would not fit in the time left cost no time; the shortest trial still fits
# (else the worker stops), so keep asking: the random start of a search is often too expensive.
MAX_NOT_STARTED_IN_A_ROW = 25


@dataclass(frozen=True)
class TuneRequest:
    """Everything a worker needs, picklable for the worker processes of ``--workers N``."""

    out: str
    settings: dict[str, Any]
    storage: str | None
    study_name: str
    budget_text: str
    deadline: float  # time.time() after which no trial may still be training
    trials: int | None
    sampler_seed: int


def open_study(request: TuneRequest) -> Any:
    out = Path(request.out)
    where = storage_description(request.storage, out)
    return load_study(
        open_storage(request.storage, out), request.study_name, where, pruner=make_pruner()
    )


class OutOfBudget(Exception):
    """Raised from the epoch hook: the trial would not finish before the deadline."""

    def __init__(self, estimate: float, elapsed: float) -> None:
        super().__init__(f"about {estimate:.0f} s in all")
        self.estimate = estimate
        self.elapsed = elapsed


class Orphaned(Exception):
    """Raised from the epoch hook: the command that started this worker process is gone."""


class Worker:
    """Takes trials of the study one after another until the budget or the trial count ends."""

    def __init__(
        self,
        request: TuneRequest,
        console: Console,
        bar: StudyProgress | None,
        *,
        threads: int | None,
        orphaned: Callable[[], bool] | None = None,
    ) -> None:
        self.request = request
        self.out = Path(request.out)
        self.settings = StudySettings(**request.settings)
        self.console = console
        self.bar = bar
        self.threads = threads
        # A worker process whose command was killed stops after its epoch, its trial left for
        # the rerun, instead of training on beside the rerun's own workers.
        self.orphaned = orphaned or (lambda: False)

    def run(self) -> None:
        if self.threads is not None:
            import torch

            torch.set_num_threads(self.threads)
        self.study = open_study(self.request)
        self._update_bar()
        failures = not_started = 0
        while not self.orphaned():
            taken = self._next_trial()
            if taken is None:
                return
            trial, claim, adopted = taken
            outcome = self._run(trial, claim, adopted)
            # A trial stopped for the budget, or not started, is not the end: a cheaper one may
            # still fit.
            failures = failures + 1 if outcome == "failed" else 0
            not_started = not_started + 1 if outcome == NOT_STARTED else 0
            if failures >= MAX_FAILURES_IN_A_ROW or not_started >= MAX_NOT_STARTED_IN_A_ROW:
                return
            self._update_bar()

    # --- choosing the next trial ------------------------------------------------------------

    def _next_trial(self) -> tuple[Any, Claim, bool] | None:
        """An interrupted trial of this folder to resume, else a new one; None when the trial
        count is reached or the time left is shorter than the shortest trial."""
        import optuna
        from optuna.trial import TrialState

        with study_lock(self.out):
            trials = self.study.get_trials(deepcopy=False)
            for frozen in trials:
                if frozen.state != TrialState.RUNNING:
                    continue
                if frozen.user_attrs.get(STOPPED_FOR_BUDGET) == self.request.deadline:
                    continue  # stopped by this command: for a rerun with more time
                claim = Claim.take(self.out, frozen.number, create=False)
                if claim is not None:
                    self._say(f"trial {frozen.number}: resuming its interrupted run")
                    return optuna.trial.Trial(self.study, frozen._trial_id), claim, True
            counted = [
                t
                for t in trials
                if t.state != TrialState.WAITING and not t.user_attrs.get(NOT_STARTED)
            ]
            if self.request.trials is not None and len(counted) >= self.request.trials:
                return None
            shortest = self._shortest_trial()
            left = self.request.deadline - time.time()
            if shortest is not None and shortest * SAFETY > left:
                self._say(
                    f"stopping: {describe_seconds(left)} left, the shortest trial takes about "
                    f"{describe_seconds(shortest)}"
                )
                return None
            if left <= 0:
                return None
            self.study.sampler = self._sampler(len(trials))
            trial = self.study.ask()
            claim = Claim.take(self.out, trial.number, create=True)
            assert claim is not None, "a new trial is claimed under the study lock"
            return trial, claim, False

    def _sampler(self, asked: int) -> Any:
        """TPE, seeded by the study's seed and the trial's number: a study run again asks the
        same, and two workers never draw the same random start."""
        import optuna

        return optuna.samplers.TPESampler(
            n_startup_trials=TPE_STARTUP_TRIALS,
            multivariate=True,
            group=True,
            constant_liar=True,
            seed=self.request.sampler_seed * 100_003 + asked,
        )

    def _timings(self) -> list[TrialTiming]:
        """What earlier trials took, finished or not: pruned and budget-stopped trials measured
        their epochs too, and an expensive setting must be known before one finishes."""
        timings = []
        for t in self.study.get_trials(deepcopy=False):
            attrs = t.user_attrs
            if "epoch_seconds" in attrs:
                timings.append(
                    TrialTiming(
                        attrs["method"],
                        attrs["image_size"],
                        attrs["overhead_seconds"],
                        attrs["epoch_seconds"],
                    )
                )
        return timings

    def _shortest_trial(self) -> float | None:
        """The estimated time of the cheapest trial the search can ask for."""
        settings = self.settings
        estimates = []
        for method in settings.methods:
            epochs = settings.default_epochs.get(method, 0)
            fixed = settings.fixed
            epochs = fixed.get("epochs") or max(1, math.ceil(epochs * EPOCH_SCALES[0]))
            size = fixed.get("image_size") or min(settings.image_sizes)
            estimate = estimate_seconds(
                self._timings(), method=method, image_size=size, epochs=epochs
            )
            if estimate is not None:
                estimates.append(estimate)
        return min(estimates) if estimates else None

    # --- running one trial ------------------------------------------------------------------

    def _run(self, trial: Any, claim: Claim, adopted: bool) -> str:
        from optuna.trial import TrialState

        number, run_path = trial.number, self.out / "trials" / str(trial.number)
        try:
            config = trial_config(self.settings, trial)
        except MedknnError as error:
            return self._tell(trial, claim, TrialState.FAIL, f"its settings are refused: {error}")
        epochs = planned_epochs(config)
        estimate = estimate_seconds(
            self._timings(), method=config.method, image_size=config.image_size, epochs=epochs
        )
        left = self.request.deadline - time.time()
        if estimate is not None and estimate * SAFETY > left:
            if adopted:
                trial.set_user_attr(STOPPED_FOR_BUDGET, self.request.deadline)
                claim.release(finished=False)
                self._say(
                    f"trial {number} needs about {describe_seconds(estimate)}: left for later"
                )
                return "stopped"
            trial.set_user_attr(NOT_STARTED, True)
            reason = (
                f"not started: about {describe_seconds(estimate)}, {describe_seconds(left)} left"
            )
            return self._tell(trial, claim, TrialState.FAIL, reason, quiet=True)
        trial.set_user_attr("run", f"trials/{number}")
        trial.set_user_attr("method", config.method)
        trial.set_user_attr("image_size", config.image_size)
        trial.set_user_attr("planned_epochs", epochs)
        self._say(f"trial {number}: {config.method}, {config.image_size} px, {epochs} epochs")
        reporter = EpochReporter(
            trial,
            self.settings.metric,
            self.request.deadline,
            epochs,
            estimate,
            on_epoch=lambda epoch: self._update_bar(f"trial {number} epoch {epoch}/{epochs}"),
            stop_if=self.orphaned,
        )
        import optuna

        from medknn.api import evaluate
        from medknn.run_training import train

        try:
            train(config, run_path, progress=False, on_epoch_end=reporter)
        except optuna.TrialPruned as pruned:
            return self._tell(trial, claim, TrialState.PRUNED, str(pruned), reporter=reporter)
        except OutOfBudget as stop:
            return self._out_of_budget(trial, claim, stop, config, reporter)
        except Orphaned:
            claim.release(finished=False)
            return "orphaned"
        except TrainingError as error:  # e.g. a NaN loss: recorded, not fatal
            return self._tell(trial, claim, TrialState.PRUNED, str(error), reporter=reporter)
        except (ConfigError, DataError) as error:
            return self._tell(trial, claim, TrialState.FAIL, str(error), reporter=reporter)
        except BaseException:
            claim.release(finished=False)  # interrupted: resumed by the next worker
            raise
        scores = evaluate(run_path, part="val", progress=False)
        value = scores.get(self.settings.metric)
        trial.set_user_attr(
            "val", {key: scores.get(key) for key in METRICS if scores.get(key) is not None}
        )
        if value is None or not math.isfinite(value):
            reason = f"validation {self.settings.metric} is not a number"
            return self._tell(trial, claim, TrialState.PRUNED, reason, reporter=reporter)
        return self._tell(trial, claim, TrialState.COMPLETE, None, value=value, reporter=reporter)

    def _out_of_budget(
        self, trial: Any, claim: Claim, stop: OutOfBudget, config: Any, reporter: EpochReporter
    ) -> str:
        """Leave the trial running and resumable by a rerun, its epoch time recorded for the
        estimates, and go on to cheaper trials. When nothing has finished, nothing else is
        running and not even the cheapest trial fits in the time left, the budget is too small
        for one trial: say how long this one takes."""
        from optuna.trial import TrialState

        trial.set_user_attr(STOPPED_FOR_BUDGET, self.request.deadline)
        trial.set_user_attr("epoch_seconds", reporter.mean_epoch_seconds)
        trial.set_user_attr("overhead_seconds", reporter.overhead_seconds())
        claim.release(finished=False)
        with study_lock(self.out):
            trials = self.study.get_trials(deepcopy=False)
            finished = any(t.state == TrialState.COMPLETE for t in trials)
            running = any(
                t.state == TrialState.RUNNING and is_claimed_elsewhere(self.out, t.number)
                for t in trials
            )
        shortest = self._shortest_trial()
        left = self.request.deadline - time.time()
        if not finished and not running and (shortest is None or shortest * SAFETY > left):
            raise ConfigError(
                f"--budget {self.request.budget_text} is too small for one trial: trial "
                f"{trial.number} ({config.method}, {config.image_size} px) would take about "
                f"{describe_seconds(stop.estimate)} in all ({describe_seconds(stop.elapsed)} "
                f"so far). Give at least --budget {budget_flag(stop.estimate * SAFETY)}; "
                "rerunning resumes this trial."
            )
        self._say(
            f"trial {trial.number} stopped: it would need about "
            f"{describe_seconds(stop.estimate)}; a rerun with more time resumes it"
        )
        return "stopped"

    def _tell(
        self,
        trial: Any,
        claim: Claim,
        state: Any,
        reason: str | None,
        *,
        value: float | None = None,
        reporter: EpochReporter | None = None,
        quiet: bool = False,
    ) -> str:
        from optuna.trial import TrialState

        if reason:
            trial.set_user_attr("reason", reason[:500])
        if reporter is not None and reporter.epoch_seconds:
            trial.set_user_attr("epoch_seconds", reporter.mean_epoch_seconds)
            trial.set_user_attr("overhead_seconds", reporter.overhead_seconds())
            trial.set_user_attr("seconds", round(time.time() - reporter.started, 1))
        with study_lock(self.out):
            if state == TrialState.COMPLETE:
                self.study.tell(trial, value)
            else:
                self.study.tell(trial, state=state)
            claim.release(finished=True)
        if not quiet:
            words = {
                TrialState.COMPLETE: f"validation {self.settings.metric} {value:.4f}"
                if value is not None
                else "complete",
                TrialState.PRUNED: f"pruned: {reason}",
                TrialState.FAIL: f"failed: {reason}",
            }
            self._say(f"trial {trial.number} {words[state]}")
        return {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned"}.get(
            state, NOT_STARTED if quiet else "failed"
        )

    def _say(self, line: str) -> None:
        self.console.print(line, markup=False, highlight=False)

    def _update_bar(self, current: str = "") -> None:
        if self.bar is None:
            return
        from optuna.trial import TrialState

        trials = self.study.get_trials(deepcopy=False)
        done = sum(t.state.is_finished() and not t.user_attrs.get(NOT_STARTED) for t in trials)
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        best = max(complete, key=lambda t: t.value, default=None)
        best_text = (
            f"best #{best.number} {best.user_attrs.get('method')} "
            f"{self.settings.metric} {best.value:.3f}"
            if best is not None
            else "no trial finished yet"
        )
        self.bar.update(f"{done} trials done · {best_text}", current)


class EpochReporter:
    """The trainer's ``on_epoch_end``: reports the epoch's validation metric to the trial, prunes
    it below the median of earlier trials, stops it when it would overrun the budget."""

    def __init__(
        self,
        trial: Any,
        metric: str,
        deadline: float,
        epochs: int,
        estimate: float | None,
        on_epoch: Any = None,
        stop_if: Callable[[], bool] | None = None,
    ) -> None:
        self.trial, self.metric, self.deadline, self.epochs = trial, metric, deadline, epochs
        self.estimate = estimate
        self.on_epoch = on_epoch
        self.stop_if = stop_if
        self.started = time.time()
        self.epoch_seconds: list[float] = []
        self.epochs_done = 0

    @property
    def mean_epoch_seconds(self) -> float:
        return sum(self.epoch_seconds) / max(len(self.epoch_seconds), 1)

    def overhead_seconds(self) -> float:
        return max(0.0, time.time() - self.started - sum(self.epoch_seconds))

    def __call__(self, epoch: int, record: dict[str, float]) -> None:
        import optuna

        if self.stop_if is not None and self.stop_if():
            raise Orphaned
        self.epoch_seconds.append(float(record.get("seconds", 0.0)))
        self.epochs_done = epoch + 1
        if self.on_epoch is not None:
            self.on_epoch(epoch + 1)
        value = epoch_value(record, self.metric)
        if value is not None:
            if not math.isfinite(value):
                raise optuna.TrialPruned(f"validation {self.metric} is not a number")
            self.trial.report(value, epoch + 1)
            if self.trial.should_prune():
                raise optuna.TrialPruned(
                    f"epoch {epoch + 1}: validation {self.metric} {value:.4f} below the median "
                    "of earlier trials at this epoch"
                )
        now = time.time()
        left_epochs = max(0, self.epochs - (epoch + 1))
        # Scoring at the end costs about what reaching the first epoch cost (data, embeddings).
        before_first = max(0.0, (now - self.started) - sum(self.epoch_seconds))
        projected = now + left_epochs * self.mean_epoch_seconds + before_first
        if left_epochs and projected > self.deadline:
            raise OutOfBudget(projected - self.started, now - self.started)


def epoch_value(record: dict[str, float], metric: str) -> float | None:
    """The epoch's validation metric: the better of the raw and the averaged weights'; MCR when
    the per-epoch validation does not compute ``metric``."""
    key = metric if f"val_{metric}" in record else "mcr"
    values = [record[k] for k in (f"val_{key}", f"ema_val_{key}") if k in record]
    if not values:
        return None
    if any(not math.isfinite(v) for v in values):
        return math.nan
    return max(values)


def make_pruner() -> Any:
    """The median rule: after the warm-up epochs, a trial whose validation metric is below the
    median of the earlier trials' at the same epoch stops."""
    import optuna

    # Steps are epoch numbers from 1; a step below n_warmup_steps is never pruned.
    return optuna.pruners.MedianPruner(
        n_startup_trials=PRUNER_STARTUP_TRIALS, n_warmup_steps=PRUNER_WARMUP_EPOCHS + 1
    )
