"""Two-stage methods (``supcon``): the stage-2 config, and the guard that a stage-2 run is not
tested on images its stage-1 backbone was trained on."""

from __future__ import annotations

from pathlib import Path

from medknn.errors import ConfigError
from medknn.io import read_json
from medknn.methods import get_method
from medknn.runs.config import TrainConfig
from medknn.runs.run_dir import RunDir
from medknn.runs.training_data import TrainingData


def next_stage_config(config: TrainConfig, first_stage: Path) -> TrainConfig:
    """Stage 2 of ``config``'s two-stage method: its ``next_stage`` method started from the
    stage-1 run in ``first_stage``, for ``stage2_epochs`` epochs at ``stage2_lr`` (by default the
    config's ``epochs`` and ``lr``), with that method's own sampler and options and no
    resampling; everything else (data, split, seed, backbone, batch size, schedule) as stage 1."""
    next_stage = get_method(config.method).next_stage
    if next_stage is None:
        raise ConfigError(f"Method {config.method!r} has one stage; it has no stage 2.")
    return config.replace(
        method=next_stage,
        init_from=str(first_stage),
        epochs=config.epochs if config.stage2_epochs is None else config.stage2_epochs,
        lr=config.lr if config.stage2_lr is None else config.stage2_lr,
        method_options={},
        sampler=None,
        resample="none",
        stage2_epochs=None,
        stage2_lr=None,
    )


def check_split_of_init_run(prepared: TrainingData, config: TrainConfig) -> None:
    """Refuse a run whose test images were training or validation images of its ``--init-from``
    run on the same data: the backbone it starts from would have seen (or been chosen on) them."""
    source = RunDir(Path(config.init_from or ""))
    if not (config.init_from and source.config.exists() and source.split.exists()):
        return
    other = TrainConfig.load_saved(source.config)
    if (other.data, other.data_options) != (config.data, config.data_options):
        return  # another data set: a transfer, not a leak
    saved = read_json(source.split)
    seen = set(saved["train"]["ids"]) | set(saved["val"]["ids"])
    leaked = [image for image in prepared.ids("test") if image in seen]
    if leaked:
        raise ConfigError(
            f"{len(leaked)} test images of this run (e.g. {leaked[0]!r}) were training or "
            f"validation images of --init-from {source.path}, whose backbone this run starts from. "
            "Use that run's split options and seed (split, val_fraction, test_fraction, "
            f"split_seed, seed; see {source.config}), or a new stage 1."
        )
