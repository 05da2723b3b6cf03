"""Losses in pytorch-metric-learning's style."""

from medknn.losses.bstriplet_loss import BSTripletLoss
from medknn.losses.constellation_loss import ConstellationLoss
from medknn.losses.deep_knn_loss import DeepKNNLoss
from medknn.losses.mined_loss import MinedLoss

__all__ = ["BSTripletLoss", "ConstellationLoss", "DeepKNNLoss", "MinedLoss"]
