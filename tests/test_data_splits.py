"""Splits: official, grouped (real HAM10000 lesions), stratified, DermaMNIST, save/reload."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medknn.data import ArrayImageReader, ImageTable, Split, load_dataset, make_split
from medknn.data.catalog import resolve_data_root
from medknn.errors import ConfigError, DataError


def _table(labels, groups=None, official=None, class_names=None) -> ImageTable:
    labels = np.asarray(labels)
    return ImageTable(
        ids=[f"img{i}" for i in range(len(labels))],
        labels=labels,
        class_names=class_names or [f"c{c}" for c in range(labels.max() + 1)],
        reader=ArrayImageReader(np.zeros((len(labels), 2, 2), dtype=np.uint8)),
        groups=groups,
        official_split=official,
        name="synthetic",
    )


def _grouped_table(n_groups: int = 120, seed: int = 0) -> ImageTable:
    rng = np.random.default_rng(seed)
    group_sizes = rng.integers(1, 4, n_groups)
    group_labels = rng.choice(3, n_groups, p=[0.6, 0.3, 0.1])
    labels = np.repeat(group_labels, group_sizes)
    groups = np.repeat([f"g{g}" for g in range(n_groups)], group_sizes)
    return _table(labels, groups=groups)


def _assert_partition(split: Split, n: int) -> None:
    combined = np.concatenate([split.train, split.val, split.test])
    assert sorted(combined.tolist()) == list(range(n))
    for part in (split.train, split.val, split.test):
        assert part.dtype == np.int64 and np.all(np.diff(part) > 0)


@pytest.fixture(scope="module")
def ham() -> ImageTable:
    try:
        return load_dataset("ham10000", data_root=resolve_data_root())
    except DataError:
        pytest.skip("shared data not available")


def test_grouped_split_on_real_ham10000_keeps_lesions_together_and_is_stratified(ham) -> None:
    split = make_split(ham, "grouped", seed=0)
    _assert_partition(split, len(ham))
    lesions = [set(ham.groups[part]) for part in (split.train, split.val, split.test)]
    assert not (lesions[0] & lesions[1] or lesions[0] & lesions[2] or lesions[1] & lesions[2])
    assert abs(len(split.test) / len(ham) - 0.2) < 0.01
    assert abs(len(split.val) / len(ham) - 0.1) < 0.01
    overall = ham.class_counts() / len(ham)
    for part in (split.train, split.val, split.test):
        share = ham.class_counts(part) / len(part)
        np.testing.assert_allclose(share, overall, atol=0.01)  # df is 1.1 %, nv 67 %


def test_dermamnist_split_sizes(ham) -> None:
    split = make_split(ham, "dermamnist")
    assert (len(split.train), len(split.val), len(split.test)) == (7007, 1003, 2005)
    first_train = Path(ham.ids[split.train[0]]).stem
    csv_path = resolve_data_root() / "ham10000" / "dermamnist_split.csv"
    train_ids = {
        line.split(",")[2] for line in csv_path.read_text().splitlines() if line[:6] == "train,"
    }
    assert first_train in train_ids


def test_dermamnist_split_rejects_other_data(tmp_path: Path) -> None:
    (tmp_path / "split.csv").write_text("split,index,image_id\ntrain,0,ISIC_1\n")
    with pytest.raises(DataError, match=r"12 image\(s\) of 'synthetic' are not in the DermaMNIST"):
        make_split(_table(np.arange(12) % 2), "dermamnist", dermamnist_csv=tmp_path / "split.csv")


def test_grouped_split_is_seeded() -> None:
    table = _grouped_table()
    first, again = make_split(table, "grouped", seed=3), make_split(table, "grouped", seed=3)
    other = make_split(table, "grouped", seed=4)
    np.testing.assert_array_equal(first.test, again.test)
    np.testing.assert_array_equal(first.val, again.val)
    assert not np.array_equal(first.test, other.test)
    for split in (first, other):
        _assert_partition(split, len(table))
        sides = [set(table.groups[p]) for p in (split.train, split.val, split.test)]
        assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])


def test_auto_picks_official_then_grouped_then_stratified() -> None:
    official = np.array(["train"] * 6 + ["val"] * 2 + ["test"] * 2)
    assert make_split(_table(np.arange(10) % 2, official=official)).strategy == "official"
    assert make_split(_grouped_table()).strategy == "grouped"
    assert make_split(_table(np.arange(100) % 4)).strategy == "stratified"


def test_official_split_follows_the_table() -> None:
    official = np.array(["test", "train", "val", "train", "train", "test"])
    split = make_split(_table([0, 1, 0, 0, 1, 1], official=official), "official")
    assert split.train.tolist() == [1, 3, 4] and split.val.tolist() == [2]
    assert split.test.tolist() == [0, 5]
    with pytest.raises(ConfigError, match="needs an official split"):
        make_split(_table([0, 1, 0, 1]), "official")


def test_stratified_split_proportions_and_empty_val() -> None:
    labels = np.repeat([0, 1, 2], [500, 300, 200])
    split = make_split(_table(labels), "stratified", seed=1, val_fraction=0.0, test_fraction=0.25)
    _assert_partition(split, len(labels))
    assert len(split.val) == 0
    assert _table(labels).class_counts(split.test).tolist() == [125, 75, 50]


def test_class_without_training_sample_is_named() -> None:
    official = np.array(["train"] * 4 + ["test"])
    table = _table([0, 1, 0, 1, 2], official=official, class_names=["benign", "malignant", "rare"])
    with pytest.raises(DataError, match=r"class 'rare' has no training sample"):
        make_split(table, "official")


def test_bad_arguments() -> None:
    table = _table(np.arange(40) % 2)
    with pytest.raises(ConfigError, match="unknown split strategy 'random'"):
        make_split(table, "random")
    with pytest.raises(ConfigError, match=r"val_fraction=1.5 must be in \[0, 1\)"):
        make_split(table, val_fraction=1.5)
    with pytest.raises(ConfigError, match="leaves no training"):
        make_split(table, val_fraction=0.5, test_fraction=0.5)
    with pytest.raises(ConfigError, match="'grouped' needs groups"):
        make_split(table, "grouped")
    with pytest.raises(DataError, match="too small to split"):
        make_split(_table([0, 1]), "stratified")


def test_split_round_trips_through_json_and_detects_changed_data() -> None:
    table = _grouped_table()
    split = make_split(table, seed=7)
    saved = json.loads(json.dumps(split.to_dict(table)))
    assert saved["train"]["ids"][0] == table.ids[split.train[0]]
    restored = Split.from_dict(saved, table)
    for part in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(restored, part), getattr(split, part))
    assert (restored.strategy, restored.seed) == ("grouped", 7)
    changed = table.select(np.arange(1, len(table)))
    with pytest.raises(DataError, match="the data changed since the split was saved"):
        Split.from_dict(saved, changed)
