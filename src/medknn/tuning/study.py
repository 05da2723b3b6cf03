"""``medknn tune``: a study of trials, each an ordinary run directory ``DIR/trials/N``, chosen on
the validation split only, within a wall-clock budget; resumable and shareable by workers."""

from __future__ import annotations

import math
import multiprocessing
import os
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn
from rich.text import Text

from medknn.errors import ConfigError, DataError, MedknnError, TrainingError
from medknn.methods import get_method, list_methods
from medknn.run_training import check_method_runs
from medknn.runs import TrainConfig
from medknn.runs.prepare import prepare_data
from medknn.tuning.budget import (
    SAFETY,
    STOPPED_FOR_BUDGET,
    TrialTiming,
    budget_flag,
    describe_seconds,
    estimate_seconds,
    parse_budget,
)
from medknn.tuning.space import (
    EPOCH_SCALES,
    StudySettings,
    image_sizes_for,
    planned_epochs,
    trial_config,
)
from medknn.tuning.storage import (
    FINISH_LOCK,
    Claim,
    check_name,
    is_claimed_elsewhere,
    load_study,
    open_storage,
    storage_description,
    study_lock,
)

METRICS = ("mcr", "accuracy", "macro_f1", "auc")
SETTINGS_ATTR = "medknn_settings"
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


@dataclass
class TuneResult:
    """The end of a study: its best trial and ensemble, each chosen on validation and scored
    once on test, and the summary page."""

    out: Path
    best_trial: int
    best_run: Path
    ensemble: Path | None
    recommended: Path
    summary: Path
    trials: dict[str, int]  # count per state
    validation: dict[str, float]  # metric of the best trial, the ensemble
    test: dict[str, dict[str, Any]]  # test metrics of the best trial, the ensemble


def tune(
    data: str,
    out: str | Path,
    *,
    budget: str | float = "60m",
    methods: list[str] | None = None,
    metric: str = "mcr",
    split: str | None = None,
    options: Mapping[str, Any] | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    trials: int | None = None,
    workers: int = 1,
    progress: bool = True,
    console: Console | None = None,
) -> TuneResult:
    """Search methods and settings on ``data`` within ``budget`` of wall-clock time ("60m",
    "2h", or seconds), each trial an ordinary run directory ``out/trials/N``, chosen on the
    validation split only; rerunning continues the study. ``options`` are fixed settings (never
    searched); ``storage`` a database URL or journal file shared by several workers. Returns a
    ``TuneResult``: the best trial and the top trials' ensemble, each scored once on test, and
    ``out/summary.md`` (docs/tune.md)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    out = Path(out)
    console = console or Console(stderr=True, quiet=not progress)
    seconds = parse_budget(budget)
    started = time.time()
    if metric not in METRICS:
        raise ConfigError(f"--metric {metric!r}: use one of {', '.join(METRICS)}.")
    if trials is not None and trials < 0:
        raise ConfigError(f"--trials {trials}: give a whole number >= 0.")
    if workers < 1:
        raise ConfigError(f"--workers {workers}: give a whole number >= 1.")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give a new or existing study folder.")
    fixed = dict(options or {})
    base = _base_config(data, split, fixed, metric)
    name = check_name(study_name or out.resolve().name)
    where = storage_description(storage, out)
    study = load_study(open_storage(storage, out), name, where, pruner=make_pruner())
    asked = list(methods) if methods else default_methods()
    saved = study.user_attrs.get(SETTINGS_ATTR)
    if saved is None:
        # Skipped methods are named even with --quiet.
        notices = console if progress else Console(stderr=True)
        settings = _new_settings(base, fixed, asked, metric, seconds, notices)
        with study_lock(out):
            if SETTINGS_ATTR not in study.user_attrs:  # another worker may have been first
                study.set_user_attr(SETTINGS_ATTR, settings.to_dict())
                _enqueue_recipe(study, settings)
        saved = study.user_attrs[SETTINGS_ATTR]
    settings = _same_settings(saved, base, fixed, asked, metric, where)
    request = TuneRequest(
        str(out),
        settings.to_dict(),
        storage,
        name,
        str(budget),
        started + seconds,
        trials,
        int(base.get("seed", 0)),
    )
    children = _start_workers(request, workers)
    with _StudyProgress(console, started, seconds, progress) as bar:
        try:
            _Worker(request, console, bar, threads=_threads(workers)).run()
        finally:
            for child in children:
                child.join()
    from medknn.tuning.summary import finish_study

    with study_lock(out, FINISH_LOCK):  # a second worker then reuses the first's ensemble
        return finish_study(_study(request), out, settings, console=console, storage=where)


def _base_config(
    data: str, split: str | None, fixed: dict[str, Any], metric: str
) -> dict[str, Any]:
    """What every trial shares: data, split (one split for all, so that they ensemble), the
    user's fixed options, and the decision rule chosen for the study's metric."""
    values = {**fixed, "data": data}
    if split is not None:
        values["split"] = split
    config = TrainConfig.from_dict(values, source="options")
    values["split_seed"] = config.resolved_split_seed
    if metric in ("mcr", "accuracy", "macro_f1") and "decision_metric" not in fixed:
        values["decision_metric"] = metric
    TrainConfig.from_dict(values, source="options")
    return values


def default_methods() -> list[str]:
    """The registry's image methods that train from scratch or ImageNet weights on their own."""
    return [
        spec.name
        for spec in list_methods()
        if spec.trains and not spec.requires_init_from and not spec.freeze_backbone
    ]


def _new_settings(
    base: dict[str, Any],
    fixed: dict[str, Any],
    asked: list[str],
    metric: str,
    budget_seconds: float,
    console: Console,
) -> StudySettings:
    """Check which methods can run on the data (naming those that cannot, and why), and the
    epochs ``epochs: null`` gives each."""
    for method in asked:
        get_method(method)  # an unknown name: ConfigError with the closest names
    config = TrainConfig.from_dict({**base, "method": asked[0]})
    prepared = prepare_data(config, None, progress=False)
    usable, default_epochs = [], {}
    for method in asked:
        try:
            method_config = TrainConfig.from_dict({**base, "method": method})
            default_epochs[method] = check_method_runs(method_config, prepared)
        except MedknnError as error:
            console.print(f"skipping {method}: {error}", markup=False, highlight=False)
            continue
        usable.append(method)
    if not usable:
        raise ConfigError(
            f"None of the methods ({', '.join(asked)}) can run on {base['data']}; see the "
            "reasons above."
        )
    sizes = image_sizes_for(budget_seconds)
    return StudySettings(base, fixed, usable, metric, list(sizes), default_epochs, asked)


def _same_settings(
    saved: dict[str, Any],
    base: dict[str, Any],
    fixed: dict[str, Any],
    asked: list[str],
    metric: str,
    where: str,
) -> StudySettings:
    """The saved study's settings, if this command asks for the same study; else a ConfigError
    listing what differs."""
    settings = StudySettings(**saved)
    wanted = {"base": base, "fixed": fixed, "metric": metric, "asked": asked}
    differences = [
        f"{key}: {getattr(settings, key)!r} → {value!r}"
        for key, value in wanted.items()
        if getattr(settings, key) != value
    ]
    if differences:
        raise ConfigError(
            f"{where} holds a study with other settings ({'; '.join(differences)}). Rerun it "
            "with its own options, or give another --out (or --study) for a new study."
        )
    return settings


def _enqueue_recipe(study: Any, settings: StudySettings) -> None:
    """The first trial is medknn's hand-set recipe (the default method when it is searched, else
    the first; default lr, scale, augmentation, the default epochs): the search starts from what
    one would try by hand, so the study shows what it gained over the README command."""
    recipe = TrainConfig()
    method = recipe.method if recipe.method in settings.methods else settings.methods[0]
    params: dict[str, Any] = {
        "method": method,
        "lr": recipe.lr,
        "backbone_lr_scale": recipe.backbone_lr_scale,
        "image_size": min(settings.image_sizes, key=lambda s: abs(s - recipe.image_size)),
        "epochs_scale": EPOCH_SCALES[-1],
        "augmentation": recipe.augmentation,
        "resample": recipe.resample,
    }
    fixed = set(settings.fixed)
    study.enqueue_trial({k: v for k, v in params.items() if k not in fixed})


def _threads(workers: int) -> int | None:
    """Torch threads per worker: the cores shared out; one worker keeps torch's default."""
    return None if workers == 1 else max(1, (os.cpu_count() or 1) // workers)


def _start_workers(request: TuneRequest, workers: int) -> list[Any]:
    """``workers - 1`` more processes on this study (this process is one worker too)."""
    context = multiprocessing.get_context("spawn")
    children = []
    for index in range(1, workers):
        child = context.Process(target=_worker_process, args=(request, index, workers))
        child.start()
        children.append(child)
    return children


def _worker_process(request: TuneRequest, index: int, workers: int) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore")
    parent = os.getppid()
    worker = _Worker(
        request,
        Console(stderr=True, quiet=True),
        None,
        threads=_threads(workers),
        orphaned=lambda: os.getppid() != parent,
    )
    worker.run()


def _study(request: TuneRequest) -> Any:
    out = Path(request.out)
    where = storage_description(request.storage, out)
    return load_study(
        open_storage(request.storage, out), request.study_name, where, pruner=make_pruner()
    )


class _OutOfBudget(Exception):
    """Raised from the epoch hook: the trial would not finish before the deadline."""

    def __init__(self, estimate: float, elapsed: float) -> None:
        super().__init__(f"about {estimate:.0f} s in all")
        self.estimate = estimate
        self.elapsed = elapsed


class _Orphaned(Exception):
    """Raised from the epoch hook: the command that started this worker process is gone."""


class _Worker:
    """Takes trials of the study one after another until the budget or the trial count ends."""

    def __init__(
        self,
        request: TuneRequest,
        console: Console,
        bar: _StudyProgress | None,
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
        self.study = _study(self.request)
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
        reporter = _EpochReporter(
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
        except _OutOfBudget as stop:
            return self._out_of_budget(trial, claim, stop, config, reporter)
        except _Orphaned:
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
        self, trial: Any, claim: Claim, stop: _OutOfBudget, config: Any, reporter: _EpochReporter
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
        reporter: _EpochReporter | None = None,
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


class _EpochReporter:
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
            raise _Orphaned
        self.epoch_seconds.append(float(record.get("seconds", 0.0)))
        self.epochs_done = epoch + 1
        if self.on_epoch is not None:
            self.on_epoch(epoch + 1)
        value = _epoch_value(record, self.metric)
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
            raise _OutOfBudget(projected - self.started, now - self.started)


def _epoch_value(record: dict[str, float], metric: str) -> float | None:
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


class _TimeLeft(ProgressColumn):
    def __init__(self, deadline: float) -> None:
        super().__init__()
        self.deadline = deadline

    def render(self, task: Task) -> Text:
        return Text(f"{describe_seconds(self.deadline - time.time())} left", style="cyan")


class _StudyProgress:
    """One bar: the budget spent, trials done, the best so far, time left, the current trial."""

    def __init__(self, console: Console, started: float, seconds: float, enabled: bool) -> None:
        self.started, self.seconds = started, seconds
        self.progress = Progress(
            TextColumn("[bold]tune"),
            BarColumn(),
            TextColumn("{task.fields[status]}"),
            _TimeLeft(started + seconds),
            TextColumn("{task.fields[current]}"),
            console=console,
            disable=not enabled,
            transient=False,
        )
        self.task = self.progress.add_task("tune", total=seconds, status="", current="")

    def __enter__(self) -> _StudyProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def update(self, status: str, current: str = "") -> None:
        elapsed = min(self.seconds, time.time() - self.started)
        self.progress.update(self.task, completed=elapsed, status=status, current=current)
