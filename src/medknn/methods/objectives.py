"""Training objectives: a batch's network outputs in, a loss and loggable numbers out."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class Objective(nn.Module):
    """Base class: ``forward(embeddings, logits, labels) -> (loss, stats)``.

    ``stats`` holds plain floats for the training log (e.g. skipped anchors); it may be empty.
    """

    needs_classifier: bool = False

    def forward(
        self, embeddings: torch.Tensor, logits: torch.Tensor | None, labels: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError


class MetricLossObjective(Objective):
    """Wraps an embedding loss ``loss(embeddings, labels)``; copies its counters into the stats."""

    def __init__(self, loss: nn.Module, stat_attributes: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.loss = loss
        self.stat_attributes = stat_attributes

    def forward(self, embeddings, logits, labels):
        value = self.loss(embeddings, labels)
        stats = {name: float(getattr(self.loss, name)) for name in self.stat_attributes}
        return value, stats


class CrossEntropyObjective(Objective):
    """Softmax cross entropy on the classifier's logits, optionally class-weighted."""

    needs_classifier = True

    def __init__(self, class_weights: torch.Tensor | None = None) -> None:
        super().__init__()
        self.register_buffer("class_weights", class_weights, persistent=False)

    def forward(self, embeddings, logits, labels):
        if logits is None:
            raise RuntimeError("CrossEntropyObjective needs a network with a classifier.")
        return nn.functional.cross_entropy(logits, labels, weight=self.class_weights), {}


def inverse_frequency_weights(class_counts: np.ndarray) -> torch.Tensor:
    """Weights n / (C · n_c), so a balanced data set gets all ones; empty classes get weight 0."""
    counts = np.asarray(class_counts, dtype=np.float64)
    weights = np.zeros_like(counts)
    present = counts > 0
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return torch.as_tensor(weights, dtype=torch.float32)
