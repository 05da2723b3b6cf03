"""Decision rules chosen on the validation split: class-prior kNN votes, logit adjustment,
temperature scaling, and that nothing is chosen from test labels."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import medknn
from medknn.evaluation import PartOutputs
from medknn.evaluation.decision_choice import (
    LOGIT_ADJUSTMENTS,
    choose_knn_rule,
    choose_softmax_rule,
    decision_score,
)
from medknn.evaluation.metrics import expected_calibration_error
from medknn.io import read_json
from medknn.prediction.decision import DecisionRule, adjust_logits, knn_vote_proba, softmax


def _slow_votes(distances, labels, counts, power, temperature):
    """One query at a time, one neighbour at a time: the rule as the docs state it."""
    proba = np.zeros((len(distances), len(counts)))
    for q in range(len(distances)):
        for d, c in zip(distances[q], labels[q], strict=True):
            weight = (
                1.0 if math.isinf(temperature) else math.exp(-(d - distances[q][0]) / temperature)
            )
            proba[q, c] += weight * counts[c] ** -power
        proba[q] /= proba[q].sum()
    return proba


@pytest.mark.parametrize("power, temperature", [(0.0, math.inf), (0.5, math.inf), (1.0, 0.3)])
def test_class_prior_knn_votes_equal_a_slow_reference(power: float, temperature: float) -> None:
    rng = np.random.default_rng(0)
    distances = np.sort(rng.uniform(0, 2, (20, 7)), axis=1)
    labels = rng.integers(0, 3, (20, 7))
    counts = np.array([500, 60, 9])
    fast = knn_vote_proba(distances, labels, counts, prior_power=power, temperature=temperature)
    slow = _slow_votes(distances, labels, counts, power, temperature)
    np.testing.assert_allclose(fast, slow, rtol=1e-7, atol=1e-12)


def test_prior_correction_lets_a_rare_class_win_a_minority_of_votes() -> None:
    distances = np.array([[0.1, 0.2, 0.3]])
    labels = np.array([[1, 0, 0]])  # one vote for the rare class 1, two for the frequent 0
    counts = np.array([1000, 10])
    plain = knn_vote_proba(distances, labels, counts, prior_power=0.0, temperature=math.inf)
    corrected = knn_vote_proba(distances, labels, counts, prior_power=1.0, temperature=math.inf)
    assert plain.argmax() == 0 and corrected.argmax() == 1


def test_logit_adjustment_equals_a_numpy_reference() -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(10, 4))
    counts = np.array([70, 20, 7, 3])
    for tau in (0.0, 0.5, 1.0, 2.0):
        expected = logits - tau * np.log(counts / counts.sum())
        np.testing.assert_allclose(adjust_logits(logits, counts, tau), expected)


def test_the_chosen_logit_adjustment_is_the_best_on_validation() -> None:
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, 200)
    counts = np.array([800, 150, 50])
    # Logits biased towards the frequent class: some adjustment should help MCR.
    logits = rng.normal(size=(200, 3)) + 2.0 * np.eye(3)[labels] + np.log(counts / counts.sum())
    rule = choose_softmax_rule(logits, labels, counts, metric="mcr")
    scores = {
        tau: decision_score("mcr", labels, adjust_logits(logits, counts, tau).argmax(axis=1))
        for tau in LOGIT_ADJUSTMENTS
    }
    assert rule.scores["chosen"] == max(scores.values())
    assert scores[rule.logit_adjustment] == max(scores.values())
    assert rule.scores["chosen"] >= rule.scores["plain"]
    # Temperature scaling changes no prediction, only the confidence.
    adjusted = adjust_logits(logits, counts, rule.logit_adjustment)
    assert (rule.softmax_proba(logits).argmax(1) == adjusted.argmax(1)).all()


def test_the_chosen_knn_rule_is_the_best_on_validation() -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 60)
    neighbour_labels = np.where(rng.random((60, 31)) < 0.7, labels[:, None], 0)
    distances = np.sort(rng.uniform(0, 1, (60, 31)), axis=1)
    counts = np.array([900, 100])
    rule = choose_knn_rule(distances, neighbour_labels, labels, counts, metric="mcr")
    proba = rule.knn_proba(distances, neighbour_labels)
    assert decision_score("mcr", labels, proba.argmax(1)) == rule.scores["chosen"]
    assert rule.scores["chosen"] >= rule.scores["plain"]


def test_a_rule_round_trips_through_its_file(tmp_path: Path) -> None:
    rule = DecisionRule("knn", (10, 3), k=7, prior_power=0.5, scores={"plain": 0.5, "chosen": 0.6})
    rule.save(tmp_path)
    assert DecisionRule.load(tmp_path) == rule
    assert DecisionRule.load(tmp_path / "nothing") is None


def test_expected_calibration_error_of_perfectly_calibrated_and_overconfident_scores() -> None:
    labels = np.array([0, 0, 1, 1])
    assert expected_calibration_error(labels, labels, np.eye(2)[labels]) == 0.0
    wrong = 1 - labels
    assert expected_calibration_error(labels, wrong, np.eye(2)[wrong]) == pytest.approx(1.0)


def test_softmax_of_a_constant_shift_is_unchanged() -> None:
    logits = np.array([[1.0, 2.0, 3.0]])
    np.testing.assert_allclose(softmax(logits), softmax(logits + 100))


@pytest.mark.parametrize("method", ["deepknn", "weighted-ce"])
def test_permuting_the_test_labels_changes_no_chosen_parameter(
    tmp_path: Path, make_npz: Callable, tiny_options: dict, method: str
) -> None:
    data = make_npz(tmp_path / "data.npz", {"train": 36, "val": 12, "test": 12})
    permuted = tmp_path / "permuted.npz"
    with np.load(data) as arrays:
        values = dict(arrays)
    values["test_labels"] = np.random.default_rng(0).permutation(values["test_labels"])
    np.savez(permuted, **values)
    options = {**tiny_options, "method": method, "decision": "validated"}
    for name, source in (("a", data), ("b", permuted)):
        medknn.train({**options, "data": str(source)}, tmp_path / name, progress=False)
    chosen = [read_json(tmp_path / name / "decision.json") for name in ("a", "b")]
    assert chosen[0] == chosen[1]
    assert chosen[0]["tta"] in ("none", "flips")  # tta: auto, chosen on validation too
    # ... while the test scoring did see the permuted labels.
    labels = [PartOutputs.load(tmp_path / name / "test_outputs.npz").labels for name in "ab"]
    assert (labels[0] != labels[1]).any()


def test_a_run_scores_and_predicts_with_the_test_time_augmentation_it_asks_for(
    train_tiny: Callable, tmp_path: Path
) -> None:
    run = train_tiny(tmp_path / "crops", method="weighted-ce", tta="crops")
    assert run.decision is not None and run.decision.tta == "crops" and run.tta == "crops"
    assert read_json(tmp_path / "crops" / "metrics.json")["tta"] == "crops"
    what_if = medknn.evaluate(tmp_path / "crops", tta="none", progress=False)
    assert what_if["tta"] == "none"
    assert read_json(tmp_path / "crops" / "metrics.json")["tta"] == "crops"  # record kept
