"""The normalised linear classifier of LDAM (Cao et al. 2019): cosine similarities as logits."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medknn.errors import ConfigError


class CosineClassifier(nn.Module):
    """Logits ``scale · cos(x, w_j)``: the L2-normalised input against each L2-normalised class
    weight ``w_j`` (no bias). Cosines alone lie in [-1, 1], too close together for a softmax;
    the scale (LDAM's s = 30) makes the logits the ones the loss trains, so that predicted
    probabilities and AUC read from them are meaningful."""

    def __init__(self, in_features: int, num_classes: int, scale: float = 1.0) -> None:
        super().__init__()
        for option, value in (("in_features", in_features), ("num_classes", num_classes)):
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"CosineClassifier {option}={value!r} must be an integer >= 1.")
        if (
            isinstance(scale, bool)
            or not isinstance(scale, int | float)
            or not (math.isfinite(scale) and scale > 0)
        ):
            raise ConfigError(
                f"CosineClassifier scale={scale!r} must be a number > 0 (LDAM uses 30)."
            )
        self.in_features = in_features
        self.num_classes = num_classes
        self.scale = float(scale)
        # Shaped like nn.Linear's weight so that tools reading classifier.weight see (C, F).
        self.weight = nn.Parameter(torch.empty(num_classes, in_features))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Linear's initialisation

    def forward(self, x: Tensor) -> Tensor:
        return self.scale * F.linear(F.normalize(x, dim=1), F.normalize(self.weight, dim=1))

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, num_classes={self.num_classes}, scale={self.scale}"
