"""Label-distribution-aware margin loss and its deferred re-weighting (Cao et al., NeurIPS 2019)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from timm.loss import compute_class_weights
from torch import Tensor, nn

from medknn.errors import ConfigError
from medknn.losses._classification_checks import check_class_weight, check_logits_and_labels


class LDAMLoss(nn.Module):
    """Cross entropy of ``scale · (cos_j − Δ_y·[j = y])`` with margins ``Δ_j = C / n_j^(1/4)``.

    ``logits`` are the already scaled cosines ``scale · cos_j`` of a
    :class:`~medknn.models.CosineClassifier` built with the same ``scale``: the loss subtracts
    ``scale · Δ_y`` from the true class's logit, which is Cao et al.'s formula with the scale
    moved into the classifier, so that the network's logits are those the loss trains.
    C makes the largest margin, that of the rarest class, ``max_margin``. ``weight`` (per class,
    e.g. :func:`drw_weights`) may be set later as ``loss.weight = ...``: LDAM-DRW switches it on
    after some epochs.
    """

    def __init__(
        self,
        class_counts: Sequence[int] | np.ndarray,
        max_margin: float = 0.5,
        scale: float = 30.0,
        weight: Tensor | None = None,
    ) -> None:
        super().__init__()
        counts = _check_counts(class_counts)
        _check_number("max_margin", max_margin, minimum=0.0, strict=False)
        _check_number("scale", scale, minimum=0.0, strict=True)
        margins = counts.astype(np.float64) ** -0.25
        margins *= max_margin / margins.max()
        self.max_margin = float(max_margin)
        self.scale = float(scale)
        self.register_buffer("margins", torch.as_tensor(margins, dtype=torch.float32), False)
        weight = check_class_weight(weight, "LDAMLoss")
        if weight is not None and len(weight) != len(counts):
            raise ConfigError(
                f"LDAMLoss got {len(weight)} class weights for {len(counts)} class counts; "
                "pass one weight per class."
            )
        self.register_buffer("weight", weight, persistent=False)

    def forward(self, logits: Tensor, labels: Tensor) -> Tensor:
        check_logits_and_labels(logits, labels, self.weight, "LDAMLoss")
        if logits.shape[1] != len(self.margins):
            raise ConfigError(
                f"LDAMLoss has margins for {len(self.margins)} classes but the logits have "
                f"{logits.shape[1]}; build it with the training set's class counts."
            )
        margin = self.scale * self.margins.to(logits.dtype)[labels]
        shifted = logits - F.one_hot(labels, logits.shape[1]).to(logits.dtype) * margin[:, None]
        return F.cross_entropy(shifted, labels, weight=self.weight)

    def extra_repr(self) -> str:
        return f"max_margin={self.max_margin}, scale={self.scale}"


def drw_weights(class_counts: Sequence[int] | np.ndarray, beta: float = 0.9999) -> Tensor:
    """Class-balanced weights ``(1 − β) / (1 − β^n_j)`` (Cui et al. 2019), summing to the number
    of classes: the weights LDAM-DRW switches on in its deferred re-weighting stage."""
    counts = _check_counts(class_counts)
    if not (isinstance(beta, int | float) and 0 < beta < 1):
        raise ConfigError(f"drw_weights beta={beta!r} must lie in (0, 1); the paper uses 0.9999.")
    _, weights = compute_class_weights(
        counts.tolist(), int(counts.sum()), method="effective_num", beta=float(beta)
    )
    return weights  # mean 1, i.e. sum = number of classes


def _check_number(option: str, value: float, *, minimum: float, strict: bool) -> None:
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if not (
        is_number
        and math.isfinite(value)
        and (value > minimum or (not strict and value == minimum))
    ):
        bound = f"> {minimum}" if strict else f">= {minimum}"
        raise ConfigError(
            f"LDAMLoss {option}={value!r} is invalid; pass a finite number {bound} (the paper: "
            "max_margin 0.5, scale 30)."
        )


def _check_counts(class_counts: Sequence[int] | np.ndarray) -> np.ndarray:
    counts = np.asarray(class_counts)
    if counts.ndim != 1 or len(counts) == 0 or not np.issubdtype(counts.dtype, np.number):
        raise ConfigError(
            f"class_counts must be a non-empty 1-D sequence of image counts per class, got "
            f"{class_counts!r}."
        )
    if not np.all(counts == np.round(counts)) or (counts < 0).any():
        raise ConfigError(f"class_counts {counts.tolist()} must be non-negative integers.")
    empty = np.flatnonzero(counts == 0)
    if len(empty):
        raise ConfigError(
            f"class index {int(empty[0])} has 0 training images (class_counts "
            f"{counts.tolist()}); drop the class or add images of it."
        )
    return counts.astype(np.int64)
