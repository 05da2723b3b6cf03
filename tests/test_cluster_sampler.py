"""ClusterBatchSampler: the BSTriplet paper's data-mining ("DM") batches, and their features."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medknn.data import ClusterBatchSampler, thumbnail_features
from medknn.errors import ConfigError, DataError
from medknn.runs import TrainConfig


def blobs(
    sizes: dict[int, list[int]], seed: int = 0, dims: int = 4
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """labels, features and true blob id: class c gets one well-separated blob per listed size."""
    rng = np.random.default_rng(seed)
    labels, features, blob_ids = [], [], []
    blob_sizes = [
        (label, size) for label, sizes_of_class in sizes.items() for size in sizes_of_class
    ]
    for blob, (label, size) in enumerate(blob_sizes):
        centre = rng.normal(scale=50, size=dims)
        labels += [label] * size
        features.append(centre + rng.normal(size=(size, dims)))
        blob_ids += [blob] * size
    return np.array(labels), np.concatenate(features), np.array(blob_ids)


def group_of(sampler: ClusterBatchSampler) -> np.ndarray:
    owner = np.empty(sampler.num_samples, dtype=int)
    for group, members in enumerate(sampler.groups):
        owner[members] = group
    return owner


def test_kmeans_recovers_the_blobs_of_each_class() -> None:
    labels, features, blob_ids = blobs({0: [30, 70], 1: [200, 20]})
    sampler = ClusterBatchSampler(labels, features, groups_per_class=2, batch_size=16)
    assert sorted(sampler.group_sizes.tolist()) == [20, 30, 70, 200]
    for members in sampler.groups:
        assert len(np.unique(blob_ids[members])) == 1
        assert len(np.unique(labels[members])) == 1
    assert sorted(np.concatenate(sampler.groups).tolist()) == list(range(len(labels)))


def test_group_shares_over_many_batches_match_group_sizes() -> None:
    # Quotas per batch of 16: 0.75, 3.75, 2.5, 8.25, 0.75 (fractions handled by rounding).
    labels, features, _ = blobs({0: [15, 75], 1: [50, 165], 2: [15]})
    sampler = ClusterBatchSampler(
        labels, features, groups_per_class={0: 2, 1: 2, 2: 1}, batch_size=16, seed=3
    )
    owner = group_of(sampler)
    counts = np.zeros(len(sampler.groups))
    for epoch in range(40):
        sampler.set_epoch(epoch)
        for batch in sampler:
            assert len(batch) == 16
            counts += np.bincount(owner[batch], minlength=len(sampler.groups))
    shares = counts / counts.sum()
    np.testing.assert_allclose(shares, sampler.group_sizes / len(labels), atol=0.005)
    # Every group is in every batch its whole quota allows: ⌊quota⌋ or ⌈quota⌉ items.
    quotas = 16 * sampler.group_sizes / len(labels)
    for batch in sampler:
        per_group = np.bincount(owner[batch], minlength=len(sampler.groups))
        assert np.all((per_group >= np.floor(quotas)) & (per_group <= np.ceil(quotas)))


def test_equal_draw_takes_the_same_number_from_every_group() -> None:
    # The BSTriplet paper's Chest-2 batches: "six samples from each group", whatever its size.
    labels, features, _ = blobs({0: [15, 75], 1: [50, 165], 2: [15]})
    sampler = ClusterBatchSampler(
        labels, features, groups_per_class={0: 2, 1: 2, 2: 1}, batch_size=30, seed=3, draw="equal"
    )
    owner = group_of(sampler)
    assert len(sampler) == math.ceil(len(labels) / 30)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        for batch in sampler:
            np.testing.assert_array_equal(np.bincount(owner[batch], minlength=5), [6] * 5)
    with pytest.raises(ConfigError, match="cluster draw 'even' must be one of proportional"):
        ClusterBatchSampler(labels, features, batch_size=30, draw="even")
    assert TrainConfig(cluster_draw="equal").cluster_draw == "equal"
    with pytest.raises(ConfigError, match="cluster_draw"):
        TrainConfig(cluster_draw="even")


def test_epoch_length_order_and_reproducibility() -> None:
    labels, features, _ = blobs({0: [40, 20], 1: [41]})
    sampler = ClusterBatchSampler(labels, features, batch_size=10, seed=1)
    assert len(sampler) == math.ceil(101 / 10) == len(list(sampler))
    first = list(sampler)
    assert first == list(ClusterBatchSampler(labels, features, batch_size=10, seed=1))
    sampler.set_epoch(1)
    assert list(sampler) != first
    # Within an epoch a group's samples repeat only after all of it has been drawn.
    epoch = np.concatenate(first)
    assert len(np.unique(epoch)) == len(labels)


def test_small_classes_and_per_class_groups() -> None:
    labels = np.array([0, 0, 0, 0, 0, 0, 1])
    features = np.arange(7, dtype=float)[:, None]
    sampler = ClusterBatchSampler(labels, features, groups_per_class={0: 3, 1: 2}, batch_size=4)
    assert sampler.group_classes.tolist() == [0, 0, 0, 1]  # class 1 has one sample: one group
    assert sorted(sampler.group_sizes.tolist()) == [1, 2, 2, 2]


def test_bad_arguments_name_the_fix() -> None:
    labels, features, _ = blobs({0: [10], 1: [10]})
    with pytest.raises(ConfigError, match="no entry for class 1"):
        ClusterBatchSampler(labels, features, groups_per_class={0: 2}, batch_size=4)
    with pytest.raises(ConfigError, match="groups_per_class=0 for class 0"):
        ClusterBatchSampler(labels, features, groups_per_class=0, batch_size=4)
    with pytest.raises(ConfigError, match="batch_size=1"):
        ClusterBatchSampler(labels, features, batch_size=1)
    with pytest.raises(DataError, match=r"one row per label \(20\)"):
        ClusterBatchSampler(labels, features[:5], batch_size=4)
    features[3, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        ClusterBatchSampler(labels, features, batch_size=4)


def test_thumbnail_features_are_area_averaged_grey_pixels() -> None:
    images = np.zeros((3, 32, 32, 3), dtype=np.uint8)
    images[1, :, :16] = 255  # left half white
    images[2, ..., 0] = 255  # red only: grey 1/3
    features = thumbnail_features(images, np.array([2, 1]), size=4)
    assert features.shape == (2, 16) and features.dtype == np.float32
    np.testing.assert_allclose(features[0], np.full(16, 1 / 3), rtol=1e-6)
    np.testing.assert_allclose(features[1].reshape(4, 4), [[1, 1, 0, 0]] * 4)
    with pytest.raises(DataError, match="uint8"):
        thumbnail_features(images.astype(np.float32))
