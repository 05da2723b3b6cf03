"""Losses in pytorch-metric-learning's style."""

from medknn.losses.deep_knn_loss import DeepKNNLoss
from medknn.losses.mined_loss import MinedLoss

__all__ = ["DeepKNNLoss", "MinedLoss"]
