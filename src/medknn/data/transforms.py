"""Tensor transforms for decoded images (torchvision.transforms.v2): the Deep kNN paper's crop and
flip, SupCon's stronger "contrastive" augmentation, and several augmented views per image."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torchvision.transforms import v2

from medknn.errors import ConfigError

MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 28, 224
AUGMENTATIONS = ("standard", "contrastive")


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
    augmentation: str = "standard",
) -> Callable[[torch.Tensor], torch.Tensor]:
    """uint8 C×H×W (H, W ≥ image_size) → normalised float ``channels``×image_size×image_size.

    Training with ``augmentation="standard"``: random crop and horizontal flip;
    ``"contrastive"``: random resized crop, flip, colour jitter and random greyscale (SimCLR /
    SupCon). Evaluation: centre crop. Grey inputs are repeated to 3 channels when
    ``channels == 3``.
    """
    _check_image_size(image_size)
    if augmentation not in AUGMENTATIONS:
        raise ConfigError(
            f"Unknown augmentation {augmentation!r}; choose one of: {', '.join(AUGMENTATIONS)}."
        )
    if channels not in (1, 3):
        raise ConfigError(f"channels={channels} must be 1 (grey) or 3 (RGB)")
    for option, values in (("mean", mean), ("std", std)):
        if len(values) != channels:
            raise ConfigError(f"{option} has {len(values)} values {tuple(values)}; need {channels}")
    if any(s <= 0 for s in std):
        raise ConfigError(f"std {tuple(std)} must be positive")
    if not train:
        augment: list[v2.Transform] = [v2.CenterCrop(image_size)]
    elif augmentation == "contrastive":
        augment = _contrastive_augmentation(image_size)
    else:
        augment = [v2.RandomCrop(image_size), v2.RandomHorizontalFlip()]
    to_channels = v2.RGB() if channels == 3 else v2.Grayscale(num_output_channels=1)
    return v2.Compose(
        [
            *augment,
            to_channels,
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean=list(mean), std=list(std)),
        ]
    )


def _contrastive_augmentation(image_size: int) -> list[v2.Transform]:
    return [
        # scale (0.2, 1) as in the SupCon reference code (SimCLR keeps torchvision's 0.08): two
        # views then share only part of the image, so the loss must match content, not position,
        # while a crop rarely misses a small lesion altogether.
        v2.RandomResizedCrop(image_size, scale=(0.2, 1.0)),
        v2.RandomHorizontalFlip(),
        v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
        v2.RandomGrayscale(p=0.2),
    ]


class MultiViewTransform:
    """``views`` independently augmented copies of one image, stacked V×C×H×W (the trainer
    flattens B×V×C×H×W batches view-major for contrastive losses)."""

    def __init__(self, transform: Callable[[torch.Tensor], torch.Tensor], views: int = 2) -> None:
        if not isinstance(views, int) or views < 1:
            raise ConfigError(f"views={views!r} must be an integer >= 1 (SupCon uses 2).")
        self.transform = transform
        self.views = views

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.transform(image) for _ in range(self.views)])

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.transform!r}, views={self.views})"
