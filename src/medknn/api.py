"""The Python API, mirroring the CLI: train from a config, load a run, evaluate, predict."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from torch.utils.data import DataLoader

from medknn.errors import ConfigError
from medknn.evaluation import (
    evaluate_network,
    fit_knn_on_training_set,
    make_validator,
    with_embedding_quality,
)
from medknn.io import (
    atomic_save_tensors,
    atomic_write_json,
    atomic_write_text,
    load_tensors,
    read_json,
)
from medknn.methods import MethodSpec, ObjectiveContext, create_objective, get_method
from medknn.models import backbone_normalization
from medknn.prediction import Prediction, TrainedRun
from medknn.reports import write_run_plots
from medknn.training import RunDir, TrainConfig, Trainer
from medknn.training.batches import build_batch_sampler
from medknn.training.build import build_network
from medknn.training.prepare import PreparedData, prepare_data, save_data_record

# Options that may change between an interrupted run and its resumption.
RESUMABLE_CHANGES = {"epochs", "device", "num_workers", "validate_every", "download"}


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigError(f"Unknown device {name!r}: use auto, cpu or cuda[:N].") from None


def as_config(config: TrainConfig | Mapping[str, Any] | str | Path) -> TrainConfig:
    if isinstance(config, TrainConfig):
        return config
    if isinstance(config, Mapping):
        return TrainConfig.from_dict(dict(config))
    return TrainConfig.from_yaml(config)


def train(
    config: TrainConfig | Mapping[str, Any] | str | Path,
    out: str | Path,
    *,
    progress: bool = True,
    console: Console | None = None,
) -> TrainedRun:
    """Train ``config`` into the run directory ``out`` (resuming it if it was interrupted),
    index the training set for kNN, score the test split into ``metrics.json``; return the run."""
    config = as_config(config)
    console = console or Console(stderr=True, quiet=not progress)
    run_dir = RunDir(Path(out))
    is_new = _check_run_dir(run_dir, config)
    if not is_new:
        run_dir.remove_partial_writes()
    if _is_complete(run_dir) and not _more_epochs_asked(run_dir, config):
        console.print(f"{run_dir.path} is already complete; loading it.")
        return TrainedRun.load(run_dir.path)
    started = time.perf_counter()
    spec = get_method(config.method)
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    # A new run directory is written only once data, method and network are known to work, so
    # that a typo leaves nothing behind that would block the corrected command.
    prepared = prepare_data(config, None if is_new else run_dir, progress=progress)
    network = build_network(config, spec, len(prepared.class_names))
    _write_config(run_dir, config)
    if is_new:
        save_data_record(prepared, config, run_dir)
    prepared = prepared.normalized_for(*backbone_normalization(network.backbone))
    job = _Job(config, spec, prepared, network, run_dir, device, progress, console)
    if spec.trains:
        _train_network(job)
    else:
        atomic_write_json(run_dir.history, [])
    if run_dir.model.exists():
        network.load_state_dict(load_tensors(run_dir.model))
    else:
        atomic_save_tensors(network.state_dict(), run_dir.model)
    _finish(job, started)
    return TrainedRun.load(run_dir.path)


@dataclass
class _Job:
    """One training run being carried out: everything its steps share."""

    config: TrainConfig
    spec: MethodSpec
    prepared: PreparedData
    network: torch.nn.Module
    run_dir: RunDir
    device: torch.device
    progress: bool
    console: Console


def _train_network(job: _Job) -> None:
    config, prepared = job.config, job.prepared
    loader = DataLoader(
        prepared.dataset("train", augment=True),
        batch_sampler=build_batch_sampler(config, job.spec, prepared),
        num_workers=config.num_workers,
    )
    objective = create_objective(
        job.spec.name,
        ObjectiveContext(
            class_counts=prepared.class_counts("train"),
            num_positives=config.num_positives,
            num_negatives=config.num_negatives,
            margin=config.margin,
            options=config.method_options,
        ),
    )
    validate = make_validator(
        job.spec, prepared, k=config.k_predict, weights=config.knn_weights, device=job.device
    )
    trainer = Trainer(
        job.network,
        objective,
        config,
        job.run_dir,
        device=job.device,
        validate=validate,
        progress=job.progress,
        console=job.console,
    )
    trainer.fit(loader)


def _finish(job: _Job, started: float) -> None:
    """Index the training set, score the test split, mark the run complete."""
    config, run_dir = job.config, job.run_dir
    job.network.to(job.device)
    knn = fit_knn_on_training_set(
        job.network,
        job.prepared,
        k=config.k_predict,
        weights=config.knn_weights,
        device=job.device,
        progress=job.progress,
    )
    knn.save(run_dir.knn)
    metrics, outputs = evaluate_network(
        job.network,
        job.spec,
        job.prepared,
        "test",
        knn=knn,
        device=job.device,
        progress=job.progress,
    )
    with_embedding_quality(metrics, outputs, knn)
    outputs.save(run_dir.outputs("test"))
    metrics["method"] = config.method
    metrics["seed"] = config.seed
    atomic_write_json(run_dir.metrics, metrics)
    atomic_write_json(
        run_dir.status,
        {"status": "complete", "wall_seconds": round(time.perf_counter() - started, 1)},
    )


def _check_run_dir(run_dir: RunDir, config: TrainConfig) -> bool:
    """True for a new run; for an existing one, check it was started with the same config."""
    if run_dir.config.exists():
        previous = TrainConfig.from_yaml(run_dir.config).to_dict()
        changed = {
            key: (previous[key], value)
            for key, value in config.to_dict().items()
            if previous.get(key) != value and key not in RESUMABLE_CHANGES
        }
        if changed:
            listing = ", ".join(f"{k}: {a!r} → {b!r}" for k, (a, b) in changed.items())
            raise ConfigError(
                f"{run_dir.path} holds a run with other settings ({listing}). Use a new --out, "
                "or delete that directory to start again."
            )
        return False
    if run_dir.path.exists() and any(run_dir.path.iterdir()):
        raise ConfigError(
            f"{run_dir.path} exists and is not a medknn run. Choose an empty or new --out."
        )
    return True


def _more_epochs_asked(run_dir: RunDir, config: TrainConfig) -> bool:
    return TrainConfig.from_yaml(run_dir.config).epochs != config.epochs


def _write_config(run_dir: RunDir, config: TrainConfig) -> None:
    run_dir.create()
    if run_dir.status.exists():
        run_dir.status.unlink()  # more epochs asked for: no longer complete until they are done
    atomic_write_text(run_dir.config, config.to_yaml())


def _is_complete(run_dir: RunDir) -> bool:
    return run_dir.status.exists() and read_json(run_dir.status).get("status") == "complete"


def load_run(path: str | Path) -> TrainedRun:
    """A finished run, ready to predict."""
    return TrainedRun.load(path)


def predict(run: str | Path | TrainedRun, images: list[str | Path]) -> list[Prediction]:
    """Predict image files with a run; each prediction carries its nearest training cases."""
    trained = run if isinstance(run, TrainedRun) else TrainedRun.load(run)
    return trained.predict_files(images)


def evaluate(
    run: str | Path | TrainedRun,
    *,
    part: str = "test",
    plots: bool = False,
    thumbnails: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Re-score a finished run on ``part`` of its own saved split (``metrics.json`` for test);
    ``plots=True`` also writes the confusion matrix, ROC curves and a t-SNE map of the
    embeddings to ``RUN/plots/`` (``thumbnails=True`` adds the map drawn with the images)."""
    trained = run if isinstance(run, TrainedRun) else TrainedRun.load(run)
    if part not in ("train", "val", "test"):
        raise ConfigError(f"part={part!r}: use train, val or test.")
    prepared = prepare_data(trained.config, trained.run_dir, progress=progress)
    prepared = prepared.normalized_for(*trained.normalization())
    device = resolve_device(trained.config.device)
    trained.network.to(device)
    metrics, outputs = evaluate_network(
        trained.network,
        trained.spec,
        prepared,
        part,
        knn=trained.knn,
        device=device,
        progress=progress,
    )
    metrics["method"] = trained.config.method
    metrics["seed"] = trained.config.seed
    with_embedding_quality(metrics, outputs, trained.knn)
    outputs.save(trained.run_dir.outputs(part))
    if part == "test":
        atomic_write_json(trained.run_dir.metrics, metrics)
    if plots:
        metrics["plots"] = [
            str(p)
            for p in write_run_plots(
                trained.run_dir.plots,
                metrics,
                outputs,
                trained.class_names,
                part=part,
                thumbnails=prepared.images[outputs.indices] if thumbnails else None,
            )
        ]
    return metrics


def history(run: str | Path) -> list[dict[str, float]]:
    return read_json(RunDir(Path(run)).history)


__all__ = ["as_config", "evaluate", "history", "load_run", "predict", "train"]
