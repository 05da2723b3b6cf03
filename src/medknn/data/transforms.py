"""Tensor transforms for decoded images (torchvision.transforms.v2), as in the Deep kNN paper."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torchvision.transforms import v2

from medknn.errors import ConfigError

MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 28, 224


def _check_image_size(image_size: int) -> None:
    if not isinstance(image_size, int) or not MIN_IMAGE_SIZE <= image_size <= MAX_IMAGE_SIZE:
        raise ConfigError(
            f"image size {image_size!r} must be an integer from {MIN_IMAGE_SIZE} to "
            f"{MAX_IMAGE_SIZE}"
        )


def resize_size_for(image_size: int) -> int:
    """The size to decode at before cropping ``image_size``: the paper's 256 → 224 ratio."""
    _check_image_size(image_size)
    return round(image_size * 8 / 7)


def build_transforms(
    image_size: int,
    *,
    train: bool,
    mean: Sequence[float],
    std: Sequence[float],
    channels: int = 3,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """uint8 C×H×W (H, W ≥ image_size) → normalised float ``channels``×image_size×image_size.

    Training: random crop and horizontal flip; evaluation: centre crop. Grey inputs are
    repeated to 3 channels when ``channels == 3``.
    """
    _check_image_size(image_size)
    if channels not in (1, 3):
        raise ConfigError(f"channels={channels} must be 1 (grey) or 3 (RGB)")
    for option, values in (("mean", mean), ("std", std)):
        if len(values) != channels:
            raise ConfigError(f"{option} has {len(values)} values {tuple(values)}; need {channels}")
    if any(s <= 0 for s in std):
        raise ConfigError(f"std {tuple(std)} must be positive")
    crop: list[v2.Transform] = (
        [v2.RandomCrop(image_size), v2.RandomHorizontalFlip()]
        if train
        else [v2.CenterCrop(image_size)]
    )
    to_channels = v2.RGB() if channels == 3 else v2.Grayscale(num_output_channels=1)
    return v2.Compose(
        [
            *crop,
            to_channels,
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean=list(mean), std=list(std)),
        ]
    )
