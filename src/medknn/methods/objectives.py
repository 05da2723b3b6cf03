"""Training objectives: a batch's network outputs in, a loss and loggable numbers out."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from medknn.errors import ConfigError
from medknn.methods.embedding_bank import EmbeddingBank


class Objective(nn.Module):
    """Base class: ``forward(embeddings, logits, labels) -> (loss, stats)``.

    ``stats`` holds plain floats for the training log (e.g. skipped anchors); it may be empty.
    An objective with ``needs_table_indices`` is also given ``table_indices=``, the data-table
    row of each batch image (repeated like the labels for multi-view batches).
    """

    needs_classifier: bool = False
    needs_table_indices: bool = False

    def forward(
        self, embeddings: torch.Tensor, logits: torch.Tensor | None, labels: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError

    def set_epoch(self, epoch: int) -> None:
        """Called by the trainer before each epoch (0-based, also after a resume), for
        schedules such as deferred re-weighting; most objectives ignore it."""

    def on_epoch_start(self, network: nn.Module) -> None:
        """Called by the trainer after :meth:`set_epoch` with the network being trained, e.g.
        to refresh an embedding bank; most objectives ignore it."""


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


class MemoryBankObjective(Objective):
    """An embedding loss whose positives and negatives come from the whole training set.

    ``loss(embeddings, labels, ref_emb, ref_labels, anchor_rows)`` (e.g. ``DeepKNNLoss``) gets
    the batch as anchors, differentiable, and the bank as the reference set, constant: gradients
    reach the network through the anchors only. The bank is re-embedded at the start of every
    epoch, so the reference side lags the network by up to one epoch. ``anchor_rows``, each
    anchor's own bank row, keeps an image from being its own positive.
    """

    needs_table_indices = True

    def __init__(
        self, loss: nn.Module, bank: EmbeddingBank, stat_attributes: tuple[str, ...] = ()
    ) -> None:
        super().__init__()
        self.loss = loss
        self.bank = bank
        self.stat_attributes = stat_attributes

    def on_epoch_start(self, network: nn.Module) -> None:
        self.bank.refresh(network)

    def forward(self, embeddings, logits, labels, table_indices=None):
        if table_indices is None:
            raise RuntimeError("MemoryBankObjective needs the batch's table_indices.")
        value = self.loss(
            embeddings,
            labels,
            ref_emb=self.bank.embeddings,
            ref_labels=self.bank.labels,
            anchor_rows=self.bank.rows(table_indices),
        )
        stats = {name: float(getattr(self.loss, name)) for name in self.stat_attributes}
        return value, stats


class CrossEntropyObjective(Objective):
    """Softmax cross entropy on the classifier's logits, optionally class-weighted and with
    label smoothing (the target puts ``label_smoothing`` of its mass evenly on all classes)."""

    needs_classifier = True

    def __init__(
        self, class_weights: torch.Tensor | None = None, *, label_smoothing: float = 0.0
    ) -> None:
        super().__init__()
        self.register_buffer("class_weights", class_weights, persistent=False)
        self.label_smoothing = label_smoothing

    def forward(self, embeddings, logits, labels):
        if logits is None:
            raise RuntimeError("CrossEntropyObjective needs a network with a classifier.")
        loss = nn.functional.cross_entropy(
            logits, labels, weight=self.class_weights, label_smoothing=self.label_smoothing
        )
        return loss, {}


class LogitLossObjective(Objective):
    """A classification loss ``loss(logits, labels)`` (e.g. focal, LDAM) on the classifier.

    With ``deferred_weights`` the loss's per-class ``weight`` is switched on from epoch
    ``reweight_from`` (0-based) on: the deferred re-weighting (DRW) of Cao et al. 2019. The stat
    ``reweighted`` (0 or 1) shows in the training log which epochs used it.
    """

    needs_classifier = True

    def __init__(
        self,
        loss: nn.Module,
        *,
        deferred_weights: torch.Tensor | None = None,
        reweight_from: int | None = None,
    ) -> None:
        super().__init__()
        if (deferred_weights is None) != (reweight_from is None):
            raise ConfigError(
                "Deferred re-weighting needs both the class weights and the epoch to start from "
                f"(got reweight_from={reweight_from!r})."
            )
        self.loss = loss
        self.register_buffer("deferred_weights", deferred_weights, persistent=False)
        self.reweight_from = reweight_from
        self.reweighted = False

    def set_epoch(self, epoch: int) -> None:
        if self.reweight_from is not None:
            self.reweighted = epoch >= self.reweight_from
            self.loss.weight = self.deferred_weights if self.reweighted else None

    def forward(self, embeddings, logits, labels):
        if logits is None:
            raise RuntimeError("LogitLossObjective needs a network with a classifier.")
        stats = {"reweighted": float(self.reweighted)} if self.reweight_from is not None else {}
        return self.loss(logits, labels), stats


class CrossEntropyPlusMetricObjective(Objective):
    """``CE(logits) + weight · metric_loss(embeddings, labels)`` (e.g. the BSTriplet paper's eq. 7).

    Both terms are reported in the stats (``ce``, ``metric``), unweighted, so that their scales
    can be compared in the training log.
    """

    needs_classifier = True

    def __init__(
        self,
        metric_loss: nn.Module,
        weight: float = 1.0,
        class_weights: torch.Tensor | None = None,
        *,
        label_smoothing: float = 0.0,
    ) -> None:
        is_number = isinstance(weight, int | float) and not isinstance(weight, bool)
        if not (is_number and math.isfinite(weight) and weight >= 0):
            raise ConfigError(
                f"The metric loss weight (lambda) must be a finite number >= 0, got {weight!r}; "
                "the BSTriplet paper uses 1."
            )
        super().__init__()
        self.cross_entropy = CrossEntropyObjective(class_weights, label_smoothing=label_smoothing)
        self.metric_loss = metric_loss
        self.weight = weight

    def forward(self, embeddings, logits, labels):
        cross_entropy, _ = self.cross_entropy(embeddings, logits, labels)
        metric = self.metric_loss(embeddings, labels)
        stats = {"ce": float(cross_entropy.detach()), "metric": float(metric.detach())}
        return cross_entropy + self.weight * metric, stats


def inverse_frequency_weights(class_counts: np.ndarray) -> torch.Tensor:
    """Weights n / (C · n_c), so a balanced data set gets all ones; empty classes get weight 0."""
    counts = np.asarray(class_counts, dtype=np.float64)
    weights = np.zeros_like(counts)
    present = counts > 0
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return torch.as_tensor(weights, dtype=torch.float32)
