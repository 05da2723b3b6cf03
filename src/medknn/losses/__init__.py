"""Losses: metric losses in pytorch-metric-learning's style; focal and LDAM for imbalance."""

from medknn.losses.bstriplet_loss import BSTripletLoss
from medknn.losses.constellation_loss import ConstellationLoss
from medknn.losses.deep_knn_loss import DeepKNNLoss
from medknn.losses.focal_loss import FocalLoss
from medknn.losses.ldam_loss import LDAMLoss, drw_weights
from medknn.losses.mined_loss import MinedLoss
from medknn.losses.multi_pair_npairs_loss import MultiPairNPairsLoss
from medknn.losses.supcon_loss import SupConLoss

__all__ = [
    "BSTripletLoss",
    "ConstellationLoss",
    "DeepKNNLoss",
    "FocalLoss",
    "LDAMLoss",
    "MinedLoss",
    "MultiPairNPairsLoss",
    "SupConLoss",
    "drw_weights",
]
