"""Runs: the config, the run directory, data preparation and the network a run is built from."""

from medknn.runs.config import TrainConfig
from medknn.runs.run_dir import RunDir
from medknn.runs.run_lock import run_lock

__all__ = ["RunDir", "TrainConfig", "run_lock"]
