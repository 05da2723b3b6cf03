"""Remove early downsampling so ImageNet-style CNNs make sense on 28-64 px images."""

from __future__ import annotations

from timm.models import ResNet
from torch import nn

from medknn.errors import ConfigError

_STRIDE_2 = (2, 2)


def adapt_to_small_input(model: nn.Module) -> set[str]:
    """Change ``model`` in place for small inputs; returns the names of re-initialised modules.

    - ResNets: a 7x7 stride-2 ``conv1`` becomes a 3x3 stride-1 convolution (padding 1) and the
      max-pool is removed, as in the CIFAR/MedMNIST ResNets. The new ``conv1`` is randomly
      initialised, so pretrained 7x7 stem weights are lost (its name is returned). Deep-stem
      variants (``resnet18d``...) keep their 3x3 stem with its first stride set to 1.
    - Other models (EfficientNet, MobileNet, ...): the stem convolution named by timm's
      ``pretrained_cfg["first_conv"]``, or else the first stride-2 convolution, gets stride 1.
      Changing a stride keeps all weights.

    A ResNet-18 at 28 px then ends in a 4x4 feature map instead of 1x1.
    """
    if isinstance(model, ResNet):
        model.maxpool = nn.Identity()
        stem = model.conv1
        if isinstance(stem, nn.Conv2d) and stem.kernel_size == (7, 7):
            model.conv1 = nn.Conv2d(
                stem.in_channels, stem.out_channels, 3, stride=1, padding=1, bias=False
            )
            return {"conv1"}
    conv = _stem_conv(model)
    if conv is None:
        raise ConfigError(
            f"small_input is not supported for {type(model).__name__}: it has no stride-2 "
            "convolution to relax. Use a CNN backbone such as resnet18 or tf_efficientnet_lite0, "
            "or train at a larger image size without small_input."
        )
    conv.stride = (1, 1)
    return set()


def _stem_conv(model: nn.Module) -> nn.Conv2d | None:
    first_conv = getattr(model, "pretrained_cfg", {}).get("first_conv")
    if isinstance(first_conv, str):
        stem = model.get_submodule(first_conv)
        if isinstance(stem, nn.Conv2d) and stem.stride == _STRIDE_2:
            return stem
    convs = (m for m in model.modules() if isinstance(m, nn.Conv2d) and m.stride == _STRIDE_2)
    return next(convs, None)
