"""Several finished runs of one data set and split, predicting together: the mean of their
class probabilities (each member's own decision rule applied first), with every member's
nearest training cases kept as evidence."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medknn.errors import ConfigError, DataError
from medknn.io import atomic_write_json, read_json
from medknn.prediction.decision import DecisionRule
from medknn.prediction.trained_run import Prediction, TrainedRun

ENSEMBLE_FILE = "ensemble.json"
_FORMAT = "medknn.Ensemble/1"


@dataclass(frozen=True)
class EnsemblePrediction(Prediction):
    """A prediction of the ensemble; ``members`` are its runs' own predictions (their evidence
    and their vote), ``agreement`` the share of members whose label is the ensemble's."""

    members: list[Prediction] = field(default_factory=list)
    agreement: float = 1.0


class EnsembleRun:
    """Load with :meth:`load` (a directory written by :meth:`create`); predict like a
    :class:`TrainedRun`. ``decision`` (a softmax rule on the log of the mean probabilities,
    chosen on the validation split) may adjust the ensemble's decisions for class imbalance."""

    def __init__(
        self, path: Path, members: list[TrainedRun], decision: DecisionRule | None = None
    ) -> None:
        self.path = path
        self.members = members
        self.decision = decision

    @property
    def class_names(self) -> list[str]:
        return self.members[0].class_names

    @classmethod
    def is_ensemble(cls, path: str | Path) -> bool:
        return (Path(path) / ENSEMBLE_FILE).is_file()

    @classmethod
    def create(cls, members: list[str | Path], out: str | Path) -> EnsembleRun:
        """Write ``out/ensemble.json`` naming ``members`` (finished runs of the same data and
        split: checked) and return the ensemble."""
        if not members:
            raise ConfigError("An ensemble needs at least one run: medknn ensemble RUN [RUN ...].")
        runs = [TrainedRun.load(path) for path in members]
        _check_compatible(runs)
        out = Path(out)
        if out.exists() and any(out.iterdir()) and not cls.is_ensemble(out):
            raise ConfigError(f"{out} exists and is not an ensemble; choose a new --out.")
        out.mkdir(parents=True, exist_ok=True)
        # Relative paths keep a folder of runs with its ensemble movable as one piece.
        paths = [_relative_or_absolute(run.path, out) for run in runs]
        atomic_write_json(out / ENSEMBLE_FILE, {"format": _FORMAT, "members": paths})
        return cls(out, runs)

    @classmethod
    def load(cls, path: str | Path) -> EnsembleRun:
        path = Path(path)
        spec = read_json(path / ENSEMBLE_FILE)
        if spec.get("format") != _FORMAT or not spec.get("members"):
            raise DataError(f"{path / ENSEMBLE_FILE} is not a medknn ensemble ({_FORMAT}).")
        runs = [TrainedRun.load((path / member).resolve()) for member in spec["members"]]
        _check_compatible(runs)
        return cls(path, runs, DecisionRule.load(path))

    def combine(self, member_proba: list[np.ndarray]) -> np.ndarray:
        """The ensemble's (N, C) probabilities from its members' (N, C) probabilities."""
        mean = np.mean(member_proba, axis=0)
        if self.decision is None:
            return mean
        return self.decision.softmax_proba(np.log(np.clip(mean, 1e-12, None)))

    def predict_files(
        self, paths: list[str | Path], *, batch_size: int = 32
    ) -> list[EnsemblePrediction]:
        """Predict image files; each member reads them at its own image size."""
        return list(self.iter_predict_files(paths, batch_size=batch_size))

    def iter_predict_files(
        self, paths: list[str | Path], *, batch_size: int = 32
    ) -> Iterator[EnsemblePrediction]:
        """Predict ``batch_size`` files at a time (memory flat in the number of files)."""
        for start in range(0, len(paths), batch_size):
            chunk = paths[start : start + batch_size]
            per_member = [run.predict_files(chunk, batch_size=batch_size) for run in self.members]
            yield from self._combine_predictions(per_member)

    def predict_arrays(self, images: np.ndarray, sources: list[str]) -> list[EnsemblePrediction]:
        """Decoded images at the members' common decode size (see TrainedRun.predict_arrays)."""
        return self.predict_member_arrays([images] * len(self.members), sources)

    def predict_member_arrays(
        self, images: Sequence[np.ndarray], sources: list[str]
    ) -> list[EnsemblePrediction]:
        """The same images decoded once for each member, ``images[i]`` at member i's decode size
        (members of other image sizes read an image at other sizes)."""
        if len(images) != len(self.members):
            raise ValueError(f"{len(images)} image batches for {len(self.members)} members")
        return self._combine_predictions(
            [
                run.predict_arrays(batch, sources)
                for run, batch in zip(self.members, images, strict=True)
            ]
        )

    def _combine_predictions(self, per_member: list[list[Prediction]]) -> list[EnsemblePrediction]:
        names = self.class_names
        proba = self.combine(
            [np.array([[p.probabilities[c] for c in names] for p in preds]) for preds in per_member]
        )
        results = []
        for i, row in enumerate(proba):
            label = names[int(row.argmax())]
            members = [preds[i] for preds in per_member]
            results.append(
                EnsemblePrediction(
                    source=members[0].source,
                    label=label,
                    probability=float(row.max()),
                    probabilities=dict(zip(names, map(float, row), strict=True)),
                    neighbours=members[0].neighbours,
                    members=members,
                    agreement=float(np.mean([m.label == label for m in members])),
                )
            )
        return results


def _check_compatible(runs: list[TrainedRun]) -> None:
    """Members must classify the same classes on the same data and split."""
    first = runs[0]
    first_split = _parts(first)
    for run in runs[1:]:
        if run.class_names != first.class_names:
            raise ConfigError(
                f"{run.path} has classes {run.class_names}, {first.path} has "
                f"{first.class_names}: ensemble members must share their classes."
            )
        if run.config.data != first.config.data or _parts(run) != first_split:
            raise ConfigError(
                f"{run.path} and {first.path} use other data or another split; an ensemble "
                "scores its members on one test split, so train them with the same data, split "
                "and split_seed (e.g. --set split_seed=0)."
            )


def _parts(run: TrainedRun) -> dict:
    """The images of each part (an official split records the seed it was asked with, too)."""
    split = read_json(run.run_dir.split)
    return {part: split.get(part) for part in ("dataset", "train", "val", "test")}


def _relative_or_absolute(run: Path, out: Path) -> str:
    try:
        return os.path.relpath(run.resolve(), out.resolve())
    except ValueError:  # another drive (Windows)
        return str(run.resolve())
