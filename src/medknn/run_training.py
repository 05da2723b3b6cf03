"""Training one run directory end to end: the lock, the config check, data, network, the
Trainer (under DDP when started by torchrun), then the kNN index and the test score."""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.markup import escape
from torch.utils.data import DataLoader

from medknn.errors import ConfigError, DataError
from medknn.evaluation import (
    fit_knn_on_training_set,
    make_validator,
)
from medknn.io import (
    atomic_save_tensors,
    atomic_write_json,
    load_tensors,
    read_json,
)
from medknn.methods import MethodSpec, Objective, TrainingSetEmbedder, get_method
from medknn.models import backbone_normalization
from medknn.prediction import TrainedRun, compute_outputs
from medknn.run_scoring import score_part
from medknn.runs import RunDir, TrainConfig, run_lock
from medknn.runs.batches import BatchSampler, build_batch_sampler
from medknn.runs.build import build_network, build_objective, starts_pretrained
from medknn.runs.device import resolve_device
from medknn.runs.prepare import (
    PreparedData,
    prepare_data,
    save_data_record,
    training_augmentation,
)
from medknn.runs.run_claim import (
    check_run_dir,
    clear_never_trained,
    is_complete,
    more_epochs_asked,
    refuse_fewer_epochs,
    write_config,
)
from medknn.runs.run_manifest import write_manifest
from medknn.runs.stages import check_split_of_init_run, next_stage_config
from medknn.runs.training_data import TrainingData, vector_config
from medknn.training import Trainer
from medknn.training.distributed import DistributedContext, distributed_session
from medknn.training.distributed_sampler import DistributedBatchSampler
from medknn.training.optim import build_optimizer
from medknn.training.reproducible import reproducible
from medknn.training.trainer import EpochHook, Validator


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
    data: TrainingData | None = None,
    progress: bool = True,
    console: Console | None = None,
    on_epoch_end: EpochHook | None = None,
) -> TrainedRun:
    """Train ``config`` into the run directory ``out`` (resuming it if it was interrupted),
    index the training set for kNN, score the test split into ``metrics.json``; return the run.
    A two-stage method (``supcon``) trains stage 1 into ``out/stage1``, a complete run of its
    own, and stage 2 from its backbone into ``out``, the method's result.

    ``data`` is input already split, trained on instead of the config's images: feature
    vectors (``medknn.features.FeatureParts``). Their run is an image run in every step and
    file, with the MLP as its backbone and no test-time augmentation (``vector_config``; an
    explicit ``tta: flips`` is refused); the split is theirs, and a resumed run checks it
    against its ``split.json``.

    Under ``torchrun`` every process calls this with the same arguments: they train together
    (DDP, see ``medknn.training.distributed``), rank 0 alone writes ``out`` and scores the run,
    and each process returns the run once it is complete.

    ``on_epoch_end(epoch, record)`` is called after each epoch trained now (not the ones a
    resumed run restores); a two-stage method's stage-2 epochs continue the count of stage 1.
    It may raise to stop training: the run is left resumable."""
    config = as_config(config)
    if data is not None and data.in_features is not None:
        config = vector_config(config)  # what config.yaml records: the MLP, no TTA
    if Path(out).exists() and not Path(out).is_dir():
        raise ConfigError(f"--out {out} is a file; give a new or existing run folder instead.")
    console = console or Console(stderr=True, quiet=not progress)
    with (
        reproducible(config.threads, config.deterministic),
        distributed_session(config.device) as distributed,
    ):
        is_main = distributed is None or distributed.is_main
        if not is_main:
            progress, console = False, Console(stderr=True, quiet=True)
        # Rank 0 alone writes the run, so it alone needs to exclude other jobs.
        with run_lock(out) if is_main else nullcontext():
            if get_method(config.method).next_stage is not None:
                return _train_in_stages(
                    config,
                    Path(out),
                    data=data,
                    progress=progress,
                    console=console,
                    distributed=distributed,
                    on_epoch_end=on_epoch_end,
                )
            return _train_run(
                config,
                Path(out),
                data=data,
                progress=progress,
                console=console,
                distributed=distributed,
                on_epoch_end=on_epoch_end,
            )


def _train_run(
    config: TrainConfig,
    out: Path,
    *,
    data: TrainingData | None = None,
    progress: bool,
    console: Console,
    distributed: DistributedContext | None = None,
    on_epoch_end: EpochHook | None = None,
) -> TrainedRun:
    """Train one run directory (a two-stage method's stage 1 is one)."""
    run_dir = RunDir(out)
    is_main = distributed is None or distributed.is_main
    is_new = check_run_dir(run_dir, config)
    if is_complete(run_dir):
        refuse_fewer_epochs(run_dir, config)
        if not more_epochs_asked(run_dir, config):
            console.print(f"{run_dir.path} is already complete; loading it.", markup=False)
            return TrainedRun.load(run_dir.path)
    if distributed is not None:  # every rank has read the directory before rank 0 changes it
        distributed.barrier("checking the run directory")
    if is_main and is_new:
        clear_never_trained(run_dir)
    elif is_main:
        run_dir.remove_partial_writes()
    started = time.perf_counter()
    spec = get_method(config.method)
    device = resolve_device(config.device) if distributed is None else distributed.device
    torch.manual_seed(config.seed)
    # A new run directory is written only once data, method and network are known to work, so
    # that a typo leaves nothing behind that would block the corrected command.
    prepared = _prepare(config, run_dir, is_new, data, progress=progress)
    if spec.freeze_backbone:  # it evaluates the backbone it starts from: same test set
        check_split_of_init_run(prepared, config)
    network = build_network(
        config, spec, len(prepared.class_names), in_features=prepared.in_features
    )
    if isinstance(prepared, PreparedData):  # images, as the backbone's weights expect them
        prepared = prepared.normalized_for(*backbone_normalization(network.backbone))
    job = RunJob(
        config,
        spec,
        prepared,
        network,
        run_dir,
        device,
        progress,
        console,
        distributed,
        on_epoch_end,
    )
    if is_new:
        _check_before_writing(job)
    if is_main:
        write_config(run_dir, config)
        if is_new:
            save_data_record(prepared, config, run_dir)
    # wall_seconds covers every attempt: this one plus the epochs restored from a checkpoint.
    earlier_seconds = train_network(job) if spec.trains else 0.0
    if not spec.trains and is_main:
        atomic_write_json(run_dir.history, [])
    if is_main:
        if run_dir.model.exists():
            network.load_state_dict(load_tensors(run_dir.model))
        else:
            atomic_save_tensors(network.state_dict(), run_dir.model)
        _finish(job, started - earlier_seconds)
    if distributed is not None:
        distributed.barrier("waiting for rank 0 to index the training set and score the test split")
    return TrainedRun.load(run_dir.path)


def _prepare(
    config: TrainConfig, run_dir: RunDir, is_new: bool, data: TrainingData | None, *, progress: bool
) -> TrainingData:
    """The run's data: the config's images decoded and split (a resumed run's split read from
    its ``split.json``), or ``data`` as given (a resumed run's split checked against it)."""
    if data is None:
        return prepare_data(config, None if is_new else run_dir, progress=progress)
    if not is_new:
        save_data_record(data, config, run_dir)
    return data


def _train_in_stages(
    config: TrainConfig,
    out: Path,
    *,
    data: TrainingData | None = None,
    progress: bool,
    console: Console,
    distributed: DistributedContext | None = None,
    on_epoch_end: EpochHook | None = None,
) -> TrainedRun:
    """Stage 1 into ``out/stage1``, then the next stage from its backbone into ``out``. Each
    stage resumes on its own; ``out/status.json`` records the wall time of both."""
    run_dir = RunDir(out)
    first = RunDir(run_dir.first_stage)
    second = next_stage_config(config, first.path)
    # Checked before stage 1 trains for hours: out must be new or hold this method's stage 2.
    check_run_dir(run_dir, second)
    if run_dir.config.exists() and first.config.exists() and more_epochs_asked(first, config):
        raise ConfigError(
            f"{out} holds a stage 2 trained on the {TrainConfig.load_saved(first.config).epochs} "
            f"epochs of its stage 1; more stage-1 epochs would leave it stale. Use a new --out, "
            f"or rerun stage 2 alone on a longer stage 1: --method {second.method} "
            "--init-from STAGE1_RUN --out NEW_RUN."
        )
    console.rule(escape(f"{config.method}: stage 1 → {first.path}"))
    _train_run(
        config,
        first.path,
        data=data,
        progress=progress,
        console=console,
        distributed=distributed,
        on_epoch_end=on_epoch_end,
    )
    console.rule(escape(f"{config.method}: stage 2 ({second.method}) → {out}"))
    second_hook = None
    if on_epoch_end is not None:  # stage 2's epochs continue stage 1's count
        offset = len(read_json(first.history))

        def second_hook(epoch: int, record: dict[str, float]) -> None:
            on_epoch_end(offset + epoch, record)

    run = _train_run(
        second,
        out,
        data=data,
        progress=progress,
        console=console,
        distributed=distributed,
        on_epoch_end=second_hook,
    )
    status = read_json(run_dir.status)
    is_main = distributed is None or distributed.is_main
    if is_main and "stage_wall_seconds" not in status:  # stage 2 was (re)trained just now
        walls = [read_json(first.status).get("wall_seconds") or 0.0, status["wall_seconds"]]
        status.update(wall_seconds=round(sum(walls), 1), stage_wall_seconds=walls)
        atomic_write_json(run_dir.status, status)
    return run


@dataclass
class RunJob:
    """One training run being carried out: everything its steps share. ``prepared`` is the
    run's ``TrainingData``: decoded images or feature vectors."""

    config: TrainConfig
    spec: MethodSpec
    prepared: TrainingData
    network: torch.nn.Module
    run_dir: RunDir
    device: torch.device
    progress: bool
    console: Console
    distributed: DistributedContext | None = None
    on_epoch_end: EpochHook | None = None


@dataclass
class TrainingSetup:
    """What a run trains with, built the same way for images and feature vectors."""

    config: TrainConfig  # epochs resolved: config.yaml keeps epochs: null
    batch_sampler: BatchSampler
    loader: DataLoader
    objective: Objective
    validate: Validator | None


def build_training(job: RunJob) -> TrainingSetup:
    """The batch sampler (the method's or the config's kind, with resampling), the epochs it
    gives, the loader of the method's training dataset, the objective and the validator."""
    config, prepared, distributed = job.config, job.prepared, job.distributed
    batch_sampler: BatchSampler = build_batch_sampler(config, job.spec, prepared)
    config = config.replace(epochs=config.resolved_epochs(len(batch_sampler)))
    if distributed is not None:
        batch_sampler = DistributedBatchSampler(
            batch_sampler, rank=distributed.rank, world_size=distributed.world_size
        )
    loader = DataLoader(
        prepared.training_dataset(job.spec, training_augmentation(config, job.spec)),
        batch_sampler=batch_sampler,
        num_workers=config.num_workers,
    )
    objective = build_objective(
        config, prepared.class_counts("train"), training_set=_training_set_embedder(job)
    )
    validate = make_validator(job.spec, prepared, config.knn, device=job.device)
    return TrainingSetup(config, batch_sampler, loader, objective, validate)


def train_network(job: RunJob) -> float:
    """Train the network of ``job`` (images or feature vectors) with what ``build_training``
    builds; return the seconds its earlier attempts spent on restored epochs."""
    setup = build_training(job)
    trainer = Trainer(
        job.network,
        setup.objective,
        setup.config,
        job.run_dir,
        device=job.device,
        validate=setup.validate,
        progress=job.progress,
        console=job.console,
        distributed=job.distributed,
        pretrained_backbone=starts_pretrained(setup.config, job.spec),
        on_epoch_end=job.on_epoch_end,
    )
    trainer.fit(setup.loader)
    return trainer.restored_seconds


def _training_set_embedder(job: RunJob) -> TrainingSetEmbedder:
    """The training images with evaluation transforms, for objectives that keep a bank of
    their embeddings (Deep kNN with whole-set neighbours); embedded on the run's device."""
    prepared = job.prepared
    dataset = prepared.dataset("train", augment=False)

    def embed(network: torch.nn.Module) -> torch.Tensor:
        embeddings, _ = compute_outputs(
            network,
            dataset,
            device=job.device,
            progress=job.progress,
            description="embedding bank",
        )
        return torch.from_numpy(embeddings)

    return TrainingSetEmbedder(prepared.indices("train"), prepared.labels("train"), embed)


def _finish(job: RunJob, started: float) -> None:
    """Index the training set, score the test split, mark the run complete."""
    config, run_dir = job.config, job.run_dir
    job.network.to(job.device)
    knn = fit_knn_on_training_set(
        job.network, job.prepared, config.knn, device=job.device, progress=job.progress
    )
    knn.save(run_dir.knn)
    metrics, outputs = score_part(
        job.network,
        job.spec,
        job.prepared,
        knn,
        config,
        run_dir,
        "test",
        device=job.device,
        progress=job.progress,
        decide=config.decision == "validated",
    )
    outputs.save(run_dir.outputs("test"))
    atomic_write_json(run_dir.metrics, metrics)
    atomic_write_json(
        run_dir.status,
        {"status": "complete", "wall_seconds": round(time.perf_counter() - started, 1)},
    )
    write_manifest(run_dir)  # what TrainedRun.load checks the run's files against


def _check_before_writing(job: RunJob) -> None:
    """Build what training builds (sampler, objective, optimiser) once before a new run
    directory is written: a value they refuse then leaves nothing behind, and the corrected
    command starts cleanly."""
    check_method_runs(job.config, job.prepared)
    if job.spec.trains:
        build_optimizer(job.config, job.network)


def check_method_runs(config: TrainConfig, prepared: TrainingData) -> int:
    """Build what training ``config.method`` on ``prepared`` builds (batch sampler, objective),
    without a network; raise the ``MedknnError`` that a run would stop with (e.g. too few
    classes or images for its batches). Return the epochs ``epochs: null`` resolves to."""
    spec = get_method(config.method)
    if spec.requires_init_from and not config.init_from:
        raise ConfigError(f"Method {config.method!r} starts from a trained run (--init-from RUN).")
    if len(prepared.class_names) < 2:
        raise DataError(
            f"{config.data} holds one class ({', '.join(map(repr, prepared.class_names))}); "
            "a classifier needs at least two. Add the images of the other class(es)."
        )
    if not spec.trains:
        return 0
    batches = build_batch_sampler(config, spec, prepared)

    def never_called(network: torch.nn.Module) -> torch.Tensor:
        raise AssertionError("check_method_runs embeds nothing")

    bank = TrainingSetEmbedder(prepared.indices("train"), prepared.labels("train"), never_called)
    build_objective(config, prepared.class_counts("train"), training_set=bank)
    return config.resolved_epochs(len(batches))
