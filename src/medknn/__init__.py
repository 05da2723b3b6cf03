"""medknn: medical image classification for scarce, imbalanced data, with case-based kNN evidence.

The Python API mirrors the CLI::

    import medknn
    run = medknn.train({"data": "breastmnist", "method": "deepknn"}, "runs/demo")
    run.predict_files(["lesion.png"])[0].neighbours   # the nearest training cases
"""

from medknn.api import ensemble, evaluate, history, load_run, predict, report, train
from medknn.errors import ConfigError, DataError, MedknnError, TrainingError
from medknn.training.config import TrainConfig

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DataError",
    "MedknnError",
    "TrainConfig",
    "ensemble",
    "TrainingError",
    "__version__",
    "evaluate",
    "history",
    "load_run",
    "predict",
    "report",
    "train",
]
