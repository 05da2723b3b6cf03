"""One method on one split of a feature set: fit or train, score the test part, keep a run dir."""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch
from rich.console import Console

from medknn.errors import ConfigError, did_you_mean
from medknn.evaluation import classification_metrics
from medknn.features.metric_knn import LINEAR_METHODS, make_metric_knn
from medknn.features.mlp_training import score_test_part, train_mlp
from medknn.features.parts import FeatureParts
from medknn.io import atomic_write_json, atomic_write_text, read_json
from medknn.methods import get_method, list_methods
from medknn.runs import RunDir, TrainConfig
from medknn.runs.config import check_same_settings
from medknn.runs.device import resolve_device
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
# Options that may differ when an interrupted run is resumed.
RESUMABLE_CHANGES = {"device", "num_workers", "threads", "deterministic"}


def feature_method_label(method: str) -> str:
    """The Table 3 name of a method: ``NCA``, ``MLP+deep-kNN``, ... (``MLP+<name>`` otherwise)."""
    return TABLE3_LABELS.get(method, f"MLP+{method}")


def check_feature_method(method: str) -> None:
    """ConfigError unless ``method`` runs on feature vectors: a linear method (``knn-basic``,
    ``nca``, ``lmnn``) or a registered method that declares it can (the
    MLP takes the backbone's place); any other registered method is refused with its reason."""
    if method in LINEAR_METHODS:
        return
    on_vectors = [s.name for s in list_methods() if s.vector_problem is None]
    if method not in {s.name for s in list_methods()}:
        raise ConfigError(
            f"Method {method!r} does not run on feature vectors. "
            + did_you_mean(method, (*LINEAR_METHODS, *on_vectors))
        )
    problem = get_method(method).vector_problem
    if problem is not None:
        raise ConfigError(
            f"Method {method!r} does not run on feature vectors: {problem}. Methods that do: "
            f"{', '.join((*LINEAR_METHODS, *on_vectors))}."
        )


def run_feature_method(
    method: str,
    parts: FeatureParts,
    config: TrainConfig,
    out: str | os.PathLike,
    *,
    progress: bool = True,
    console: Console | None = None,
) -> dict:
    """Fit (``knn-basic``/``nca``/``lmnn``) or train (an MLP with a registered objective) on the
    training part, score the test part, and return its metrics (Acc, MCR, RS, ...).

    ``out`` becomes a run directory (``config.yaml``, ``metrics.json``, ``status.json``; for the
    MLP also the weights, history and kNN index). A finished run is read back, not redone; an
    interrupted MLP run resumes from its last epoch. The config's ``threads`` and
    ``deterministic`` hold while it runs (``training/reproducible.py``).
    """
    with reproducible(config.threads, config.deterministic):
        return _run_feature_method(method, parts, config, out, progress=progress, console=console)


def _run_feature_method(
    method: str,
    parts: FeatureParts,
    config: TrainConfig,
    out: str | os.PathLike,
    *,
    progress: bool,
    console: Console | None,
) -> dict:
    console = console or Console(stderr=True, quiet=not progress)
    check_feature_method(method)
    config = config.replace(method=method)
    run_dir = RunDir(Path(out))
    _claim(run_dir, config)
    if run_dir.status.exists() and run_dir.metrics.exists():
        console.print(f"{run_dir.path} is already complete; reusing its metrics.", markup=False)
        return read_json(run_dir.metrics)
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    notes: dict = {}
    if method in LINEAR_METHODS:
        model = make_metric_knn(
            method,
            num_features=parts.dim,
            knn=config.knn,
            num_train=parts.size("train"),
            options=config.method_options,
            random_state=config.seed,
        ).fit(parts.features["train"], parts.labels("train"))
        test = parts.features["test"]
        predicted, proba = model.predict(test), model.predict_proba(test)
        if "metric" in model.named_steps:
            notes["fit_samples"] = model.named_steps["metric"].n_fit_samples_
        metrics = classification_metrics(
            parts.labels("test"),
            predicted,
            proba=proba,
            class_names=parts.class_names,
            train_counts=parts.class_counts("train"),
        )
    else:
        spec, device = get_method(method), resolve_device(config.device)
        network = train_mlp(
            spec, parts, config, run_dir, device=device, progress=progress, console=console
        )
        metrics, knn = score_test_part(network, spec, parts, config, device)
        if knn is not None:
            knn.save(run_dir.knn)
    metrics.update(method=method, seed=config.seed, **notes)
    atomic_write_json(run_dir.metrics, metrics)
    atomic_write_json(
        run_dir.status,
        {"status": "complete", "wall_seconds": round(time.perf_counter() - started, 1)},
    )
    return metrics


def _claim(run_dir: RunDir, config: TrainConfig) -> None:
    """Write ``config.yaml`` in a new run dir; refuse one that holds other settings."""
    if run_dir.config.exists():
        check_same_settings(run_dir.config, config, resumable=RESUMABLE_CHANGES, run=run_dir.path)
        return
    if run_dir.path.exists() and any(run_dir.path.iterdir()):
        raise ConfigError(
            f"{run_dir.path} exists and is not a medknn run. Choose an empty or new --out."
        )
    atomic_write_text(run_dir.config, config.to_yaml())
