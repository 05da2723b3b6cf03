"""``medknn tune``: a study of trials, each an ordinary run directory ``DIR/trials/N``, chosen on
the validation split only, within a wall-clock budget; resumable and shareable by workers."""

from __future__ import annotations

import multiprocessing
import os
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from medknn.errors import ConfigError, MedknnError
from medknn.methods import get_method, list_methods
from medknn.run_training import check_method_runs
from medknn.runs import TrainConfig
from medknn.runs.prepare import prepare_data
from medknn.tuning.budget import (
    parse_budget,
)
from medknn.tuning.progress import StudyProgress
from medknn.tuning.space import (
    EPOCH_SCALES,
    StudySettings,
    image_sizes_for,
)
from medknn.tuning.storage import (
    FINISH_LOCK,
    check_name,
    load_study,
    open_storage,
    storage_description,
    study_lock,
)
from medknn.tuning.worker import METRICS, TuneRequest, Worker, make_pruner, open_study

SETTINGS_ATTR = "medknn_settings"


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
    with StudyProgress(console, started, seconds, progress) as bar:
        try:
            Worker(request, console, bar, threads=_threads(workers)).run()
        finally:
            for child in children:
                child.join()
    from medknn.tuning.summary import finish_study

    with study_lock(out, FINISH_LOCK):  # a second worker then reuses the first's ensemble
        return finish_study(open_study(request), out, settings, console=console, storage=where)


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
    worker = Worker(
        request,
        Console(stderr=True, quiet=True),
        None,
        threads=_threads(workers),
        orphaned=lambda: os.getppid() != parent,
    )
    worker.run()
