"""Miners in pytorch-metric-learning's style."""

from medknn.miners.deep_knn_miner import DeepKNNMiner

__all__ = ["DeepKNNMiner"]
