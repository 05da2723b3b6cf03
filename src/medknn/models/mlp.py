"""A fully connected backbone for inputs that are vectors (or images flattened to vectors)."""

from __future__ import annotations

from torch import nn

from medknn.errors import ConfigError


class MLPBackbone(nn.Sequential):
    """The Deep kNN paper's MLP (Table 3): ``num_layers`` x (Linear -> BatchNorm1d -> ReLU).

    Inputs are flattened first, so ``(B, C, H, W)`` images work with ``in_features=C*H*W``.
    Hand-written because ``torchvision.ops.MLP`` leaves its last layer without norm and
    activation. In training mode BatchNorm needs batches of at least 2 samples.
    """

    def __init__(
        self,
        in_features: int,
        hidden_features: int = 512,
        num_layers: int = 3,
        dropout: float = 0.0,
    ) -> None:
        for arg, value in (
            ("in_features", in_features),
            ("hidden_features", hidden_features),
            ("num_layers", num_layers),
        ):
            if value < 1:
                raise ConfigError(f"MLPBackbone {arg} must be at least 1, got {value}.")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"MLPBackbone dropout must be in [0, 1), got {dropout}.")
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for _ in range(num_layers):
            # BatchNorm's shift makes a Linear bias redundant.
            layers += [
                nn.Linear(width, hidden_features, bias=False),
                nn.BatchNorm1d(hidden_features),
                nn.ReLU(inplace=True),
            ]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = hidden_features
        super().__init__(*layers)
        self.in_features = in_features
        self.num_features = hidden_features
