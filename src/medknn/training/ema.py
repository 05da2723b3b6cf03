"""An exponential moving average of a network's weights (timm's ``ModelEmaV3``)."""

from __future__ import annotations

from timm.utils import ModelEmaV3
from torch import nn


class WeightAverage:
    """The average ``module`` follows the trained network after every optimiser step.

    timm's warm-up makes the effective decay grow with the number of updates (towards
    ``decay``), so that a short run's average is not dominated by its random start.
    """

    def __init__(self, network: nn.Module, decay: float) -> None:
        self._ema = ModelEmaV3(network, decay=decay, use_warmup=True)

    @property
    def module(self) -> nn.Module:
        return self._ema.module

    def update(self, network: nn.Module, updates: int) -> None:
        self._ema.update(network, step=updates)
