"""Class-balanced batches and oversampling by copies (issue 4 §2)."""

from __future__ import annotations

import numpy as np
import pytest

from medknn.data import ClassBalancedBatchSampler, oversample_indices
from medknn.errors import ConfigError, DataError

# 100 : 10 : 1, classes interleaved so that positions and labels do not line up.
LABELS = np.random.default_rng(0).permutation(np.repeat([0, 1, 2], [1000, 100, 10]))


def _epoch(sampler: ClassBalancedBatchSampler, epoch: int) -> list[list[int]]:
    sampler.set_epoch(epoch)
    return list(sampler)


def test_classes_are_drawn_uniformly_from_an_imbalanced_set() -> None:
    sampler = ClassBalancedBatchSampler(LABELS, batch_size=64, seed=1, num_batches=150)
    batches = _epoch(sampler, 0)
    assert len(batches) == len(sampler) == 150
    assert all(len(batch) == 64 for batch in batches)
    drawn = np.concatenate(batches)
    frequencies = np.bincount(LABELS[drawn], minlength=3) / len(drawn)
    # 9600 draws: the standard error of each frequency is about 0.005.
    np.testing.assert_allclose(frequencies, 1 / 3, atol=0.02)
    # Within a class, images are drawn uniformly too: all 10 images of the rare class appear
    # about 320 times each.
    rare = np.bincount(drawn[LABELS[drawn] == 2], minlength=len(LABELS))[LABELS == 2]
    assert rare.min() > 240 and rare.max() < 400


def test_default_length_is_one_pass_over_the_labels() -> None:
    assert len(ClassBalancedBatchSampler(LABELS, batch_size=100)) == 12  # ceil(1110 / 100)


def test_batches_depend_on_seed_and_epoch_only() -> None:
    first = ClassBalancedBatchSampler(LABELS, batch_size=16, seed=3)
    resumed = ClassBalancedBatchSampler(LABELS, batch_size=16, seed=3)
    epoch_2 = _epoch(first, 2)
    assert _epoch(resumed, 2) == epoch_2 and _epoch(first, 2) == epoch_2
    assert _epoch(first, 3) != epoch_2
    assert _epoch(ClassBalancedBatchSampler(LABELS, batch_size=16, seed=4), 2) != epoch_2


def test_sampler_rejects_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="batch_size=0"):
        ClassBalancedBatchSampler(LABELS, batch_size=0)
    with pytest.raises(ConfigError, match="num_batches=0"):
        ClassBalancedBatchSampler(LABELS, batch_size=8, num_batches=0)
    with pytest.raises(DataError, match="non-empty"):
        ClassBalancedBatchSampler(np.array([], dtype=np.int64), batch_size=8)
    with pytest.raises(DataError, match="integer"):
        ClassBalancedBatchSampler(np.array([0.0, 1.0]), batch_size=8)


def test_oversampling_brings_every_class_to_the_majority_count() -> None:
    positions = oversample_indices(LABELS, seed=0)
    assert positions.dtype == np.int64
    assert np.bincount(LABELS[positions]).tolist() == [1000, 1000, 1000]
    assert np.array_equal(np.sort(positions[: len(LABELS)]), np.arange(len(LABELS)))
    assert set(positions.tolist()) == set(range(len(LABELS)))  # nothing outside labels
    # Copies spread evenly: each of class 1's 100 images 10 times, each of class 2's 100 times;
    # the majority class is never copied.
    copies = np.bincount(positions, minlength=len(LABELS))
    assert set(copies[LABELS == 0].tolist()) == {1}
    assert set(copies[LABELS == 1].tolist()) == {10}
    assert set(copies[LABELS == 2].tolist()) == {100}


def test_oversampling_remainders_are_random_and_seeded() -> None:
    labels = np.array([0] * 7 + [1] * 3)  # class 1 needs 4 more: one full copy + 1 random
    first = oversample_indices(labels, seed=5)
    assert np.array_equal(first, oversample_indices(labels, seed=5))
    copies = np.bincount(first, minlength=10)[7:]
    assert sorted(copies.tolist()) == [2, 2, 3]
    picks = {int(np.argmax(np.bincount(oversample_indices(labels, seed=s))[7:])) for s in range(20)}
    assert len(picks) > 1  # the extra copy is not always the same image


def test_oversampling_rejects_empty_labels() -> None:
    with pytest.raises(DataError, match="non-empty"):
        oversample_indices(np.array([], dtype=np.int64))
