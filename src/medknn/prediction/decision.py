"""Decision rules chosen on the validation split: how a network's outputs become class
probabilities and a label, corrected for the training set's class imbalance.

kNN methods: among the ``k`` nearest training cases, case ``j`` at distance ``d_j`` votes for
its class ``c`` with weight ``exp(-(d_j - d_min) / temperature) · n_c^(-prior_power)`` (``n_c``:
training images of class ``c``); the probabilities are the normalised votes. ``temperature =
inf`` and ``prior_power = 0`` is the plain majority vote. A finite temperature makes the
probabilities continuous (a meaningful AUC); the prior power stops frequent classes from
outvoting rare ones merely by being many.

Softmax methods: post-hoc logit adjustment (Menon et al. 2021), ``logits - tau · log prior``,
then temperature scaling ``/ calibration_temperature`` (Guo et al. 2017), which calibrates the
probabilities without changing any prediction.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from medknn.errors import DataError
from medknn.io import atomic_write_json, read_json

DECISION_FILE = "decision.json"
_FORMAT = "medknn.DecisionRule/1"


@dataclass(frozen=True)
class DecisionRule:
    """A chosen rule; :meth:`knn_proba` / :meth:`softmax_proba` apply it."""

    kind: Literal["knn", "softmax"]
    class_counts: tuple[int, ...]
    k: int | None = None
    prior_power: float = 0.0
    temperature: float = math.inf
    logit_adjustment: float = 0.0
    calibration_temperature: float = 1.0
    metric: str = "mcr"
    scores: dict[str, float] = field(default_factory=dict)  # validation: plain and chosen
    tta: str = "none"  # the test-time augmentation the rule was chosen with (and applies with)

    def knn_proba(self, distances: np.ndarray, neighbour_labels: np.ndarray) -> np.ndarray:
        """(Q, C) probabilities from the (Q, ≥k) distances and labels of the nearest cases."""
        return knn_vote_proba(
            distances[:, : self.k],
            neighbour_labels[:, : self.k],
            np.asarray(self.class_counts),
            prior_power=self.prior_power,
            temperature=self.temperature,
        )

    def softmax_proba(self, logits: np.ndarray) -> np.ndarray:
        adjusted = adjust_logits(logits, np.asarray(self.class_counts), self.logit_adjustment)
        return softmax(adjusted / self.calibration_temperature)

    def save(self, run_path: str | Path) -> Path:
        values = asdict(self)
        values["temperature"] = None if math.isinf(self.temperature) else self.temperature
        return atomic_write_json(Path(run_path) / DECISION_FILE, {"format": _FORMAT, **values})

    @classmethod
    def load(cls, run_path: str | Path) -> DecisionRule | None:
        """The run's rule, or None for a run without one (it predicts with its plain rule).
        A damaged file is refused with a ``DataError`` naming it, never read half-way."""
        path = Path(run_path) / DECISION_FILE
        if not path.is_file():
            return None
        damaged = f"{path} is damaged; delete it and run `medknn evaluate RUN --decide`."
        try:
            values = read_json(path)
            if not isinstance(values, dict) or values.pop("format", None) != _FORMAT:
                raise DataError(f"{path} is not a medknn decision rule ({_FORMAT}); delete it.")
            temperature = values.pop("temperature")
            rule = cls(**values, temperature=math.inf if temperature is None else temperature)
        except (ValueError, TypeError, KeyError, UnicodeDecodeError):
            raise DataError(damaged) from None
        if not rule._is_valid():
            raise DataError(damaged)
        return rule

    def _is_valid(self) -> bool:
        def number(value: object) -> bool:
            return isinstance(value, int | float) and not isinstance(value, bool)

        counts_ok = len(self.class_counts) >= 2 and all(c >= 0 for c in self.class_counts)
        k_ok = self.k is None or (isinstance(self.k, int) and self.k >= 1)
        floats = (self.prior_power, self.logit_adjustment, self.calibration_temperature)
        return (
            self.kind in ("knn", "softmax")
            and counts_ok
            and k_ok
            and (self.kind == "softmax" or self.k is not None)
            and all(number(v) and math.isfinite(v) for v in floats)
            and number(self.temperature)
            and self.temperature > 0
            and self.calibration_temperature > 0
            and self.tta in ("none", "flips", "crops")
            and isinstance(self.scores, dict)
        )

    def __post_init__(self) -> None:
        object.__setattr__(self, "class_counts", tuple(int(c) for c in self.class_counts))


def knn_vote_proba(
    distances: np.ndarray,
    neighbour_labels: np.ndarray,
    class_counts: np.ndarray,
    *,
    prior_power: float,
    temperature: float,
) -> np.ndarray:
    """Class-prior-corrected, distance-weighted vote fractions, (Q, C); see the module doc.
    An exact tie between classes goes to the one whose voters are nearer in sum."""
    distances = distances.astype(np.float64)
    if math.isinf(temperature):
        weights = np.ones_like(distances)
    else:
        weights = np.exp(-(distances - distances[:, :1]) / temperature)
    counts = np.maximum(np.asarray(class_counts, dtype=np.float64), 1.0)
    weights = weights * counts[neighbour_labels] ** -prior_power
    rows = np.broadcast_to(np.arange(len(distances))[:, None], distances.shape)
    votes = np.zeros((len(distances), len(counts)))
    summed_distance = np.zeros_like(votes)
    np.add.at(votes, (rows, neighbour_labels), weights)
    np.add.at(summed_distance, (rows, neighbour_labels), distances)
    proba = votes / votes.sum(axis=1, keepdims=True)
    # Nudges far below any real difference of votes, so argmax breaks exact ties by distance.
    tie_break = 1e-9 * summed_distance / (1.0 + summed_distance.max(initial=0.0))
    return proba * (1.0 - tie_break)


def adjust_logits(logits: np.ndarray, class_counts: np.ndarray, tau: float) -> np.ndarray:
    """``logits - tau · log(prior)``: tau > 0 moves decisions towards rare classes."""
    prior = np.maximum(np.asarray(class_counts, dtype=np.float64), 1.0)
    prior = prior / prior.sum()
    return logits.astype(np.float64) - tau * np.log(prior)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)
