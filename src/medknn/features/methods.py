"""One method on one split of a feature set, as a run directory: the kNN-basic / NCA / LMNN
baselines fitted here, every registered method that runs on vectors trained and scored by
``run_training.train`` (the image pipeline, with the MLP as its backbone)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from rich.console import Console

from medknn.errors import ConfigError, did_you_mean
from medknn.evaluation import classification_metrics
from medknn.features.metric_knn import LINEAR_METHODS, make_metric_knn
from medknn.features.parts import FeatureParts
from medknn.io import atomic_write_json, read_json
from medknn.methods import list_methods
from medknn.run_training import train
from medknn.runs import RunDir, TrainConfig, run_lock
from medknn.runs.prepare import save_data_record
from medknn.runs.run_claim import (
    check_run_dir,
    clear_never_trained,
    is_complete,
    more_epochs_asked,
    write_config,
)
from medknn.runs.run_manifest import manifest_path
from medknn.runs.training_data import check_runs_on_vectors, vector_config, vector_tta
from medknn.training.reproducible import reproducible

# The paper's Table 3 columns, in its order, with its names.
TABLE3_LABELS = {
    "knn-basic": "kNN-basic",
    "nca": "NCA",
    "lmnn": "LMNN",
    "triplet": "MLP+triplets",
    "ce": "MLP+CE",
    "deepknn": "MLP+deep-kNN",
}


def feature_method_label(method: str) -> str:
    """The Table 3 name of a method: ``NCA``, ``MLP+deep-kNN``, ... (``MLP+<name>`` otherwise)."""
    return TABLE3_LABELS.get(method, f"MLP+{method}")


def check_feature_method(method: str) -> None:
    """ConfigError unless ``method`` runs on feature vectors: a linear method (``knn-basic``,
    ``nca``, ``lmnn``) or a registered method that declares it can (the
    MLP takes the backbone's place); any other registered method is refused with its reason."""
    if method in LINEAR_METHODS:
        return
    if method not in {s.name for s in list_methods()}:
        on_vectors = [s.name for s in list_methods() if s.vector_problem is None]
        raise ConfigError(
            f"Method {method!r} does not run on feature vectors. "
            + did_you_mean(method, (*LINEAR_METHODS, *on_vectors))
        )
    check_runs_on_vectors(method, also=LINEAR_METHODS)


def feature_method_config(method: str, config: TrainConfig) -> TrainConfig:
    """``config`` for ``method`` on vectors, as its ``config.yaml`` records it. A registered
    method is a vector run of ``run_training.train`` (``vector_config``: the MLP, no TTA; its
    ``decision`` honoured like an image run's). The linear baselines are scored by their kNN's
    plain vote without TTA: recorded as ``decision: plain`` (an explicit TTA is refused)."""
    check_feature_method(method)
    config = config.replace(method=method)
    if method in LINEAR_METHODS:
        return config.replace(decision="plain", tta=vector_tta(config))
    return vector_config(config)


def run_feature_method(
    method: str,
    parts: FeatureParts,
    config: TrainConfig,
    out: str | os.PathLike,
    *,
    progress: bool = True,
    console: Console | None = None,
) -> dict:
    """Fit (``knn-basic``/``nca``/``lmnn``) or train (an MLP with a registered objective,
    ``run_training.train(config, out, data=parts)``) on the training part, score the test
    part, and return its metrics (Acc, MCR, RS, ...).

    ``out`` becomes a run directory, claimed as an image run's is (``runs/run_claim.py``): a
    finished run is read back, not redone; other settings are refused; an interrupted MLP run
    resumes from its last epoch. The config's ``threads`` and ``deterministic`` hold while it
    runs (``training/reproducible.py``).
    """
    console = console or Console(stderr=True, quiet=not progress)
    config = feature_method_config(method, config)
    run_dir = RunDir(Path(out))
    if method in LINEAR_METHODS:
        with reproducible(config.threads, config.deterministic):
            return _fit_baseline(method, parts, config, run_dir, console)
    earlier = _finished_before_one_pipeline(run_dir, config)
    if earlier is not None:
        console.print(f"{run_dir.path} is already complete; reusing its metrics.", markup=False)
        return earlier
    run = train(config, run_dir.path, data=parts, progress=progress, console=console)
    return read_json(run.run_dir.metrics)


def _fit_baseline(
    method: str, parts: FeatureParts, config: TrainConfig, run_dir: RunDir, console: Console
) -> dict:
    """Fit the linear metric and its kNN on the training part and score the test part, into
    ``run_dir`` (``config.yaml``, ``split.json``, ``data.json``, ``metrics.json``,
    ``status.json``); there is no network, so nothing else."""
    with run_lock(run_dir.path):
        is_new = check_run_dir(run_dir, config)
        # The fit does not depend on epochs: a finished fit is reused whatever epochs are asked.
        if is_complete(run_dir) and run_dir.metrics.exists():
            console.print(f"{run_dir.path} is already complete; reusing its metrics.", markup=False)
            return read_json(run_dir.metrics)
        if is_new:
            clear_never_trained(run_dir)
        else:
            run_dir.remove_partial_writes()
        started = time.perf_counter()
        # Built before anything is written: a refused option leaves no run directory behind.
        model = make_metric_knn(
            method,
            num_features=parts.dim,
            knn=config.knn,
            num_train=parts.size("train"),
            options=config.method_options,
            random_state=config.seed,
        )
        write_config(run_dir, config)
        save_data_record(parts, config, run_dir)
        model.fit(parts.features["train"], parts.labels("train"))
        test = parts.features["test"]
        metrics = classification_metrics(
            parts.labels("test"),
            model.predict(test),
            proba=model.predict_proba(test),
            class_names=parts.class_names,
            train_counts=parts.class_counts("train"),
        )
        metrics.update(method=method, seed=config.seed)
        if "metric" in model.named_steps:
            metrics["fit_samples"] = model.named_steps["metric"].n_fit_samples_
        atomic_write_json(run_dir.metrics, metrics)
        atomic_write_json(
            run_dir.status,
            {"status": "complete", "wall_seconds": round(time.perf_counter() - started, 1)},
        )
        return metrics


def _finished_before_one_pipeline(run_dir: RunDir, config: TrainConfig) -> dict | None:
    """The metrics of an MLP run finished by medknn's own feature-vector training, before such
    runs went through ``run_training.train``, once its settings are checked; None for any
    other directory. It has no ``data.json`` and no manifest, so it cannot be loaded as a
    ``TrainedRun``; its ``config.yaml`` is read with the plain rule it was scored with
    (``TrainConfig.load_saved``)."""
    if not is_complete(run_dir) or run_dir.data.exists() or manifest_path(run_dir).exists():
        return None
    check_run_dir(run_dir, config)
    if more_epochs_asked(run_dir, config):
        raise ConfigError(
            f"{run_dir.path} is a finished run of an earlier medknn that cannot train on; keep "
            "its epochs, or train into a new --out."
        )
    return read_json(run_dir.metrics)
