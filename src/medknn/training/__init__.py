"""Training: the one trainer, its optimiser and schedule, the weight EMA, checkpoints and DDP."""

from medknn.training.trainer import Trainer

__all__ = ["Trainer"]
