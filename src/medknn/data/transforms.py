"""Tensor transforms for decoded images (torchvision.transforms.v2): the Deep kNN paper's crop and
flip, SupCon's stronger "contrastive" augmentation, presets for medical images, and several
augmented views per image."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torchvision.transforms import v2

from medknn.errors import ConfigError

MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 28, 224
# standard: the Deep kNN paper's random crop and horizontal flip.
# light: a random resized crop (70–100 % of the area), horizontal flip, a small rotation and
#   shift, mild brightness/contrast changes: safe for most images, the recipe's default.
# orientation-free: light plus vertical flips and 90° turns, for images whose orientation
#   carries no label (dermoscopy, histology, cells) — not for chest X-rays.
# dermoscopy: orientation-free plus colour jitter (skin tone, lighting, camera).
# randaugment / trivialaugment: crop and flip, then torchvision's RandAugment / TrivialAugment.
# contrastive: SupCon's random resized crop, flip, strong colour jitter and greyscale.
AUGMENTATIONS = (
    "standard",
    "light",
    "orientation-free",
    "dermoscopy",
    "randaugment",
    "trivialaugment",
    "contrastive",
)


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

    Training augments with the preset ``augmentation`` (see ``AUGMENTATIONS``); evaluation
    centre-crops. Grey inputs are repeated to 3 channels when ``channels == 3``.
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
    augment = _augmentation(augmentation, image_size) if train else [v2.CenterCrop(image_size)]
    to_channels = v2.RGB() if channels == 3 else v2.Grayscale(num_output_channels=1)
    return v2.Compose(
        [
            *augment,
            to_channels,
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean=list(mean), std=list(std)),
        ]
    )


def _augmentation(name: str, image_size: int) -> list[v2.Transform]:
    crop_and_flip: list[v2.Transform] = [v2.RandomCrop(image_size), v2.RandomHorizontalFlip()]
    if name == "standard":
        return crop_and_flip
    if name == "contrastive":
        return _contrastive_augmentation(image_size)
    if name == "randaugment":
        return [*crop_and_flip, v2.RandAugment()]
    if name == "trivialaugment":
        return [*crop_and_flip, v2.TrivialAugmentWide()]
    light: list[v2.Transform] = [
        v2.RandomResizedCrop(image_size, scale=(0.7, 1.0), ratio=(0.85, 1.18), antialias=True),
        v2.RandomHorizontalFlip(),
        v2.RandomApply([v2.RandomAffine(degrees=10, translate=(0.05, 0.05))], p=0.5),
        v2.ColorJitter(brightness=0.15, contrast=0.15),
    ]
    if name == "light":
        return light
    turns = [v2.RandomVerticalFlip(), v2.RandomChoice([_Turn(k) for k in range(4)])]
    if name == "orientation-free":
        return [*light, *turns]
    return [*light, *turns, v2.ColorJitter(saturation=0.2, hue=0.03)]  # dermoscopy


class _Turn(v2.Transform):
    """A rotation by ``quarters`` × 90°, exact (no interpolation)."""

    def __init__(self, quarters: int) -> None:
        super().__init__()
        self.quarters = quarters

    def transform(self, inpt, params):  # noqa: ANN001, ANN201 - torchvision's signature
        return torch.rot90(inpt, self.quarters, dims=(-2, -1))


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
