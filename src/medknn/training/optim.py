"""Optimiser, parameter groups and learning-rate schedule.

Two schedules: the Deep kNN paper's step decay (SGD, lr 0.01, ×0.5 every 20 epochs; torch's
``StepLR``, stepped per epoch) and the recipe's linear warm-up then cosine decay (timm's
``CosineLRScheduler``, stepped per update so that a one-epoch warm-up is smooth).
"""

from __future__ import annotations

from typing import Any

import torch
from timm.scheduler import CosineLRScheduler
from torch import nn

from medknn.runs.config import TrainConfig


def parameter_groups(
    network: nn.Module, config: TrainConfig, *, pretrained_backbone: bool
) -> list[dict[str, Any]]:
    """One group, or two when a pretrained backbone learns at ``lr * backbone_lr_scale``:
    fresh layers need large steps, pretrained ones small steps to keep what they learned."""
    trainable = [p for p in network.parameters() if p.requires_grad]
    scale = config.backbone_lr_scale if pretrained_backbone else 1.0
    if not hasattr(network, "backbone") or (scale == 1.0 and not config.lp_epochs):
        return [{"params": trainable, "lr": config.lr, "name": "all"}]
    # Frozen now (linear probing first) but trained later: every backbone parameter is listed.
    backbone = list(network.backbone.parameters())
    backbone_ids = {id(p) for p in backbone}
    rest = [p for p in trainable if id(p) not in backbone_ids]
    if scale == 1.0:
        return [{"params": backbone + rest, "lr": config.lr, "name": "all"}]
    return [
        {"params": backbone, "lr": config.lr * scale, "name": "backbone"},
        {"params": rest, "lr": config.lr, "name": "head"},
    ]


def build_optimizer(
    config: TrainConfig, network: nn.Module, *, pretrained_backbone: bool = False
) -> torch.optim.Optimizer:
    groups = parameter_groups(network, config, pretrained_backbone=pretrained_backbone)
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    if config.optimizer == "adam":
        return torch.optim.Adam(groups, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)


class LearningRateSchedule:
    """The configured schedule behind one interface: the trainer calls :meth:`after_update`
    after every optimiser step and :meth:`after_epoch` after every epoch; each schedule reacts
    to the one it counts in."""

    def __init__(
        self, config: TrainConfig, optimizer: torch.optim.Optimizer, updates_per_epoch: int
    ) -> None:
        self.per_update = config.schedule == "cosine"
        if self.per_update:
            updates_per_epoch = max(updates_per_epoch, 1)
            warmup = config.warmup_epochs * updates_per_epoch
            self.scheduler: Any = CosineLRScheduler(
                optimizer,
                t_initial=max(config.epochs * updates_per_epoch - warmup, 1),
                warmup_t=warmup,
                warmup_lr_init=config.lr * 1e-3,
                warmup_prefix=True,
                t_in_epochs=False,
            )
        else:
            self.scheduler = torch.optim.lr_scheduler.StepLR(
                optimizer, step_size=config.lr_step, gamma=config.lr_gamma
            )

    def after_update(self, updates: int) -> None:
        if self.per_update:
            self.scheduler.step_update(updates)

    def after_epoch(self) -> None:
        if not self.per_update:
            self.scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        return self.scheduler.state_dict()

    def resume(self, state: dict[str, Any], updates: int) -> None:
        """Continue after ``updates`` optimiser steps. The cosine schedule is a function of the
        update count and of today's config (so a run given more epochs stretches its curve);
        the step schedule restores its own state."""
        if self.per_update:
            self.scheduler.step_update(updates)
        else:
            self.scheduler.load_state_dict(state)
