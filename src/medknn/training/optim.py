"""Optimiser and learning-rate schedule (the Deep kNN paper: SGD, lr 0.01, ×0.5 / 20 epochs)."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from medknn.training.config import TrainConfig


def build_optimizer(
    config: TrainConfig, parameters: Iterable[torch.nn.Parameter]
) -> torch.optim.Optimizer:
    trainable = [p for p in parameters if p.requires_grad]
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            trainable, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    if config.optimizer == "adam":
        return torch.optim.Adam(trainable, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)


def build_scheduler(
    config: TrainConfig, optimizer: torch.optim.Optimizer
) -> torch.optim.lr_scheduler.LRScheduler:
    return torch.optim.lr_scheduler.StepLR(
        optimizer, step_size=config.lr_step, gamma=config.lr_gamma
    )
