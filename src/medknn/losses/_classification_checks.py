"""Argument checks shared by the classification losses (focal, LDAM)."""

from __future__ import annotations

import torch
from torch import Tensor

from medknn.errors import ConfigError


def check_class_weight(weight: Tensor | None, loss_name: str) -> Tensor | None:
    """``weight`` as a float 1-D tensor of non-negative finite values (or None)."""
    if weight is None:
        return None
    weight = torch.as_tensor(weight, dtype=torch.float32)
    if weight.ndim != 1 or len(weight) == 0:
        raise ConfigError(
            f"{loss_name} weight must be a 1-D tensor with one value per class, got shape "
            f"{tuple(weight.shape)}."
        )
    if not torch.isfinite(weight).all() or (weight < 0).any():
        raise ConfigError(
            f"{loss_name} weight {weight.tolist()} must hold finite, non-negative values."
        )
    return weight


def check_logits_and_labels(
    logits: Tensor, labels: Tensor, weight: Tensor | None, loss_name: str
) -> None:
    """Refuse shapes and labels that would otherwise end in a deep torch error."""
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ConfigError(
            f"{loss_name} needs logits of shape (batch, classes) and labels of shape (batch,), "
            f"got {tuple(logits.shape)} and {tuple(labels.shape)}."
        )
    num_classes = logits.shape[1]
    if weight is not None and len(weight) != num_classes:
        raise ConfigError(
            f"{loss_name} has {len(weight)} class weights but the logits have {num_classes} "
            "classes; pass one weight per class."
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise ConfigError(
            f"{loss_name} got labels from {labels.min().item()} to {labels.max().item()} for "
            f"{num_classes} classes; labels must lie in 0..{num_classes - 1}."
        )
