"""A PML loss fed by a PML miner, callable like a plain loss: ``loss(embeddings, labels)``."""

from __future__ import annotations

import torch
from pytorch_metric_learning.losses import BaseMetricLossFunction
from pytorch_metric_learning.miners import BaseMiner
from torch import nn


class MinedLoss(nn.Module):
    """Runs ``miner`` on the batch and hands its tuples to ``loss``."""

    def __init__(self, loss: BaseMetricLossFunction, miner: BaseMiner) -> None:
        super().__init__()
        self.loss = loss
        self.miner = miner

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.loss(embeddings, labels, self.miner(embeddings, labels))
