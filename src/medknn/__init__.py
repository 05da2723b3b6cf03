"""medknn: medical image classification for scarce, imbalanced data, with case-based kNN evidence.

The Python API mirrors the CLI::

    import medknn
    run = medknn.train({"data": "breastmnist", "method": "deepknn"}, "runs/demo")
    run.predict_files(["lesion.png"])[0].neighbours   # the nearest training cases
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from medknn.errors import ConfigError, DataError, MedknnError, TrainingError
from medknn.lazy import lazy_getattr

if TYPE_CHECKING:
    from medknn.api import (
        ensemble,
        evaluate,
        history,
        load_run,
        predict,
        repair,
        report,
        train,
        tune,
    )
    from medknn.runs.config import TrainConfig

__version__ = "0.1.0"

# Imported on first use: `import medknn` (and so every `medknn` command, `--help` included)
# would otherwise import torch, timm, faiss and scikit-learn, seconds before anything happens.
_LAZY = {
    **{name: "medknn.api" for name in ("evaluate", "history", "load_run", "predict", "repair")},
    **{name: "medknn.api" for name in ("ensemble", "report", "train", "tune")},
    "TrainConfig": "medknn.runs.config",
}


__getattr__ = lazy_getattr("medknn", globals(), _LAZY)


__all__ = [
    "ConfigError",
    "DataError",
    "MedknnError",
    "TrainConfig",
    "TrainingError",
    "__version__",
    "ensemble",
    "evaluate",
    "history",
    "load_run",
    "predict",
    "repair",
    "report",
    "train",
    "tune",
]
