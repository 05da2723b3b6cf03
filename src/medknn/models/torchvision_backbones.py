"""torchvision classification models as backbones, by a prefixed name (``torchvision/NAME``).

For architectures timm lacks, such as ShuffleNetV2 (``torchvision/shufflenet_v2_x1_0``).
"""

from __future__ import annotations

from pathlib import Path

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from torch import nn
from torchvision import models

from medknn.errors import ConfigError, did_you_mean
from medknn.models.small_input import adapt_to_small_input
from medknn.models.weights import load_backbone_weights

TORCHVISION_PREFIX = "torchvision/"
# Their training forward returns auxiliary outputs (GoogLeNet, Inception) or their classifier is
# a convolution (SqueezeNet): no plain pooled feature to hand on.
_UNSUPPORTED = ("googlenet", "inception_v3", "squeezenet1_0", "squeezenet1_1")


def torchvision_backbone_names() -> list[str]:
    """torchvision's classification models, prefixed: ``torchvision/shufflenet_v2_x1_0``..."""
    return [
        TORCHVISION_PREFIX + name
        for name in models.list_models(module=models)
        if name not in _UNSUPPORTED
    ]


def create_torchvision_backbone(
    name: str,
    *,
    pretrained: bool = False,
    weights: str | Path | None = None,
    small_input: bool = False,
    in_chans: int = 3,
) -> nn.Module:
    """The torchvision model ``name`` (``torchvision/...``) returning its pooled features.

    The model's last ``nn.Linear`` (the classifier) becomes ``nn.Identity``, so ``model(x)`` is
    ``(B, model.num_features)``. The model itself is returned, not a wrapper, so its state-dict
    keys stay torchvision's and ``weights`` may be a torchvision checkpoint (its classifier
    tensors are ignored). Weights are never downloaded: ``pretrained`` is refused.
    """
    arch = name.removeprefix(TORCHVISION_PREFIX)
    if arch in _UNSUPPORTED:
        raise ConfigError(
            f"Backbone {name!r} is not supported: it has auxiliary outputs or no Linear "
            "classifier. Choose another, e.g. torchvision/shufflenet_v2_x1_0."
        )
    if name not in torchvision_backbone_names():
        raise ConfigError(
            f"Unknown backbone {name!r}. {did_you_mean(name, torchvision_backbone_names())}"
        )
    if pretrained:
        raise ConfigError(
            f"No offline pretrained weights ship for {name!r}. Pass weights=PATH (CLI --weights "
            "PATH) with a local torchvision .pth/.safetensors state dict, or train from scratch."
        )
    if in_chans != 3:
        raise ConfigError(
            f"torchvision backbones take 3-channel input, got in_chans={in_chans}; the data "
            "layer repeats grey images to 3 channels."
        )
    model = models.get_model(arch, weights=None)
    classifier = _last_linear_name(model)
    num_features = model.get_submodule(classifier).in_features
    model.set_submodule(classifier, nn.Identity())
    model.num_features = num_features
    # What timm's helpers (normalisation, input-channel adaptation) read from a timm model.
    first_conv = next(n for n, m in model.named_modules() if isinstance(m, nn.Conv2d))
    model.pretrained_cfg = {
        "first_conv": first_conv,
        "mean": IMAGENET_DEFAULT_MEAN,
        "std": IMAGENET_DEFAULT_STD,
    }
    reinitialised = adapt_to_small_input(model) if small_input else set()
    if weights is not None:
        load_backbone_weights(model, weights, reinitialised=reinitialised)
    return model


def _last_linear_name(model: nn.Module) -> str:
    return [n for n, module in model.named_modules() if isinstance(module, nn.Linear)][-1]
