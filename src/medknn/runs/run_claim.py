"""Claiming a run directory for a config: new, or one holding the same settings (resumed, reused
when complete, trained on when more epochs are asked, refused when fewer are). One claim for
every kind of run: images and feature vectors through ``run_training.train``, and the
feature-vector baselines without a network (``features/methods.py``)."""

from __future__ import annotations

from pathlib import Path

from medknn.errors import ConfigError
from medknn.io import atomic_write_text, read_json
from medknn.runs.config import TrainConfig, check_same_settings
from medknn.runs.run_dir import RunDir
from medknn.runs.run_manifest import remove_manifest

# Options that may change between an interrupted run and its resumption.
RESUMABLE_CHANGES = {
    "epochs",
    "stage2_epochs",
    "device",
    "num_workers",
    "threads",  # how the work is split, not what is computed: a run may move machines
    "deterministic",
    "validate_every",
    "download",
    "tta",  # scoring only: a run that predates tta: auto resumes under today's default
    "memory_format",  # how tensors are laid out, not what is computed
}


def check_run_dir(run_dir: RunDir, config: TrainConfig) -> bool:
    """True for a new run (or one that never trained: started again, whatever its settings);
    for an existing one, check it was started with the same config."""
    if run_dir.path.exists() and not run_dir.path.is_dir():
        raise ConfigError(f"--out {run_dir.path} is a file; give a new or existing run folder.")
    if run_dir.config.exists() and _never_trained(run_dir):
        return True
    if run_dir.config.exists():
        resumable = RESUMABLE_CHANGES
        if _is_own_stage_two(run_dir, config):
            resumable = resumable | {"init_from"}
        check_same_settings(run_dir.config, config, resumable=resumable, run=run_dir.path)
        return False
    # Stage 2 of a two-stage method starts in the directory that holds its stage-1 run.
    init_run = Path(config.init_from).resolve() if config.init_from else None
    if run_dir.path.exists() and any(p.resolve() != init_run for p in run_dir.path.iterdir()):
        raise ConfigError(
            f"{run_dir.path} exists and is not a medknn run. Choose an empty or new --out."
        )
    return True


def refuse_fewer_epochs(run_dir: RunDir, config: TrainConfig) -> None:
    """A finished run's config.yaml records how it was trained: fewer epochs would rewrite it
    while the weights stay those of the longer training."""
    trained = TrainConfig.load_saved(run_dir.config).epochs
    if None not in (trained, config.epochs) and config.epochs < trained:
        raise ConfigError(
            f"{run_dir.path} is a finished run of {trained} epochs; {config.epochs} epochs would "
            f"rewrite its record but not its weights. Ask for --epochs {trained} (or more, to "
            "train on), or train the shorter run into a new --out."
        )


def _never_trained(run_dir: RunDir) -> bool:
    """A run directory whose first attempt failed before its first epoch was saved."""
    return not any(p.exists() for p in (run_dir.last_checkpoint, run_dir.model, run_dir.status))


def clear_never_trained(run_dir: RunDir) -> None:
    """Remove the record of an attempt that never trained (its split was made from data the
    user may have fixed since), so that the new attempt starts as a new run."""
    if not run_dir.config.exists():
        return
    for path in (run_dir.config, run_dir.split, run_dir.data, run_dir.history, run_dir.log):
        path.unlink(missing_ok=True)
    run_dir.remove_partial_writes()


def _is_own_stage_two(run_dir: RunDir, config: TrainConfig) -> bool:
    """True for stage 2 of a two-stage run started from the stage 1 inside its own folder, then
    and now. Its init_from follows the folder, so a copied or moved run keeps being reused."""
    if not (config.init_from and RunDir(run_dir.first_stage).config.exists()):
        return False
    saved = TrainConfig.load_saved(run_dir.config).init_from
    return (
        Path(config.init_from).resolve() == run_dir.first_stage.resolve()
        and saved is not None
        and Path(saved).name == run_dir.first_stage.name
    )


def more_epochs_asked(run_dir: RunDir, config: TrainConfig) -> bool:
    return TrainConfig.load_saved(run_dir.config).epochs != config.epochs


def write_config(run_dir: RunDir, config: TrainConfig) -> None:
    run_dir.create()
    if run_dir.status.exists():
        run_dir.status.unlink()  # more epochs asked for: no longer complete until they are done
    remove_manifest(run_dir)  # its files are about to change
    atomic_write_text(run_dir.config, config.to_yaml())


def is_complete(run_dir: RunDir) -> bool:
    return run_dir.status.exists() and read_json(run_dir.status).get("status") == "complete"
