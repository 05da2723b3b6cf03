"""P×Q stratified batch sampler, transforms and the cached-image Dataset."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from medknn.data import (
    CachedImageDataset,
    StratifiedBatchSampler,
    build_transforms,
    resize_size_for,
)
from medknn.errors import ConfigError, DataError

# Imbalanced: class 0 large, class 3 smaller than Q, class 4 a single sample.
LABELS = np.repeat([0, 1, 2, 3, 4], [200, 45, 20, 4, 1])


def _epoch(sampler: StratifiedBatchSampler, epoch: int) -> list[list[int]]:
    sampler.set_epoch(epoch)
    return list(sampler)


def test_batches_are_p_by_q_and_cover_every_class() -> None:
    sampler = StratifiedBatchSampler(LABELS, classes_per_batch=3, samples_per_class=5, seed=0)
    assert len(sampler) == max(math.ceil(len(LABELS) / 15), math.ceil(5 / 3)) == 18
    for epoch in range(3):
        batches = _epoch(sampler, epoch)
        assert len(batches) == len(sampler)
        seen = set()
        for batch in batches:
            classes, counts = np.unique(LABELS[batch], return_counts=True)
            assert len(batch) == 15 and len(classes) == 3 and set(counts) == {5}
            seen |= set(classes.tolist())
        assert seen == {0, 1, 2, 3, 4}


def test_every_class_appears_when_batches_are_just_enough() -> None:
    labels = np.repeat(np.arange(10), 2)
    sampler = StratifiedBatchSampler(labels, classes_per_batch=4, samples_per_class=2, seed=3)
    assert len(sampler) == 3  # ceil(10 classes / 4) beats ceil(20 / 8)
    for epoch in range(5):
        seen = [set(labels[batch].tolist()) for batch in _epoch(sampler, epoch)]
        assert all(len(classes) == 4 for classes in seen)
        assert set().union(*seen) == set(range(10))


def test_no_replacement_within_a_batch_for_classes_of_at_least_q() -> None:
    sampler = StratifiedBatchSampler(LABELS, classes_per_batch=5, samples_per_class=20, seed=1)
    for batch in _epoch(sampler, 0):
        labels = LABELS[batch]
        for big_class in (0, 1, 2):
            members = np.asarray(batch)[labels == big_class]
            assert len(set(members.tolist())) == len(members) == 20
        assert set(np.asarray(batch)[labels == 3].tolist()) == set(np.flatnonzero(LABELS == 3))


def test_large_class_is_drawn_without_replacement_across_batches() -> None:
    # 6 batches × 10 samples of class 0 stay within one pass over its 200 samples.
    sampler = StratifiedBatchSampler(LABELS, classes_per_batch=5, samples_per_class=10, seed=2)
    drawn = [i for batch in _epoch(sampler, 0) for i in batch if LABELS[i] == 0]
    assert len(drawn) == 60 and len(set(drawn)) == 60


def test_order_is_a_function_of_seed_and_epoch() -> None:
    first = StratifiedBatchSampler(LABELS, classes_per_batch=3, samples_per_class=4, seed=5)
    resumed = StratifiedBatchSampler(LABELS, classes_per_batch=3, samples_per_class=4, seed=5)
    epoch_2 = _epoch(first, 2)
    assert _epoch(resumed, 2) == epoch_2 and _epoch(first, 2) == epoch_2
    assert _epoch(first, 3) != epoch_2
    other_seed = StratifiedBatchSampler(LABELS, classes_per_batch=3, samples_per_class=4, seed=6)
    assert _epoch(other_seed, 2) != epoch_2


def test_classes_per_batch_is_capped() -> None:
    sampler = StratifiedBatchSampler([0, 0, 1, 1, 1], classes_per_batch=9, samples_per_class=2)
    assert sampler.batch_size == 4 and len(sampler) == 2
    assert all(len(batch) == 4 for batch in sampler)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"classes_per_batch": 1}, "classes_per_batch=1"),
        ({"samples_per_class": 0}, "samples_per_class=0"),
        ({"samples_per_class": 2.5}, "samples_per_class=2.5"),
    ],
)
def test_sampler_rejects_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        StratifiedBatchSampler(LABELS, **kwargs)


def test_sampler_rejects_bad_labels() -> None:
    with pytest.raises(DataError, match="non-empty 1-D integer"):
        StratifiedBatchSampler(np.array([0.5, 1.0]))


def test_dataset_with_sampler_in_a_dataloader() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (len(LABELS), 37, 37, 1), dtype=np.uint8)
    train_rows = np.arange(0, len(LABELS), 2)
    transform = build_transforms(32, train=True, mean=(0.5,) * 3, std=(0.5,) * 3)
    dataset = CachedImageDataset(images, LABELS, train_rows, transform)
    sampler = StratifiedBatchSampler(dataset.targets, classes_per_batch=2, samples_per_class=3)
    images_batch, labels_batch, rows_batch = next(iter(DataLoader(dataset, batch_sampler=sampler)))
    assert images_batch.shape == (6, 3, 32, 32) and images_batch.dtype == torch.float32
    assert torch.equal(labels_batch, torch.from_numpy(LABELS[rows_batch.numpy()]))
    assert set(rows_batch.tolist()) <= set(train_rows.tolist())


def test_eval_transform_is_a_normalised_centre_crop() -> None:
    big = torch.zeros(3, 32, 32, dtype=torch.uint8)
    big[:, 2:30, 2:30] = 255
    out = build_transforms(28, train=False, mean=(0.5,) * 3, std=(0.5,) * 3)(big)
    assert out.shape == (3, 28, 28)
    assert torch.allclose(out, torch.ones_like(out))  # (1 - 0.5) / 0.5
    gray = build_transforms(28, train=False, mean=(0.0,), std=(1.0,), channels=1)(big[:1])
    assert gray.shape == (1, 28, 28)


def test_train_transform_crops_randomly() -> None:
    image = torch.randint(0, 256, (3, 36, 36), dtype=torch.uint8)
    transform = build_transforms(32, train=True, mean=(0.0,) * 3, std=(1.0,) * 3)
    torch.manual_seed(0)
    outputs = [transform(image) for _ in range(6)]
    assert all(o.shape == (3, 32, 32) for o in outputs)
    assert any(not torch.equal(outputs[0], o) for o in outputs[1:])


def test_transform_and_size_validation() -> None:
    assert resize_size_for(224) == 256 and resize_size_for(64) == 73 and resize_size_for(28) == 32
    with pytest.raises(ConfigError, match="image size 300"):
        resize_size_for(300)
    with pytest.raises(ConfigError, match="image size 16"):
        build_transforms(16, train=False, mean=(0.5,) * 3, std=(0.5,) * 3)
    with pytest.raises(ConfigError, match="mean has 1 values"):
        build_transforms(32, train=False, mean=(0.5,), std=(0.5,) * 3)


def test_dataset_validation() -> None:
    images = np.zeros((4, 8, 8, 3), dtype=np.uint8)
    with pytest.raises(DataError, match="3 labels for 4 images"):
        CachedImageDataset(images, np.zeros(3), np.arange(2))
    with pytest.raises(DataError, match=r"indices must lie in 0\.\.3"):
        CachedImageDataset(images, np.zeros(4), np.array([4]))
    item = CachedImageDataset(images, np.array([0, 1, 2, 3]), np.array([2, 3]))[1]
    assert item[0].shape == (3, 8, 8) and item[1:] == (3, 3)
