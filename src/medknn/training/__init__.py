"""Training: the config, the run directory, checkpoints and the one trainer."""

from medknn.training.config import TrainConfig
from medknn.training.run_dir import RunDir
from medknn.training.run_lock import run_lock
from medknn.training.trainer import Trainer

__all__ = ["RunDir", "TrainConfig", "Trainer", "run_lock"]
