"""The "contrastive" augmentation and several views per image (issue 4 §1)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader
from torchvision.transforms import v2

from medknn.data import CachedImageDataset, MultiViewTransform, build_transforms
from medknn.errors import ConfigError
from medknn.training.trainer import stack_views

NORM = {"mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25)}


def _image(channels: int = 3, size: int = 37, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (channels, size, size), dtype=torch.uint8, generator=generator)


def _kinds(transform) -> list[type]:
    return [type(t) for t in transform.transforms]


def test_standard_augmentation_is_unchanged() -> None:
    default = build_transforms(32, train=True, **NORM)
    standard = build_transforms(32, train=True, augmentation="standard", **NORM)
    expected = [v2.RandomCrop, v2.RandomHorizontalFlip, v2.RGB, v2.ToDtype, v2.Normalize]
    assert _kinds(default) == _kinds(standard) == expected
    image = _image()
    torch.manual_seed(7)
    first = default(image)
    torch.manual_seed(7)
    assert torch.equal(standard(image), first)


def test_contrastive_augmentation_is_the_simclr_supcon_recipe() -> None:
    transform = build_transforms(32, train=True, augmentation="contrastive", **NORM)
    kinds = _kinds(transform)
    assert kinds == [
        v2.RandomResizedCrop,
        v2.RandomHorizontalFlip,
        v2.RandomApply,
        v2.RandomGrayscale,
        v2.RGB,
        v2.ToDtype,
        v2.Normalize,
    ]
    crop, _, jitter, grey = transform.transforms[:4]
    assert crop.scale == (0.2, 1.0) and tuple(crop.size) == (32, 32)
    assert jitter.p == 0.8 and isinstance(jitter.transforms[0], v2.ColorJitter)
    assert jitter.transforms[0].brightness == (0.6, 1.4) and jitter.transforms[0].hue == (-0.1, 0.1)
    assert grey.p == 0.2


@pytest.mark.parametrize(("in_channels", "channels"), [(3, 3), (1, 3), (1, 1)])
def test_contrastive_views_have_the_output_shape_and_differ(in_channels, channels) -> None:
    norm = NORM if channels == 3 else {"mean": (0.5,), "std": (0.25,)}
    transform = build_transforms(
        28, train=True, augmentation="contrastive", channels=channels, **norm
    )
    views = MultiViewTransform(transform, views=3)(_image(in_channels))
    assert views.shape == (3, channels, 28, 28) and views.dtype == torch.float32
    assert not torch.equal(views[0], views[1]) and not torch.equal(views[1], views[2])


def test_evaluation_ignores_the_augmentation() -> None:
    image = _image()
    standard = build_transforms(32, train=False, **NORM)(image)
    contrastive = build_transforms(32, train=False, augmentation="contrastive", **NORM)(image)
    assert torch.equal(standard, contrastive)


def test_two_view_batches_flatten_view_major_in_the_trainer() -> None:
    images = np.stack([_image(seed=i).permute(1, 2, 0).numpy() for i in range(4)])
    labels = np.array([0, 1, 1, 2])
    transform = MultiViewTransform(build_transforms(28, train=True, **NORM), views=2)
    dataset = CachedImageDataset(images, labels, np.arange(4), transform)
    inputs, batch_labels, _ = next(iter(DataLoader(dataset, batch_size=4)))
    assert inputs.shape == (4, 2, 3, 28, 28)
    flat, flat_labels = stack_views(inputs, batch_labels)
    assert flat.shape == (8, 3, 28, 28) and flat_labels.tolist() == [0, 1, 1, 2] * 2


def test_bad_names_and_view_counts_are_refused() -> None:
    with pytest.raises(ConfigError, match="augmentation 'simclr'; choose one of: standard"):
        build_transforms(32, train=True, augmentation="simclr", **NORM)
    with pytest.raises(ConfigError, match="views=0"):
        MultiViewTransform(build_transforms(32, train=True, **NORM), views=0)
