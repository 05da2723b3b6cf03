"""Train/val/test splits: official, lesion/patient-grouped, stratified, or DermaMNIST's."""

from __future__ import annotations

import csv
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from medknn.data.catalog import resolve_data_root
from medknn.data.table import ImageTable
from medknn.errors import ConfigError, DataError

STRATEGIES = ("auto", "official", "grouped", "stratified", "dermamnist")
PARTS = ("train", "val", "test")
_MAX_FOLDS = 20  # fractions are rounded to multiples of 1/20 = 5 %
DERMAMNIST_SPLIT_FILE = "dermamnist_split.csv"


@dataclass
class Split:
    """Sorted int64 row indices into an ImageTable for each part."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    strategy: str
    seed: int

    def __post_init__(self) -> None:
        for part in PARTS:
            setattr(self, part, np.sort(np.asarray(getattr(self, part), dtype=np.int64)))
        combined = np.concatenate([self.train, self.val, self.test])
        if len(np.unique(combined)) != len(combined):
            raise DataError(f"split {self.strategy!r}: a sample appears in two parts")

    def parts(self) -> dict[str, np.ndarray]:
        return {part: getattr(self, part) for part in PARTS}

    def to_dict(self, table: ImageTable) -> dict[str, Any]:
        """JSON-ready; ids are stored beside the indices so a reload can check the data."""
        out: dict[str, Any] = {"strategy": self.strategy, "seed": self.seed, "dataset": table.name}
        for part, indices in self.parts().items():
            out[part] = {"indices": indices.tolist(), "ids": [table.ids[i] for i in indices]}
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any], table: ImageTable) -> Split:
        """Rebuild a saved split; DataError if the table's rows no longer match the saved ids."""
        try:
            parts = {p: (np.asarray(d[p]["indices"], dtype=np.int64), d[p]["ids"]) for p in PARTS}
            strategy, seed = str(d["strategy"]), int(d["seed"])
        except (KeyError, TypeError, ValueError) as error:
            raise DataError(f"saved split is malformed ({error!r}); re-create it") from error
        for part, (indices, ids) in parts.items():
            if len(indices) != len(ids):
                raise DataError(
                    f"saved split is malformed: {part} has {len(indices)} indices but "
                    f"{len(ids)} ids; re-create it"
                )
            for index, saved_id in zip(indices.tolist(), ids, strict=True):
                current = table.ids[index] if 0 <= index < len(table) else "<no such row>"
                if current != saved_id:
                    raise DataError(
                        f"the data changed since the split was saved: {part} row {index} was "
                        f"{saved_id!r}, the table now has {current!r}. Use the original data or "
                        "start a new run"
                    )
        return cls(
            **{p: indices for p, (indices, _) in parts.items()}, strategy=strategy, seed=seed
        )


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    for option, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"{option}={value} must be in [0, 1)")
    if val_fraction + test_fraction >= 1.0:
        raise ConfigError(
            f"val_fraction + test_fraction = {val_fraction + test_fraction} leaves no training "
            "data; keep the sum below 1"
        )


def _fold_split(
    table: ImageTable, grouped: bool, seed: int, val_fraction: float, test_fraction: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut up to 20 stratified (and group-disjoint) folds and deal them to train/val/test."""
    labels = table.labels
    groups = table.groups if grouped else np.arange(len(table)).astype(str)
    n_groups = len(np.unique(groups))
    n_folds = min(_MAX_FOLDS, n_groups, int(np.bincount(labels).max()))
    # A non-zero fraction gets at least one fold.
    wanted = [max(1, round(f * n_folds)) if f > 0 else 0 for f in (val_fraction, test_fraction)]
    if n_folds < 2 or sum(wanted) >= n_folds:
        raise DataError(
            f"dataset {table.name!r} is too small to split ({n_groups} groups, largest class "
            f"{np.bincount(labels).max()} samples); add data or lower val/test fractions"
        )
    splitter = (
        StratifiedGroupKFold(n_folds, shuffle=True, random_state=seed)
        if grouped
        else StratifiedKFold(n_folds, shuffle=True, random_state=seed)
    )
    with warnings.catch_warnings():
        # "least populated class has fewer members than n_splits": expected for rare classes.
        warnings.simplefilter("ignore", UserWarning)
        folds = [test for _, test in splitter.split(np.zeros(len(labels)), labels, groups)]
    order = np.random.default_rng(seed).permutation(n_folds)
    n_val, n_test = wanted

    def gather(chosen: np.ndarray) -> np.ndarray:
        return np.concatenate([np.empty(0, np.int64), *(folds[i] for i in chosen)])

    return (
        gather(order[n_val + n_test :]),
        gather(order[:n_val]),
        gather(order[n_val : n_val + n_test]),
    )


def _official_split(table: ImageTable, strategy: str) -> tuple[np.ndarray, ...]:
    if table.official_split is None:
        raise ConfigError(
            f"split strategy {strategy!r} needs an official split, which dataset "
            f"{table.name!r} does not have; use 'grouped' or 'stratified'"
        )
    return tuple(np.flatnonzero(table.official_split == part) for part in PARTS)


def _default_dermamnist_csv(table: ImageTable) -> Path:
    if table.source:
        beside_source = Path(table.source).with_name(DERMAMNIST_SPLIT_FILE)
        if beside_source.is_file():
            return beside_source
    return resolve_data_root() / "ham10000" / DERMAMNIST_SPLIT_FILE


def _dermamnist_split(table: ImageTable, csv_path: Path | None) -> tuple[np.ndarray, ...]:
    csv_path = _default_dermamnist_csv(table) if csv_path is None else Path(csv_path)
    if not csv_path.is_file():
        raise DataError(f"DermaMNIST split file {csv_path} does not exist")
    with open(csv_path, newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"split", "image_id"} <= set(rows[0]):
        raise DataError(f"DermaMNIST split file {csv_path} needs the columns split and image_id")
    part_of = {row["image_id"]: row["split"] for row in rows}
    # Table ids are paths like images/ISIC_0024306.jpg; the split file holds the bare image id.
    parts = [part_of.get(Path(sample_id).stem) for sample_id in table.ids]
    unknown = [table.ids[i] for i, part in enumerate(parts) if part not in PARTS]
    if unknown:
        raise DataError(
            f"{len(unknown)} image(s) of {table.name!r} are not in the DermaMNIST split "
            f"{csv_path}, e.g. {', '.join(unknown[:5])}; the 'dermamnist' split is for "
            "HAM10000 only"
        )
    parts_array = np.array(parts)
    return tuple(np.flatnonzero(parts_array == part) for part in PARTS)


def _check_every_class_trains(table: ImageTable, split: Split) -> None:
    counts = table.class_counts(split.train)
    for class_index in np.flatnonzero(counts == 0):
        name = table.class_names[class_index]
        total = table.class_counts()[class_index]
        raise DataError(
            f"class {name!r} has no training sample in the {split.strategy!r} split "
            f"(it has {total} sample(s) in all); add images of {name!r}, lower "
            "val_fraction/test_fraction, or choose another seed"
        )


def make_split(
    table: ImageTable,
    strategy: str = "auto",
    *,
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    dermamnist_csv: str | os.PathLike | None = None,
) -> Split:
    """Split ``table`` into train/val/test.

    ``auto`` takes the official split if the table has one, else a group-aware split if it has
    groups, else a stratified one. ``grouped``/``stratified`` deal up to 20 seeded stratified
    folds (group-disjoint for ``grouped``), so fractions are rounded to multiples of 5 %.
    ``dermamnist`` is MedMNIST's official DermaMNIST split of HAM10000 (by image, not lesion).
    """
    if strategy not in STRATEGIES:
        raise ConfigError(
            f"unknown split strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}"
        )
    _check_fractions(val_fraction, test_fraction)
    if strategy == "auto":
        if table.official_split is not None:
            strategy = "official"
        else:
            strategy = "grouped" if table.groups is not None else "stratified"
    if strategy == "grouped" and table.groups is None:
        raise ConfigError(
            f"split strategy 'grouped' needs groups, which dataset {table.name!r} does not have "
            "(give the CSV's group_column); use 'stratified'"
        )
    if strategy == "official":
        parts = _official_split(table, strategy)
    elif strategy == "dermamnist":
        parts = _dermamnist_split(table, dermamnist_csv)
    else:
        parts = _fold_split(table, strategy == "grouped", seed, val_fraction, test_fraction)
    split = Split(*parts, strategy=strategy, seed=seed)
    _check_every_class_trains(table, split)
    return split
