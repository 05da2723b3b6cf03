"""Choose a run's decision rule on the validation split (never the test split): K_p, the
class-prior power and the vote temperature of kNN methods; the logit adjustment and the
calibration temperature of softmax methods. See ``medknn.prediction.decision``."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import numpy as np
import torch
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

from medknn.errors import ConfigError
from medknn.methods import MethodSpec
from medknn.models import EmbeddingNetwork
from medknn.prediction import KNNClassifier, compute_outputs
from medknn.prediction.decision import DecisionRule, adjust_logits, knn_vote_proba, softmax
from medknn.runs.config import TrainConfig
from medknn.runs.training_data import TrainingData

KNN_VOTERS = (1, 3, 5, 7, 9, 11, 15, 21, 31)
PRIOR_POWERS = (0.0, 0.25, 0.5, 0.75, 1.0)
# Vote temperatures as fractions of the typical spread of neighbour distances; inf: plain vote.
TEMPERATURE_FRACTIONS = (math.inf, 1.0, 0.5, 0.2, 0.1, 0.05)
LOGIT_ADJUSTMENTS = tuple(round(t, 2) for t in np.arange(-1.0, 3.01, 0.1))
CALIBRATION_TEMPERATURES = tuple(float(t) for t in np.geomspace(0.1, 10.0, 61))


def decision_score(
    metric: str,
    labels: np.ndarray,
    predicted: np.ndarray,
    *,
    positive: int | None = None,
    min_specificity: float = 0.9,
) -> float:
    """The validation score a rule is chosen for (larger is better)."""
    if metric == "mcr":
        return float(balanced_accuracy_score(labels, predicted))
    if metric == "accuracy":
        return float(accuracy_score(labels, predicted))
    if metric == "macro_f1":
        return float(f1_score(labels, predicted, average="macro", zero_division=0))
    if metric == "sensitivity_at_specificity":
        if positive is None:
            raise ConfigError("decision_metric sensitivity_at_specificity needs two classes.")
        is_positive = labels == positive
        sensitivity = float((predicted[is_positive] == positive).mean())
        specificity = float((predicted[~is_positive] != positive).mean())
        # Below the required specificity a rule only ranks by how close it comes.
        return sensitivity if specificity >= min_specificity else specificity - 1.0
    raise ConfigError(f"Unknown decision_metric {metric!r}.")


def choose_knn_rule(
    distances: np.ndarray,
    neighbour_labels: np.ndarray,
    labels: np.ndarray,
    class_counts: np.ndarray,
    *,
    metric: str = "mcr",
    default_k: int = 5,
    min_specificity: float = 0.9,
) -> DecisionRule:
    """The (K_p, prior power, temperature) with the best validation ``metric``, from the
    validation cases' nearest training cases (distances ascending, (Q, ≥ max K)); among equal
    scores the simplest: no prior correction, the plain vote, K_p nearest ``default_k``."""
    available = distances.shape[1]
    voters = [k for k in KNN_VOTERS if k <= available] or [available]
    spread = float(np.median(distances[:, -1] - distances[:, 0])) or 1.0
    candidates = sorted(
        itertools.product(voters, PRIOR_POWERS, TEMPERATURE_FRACTIONS),
        key=lambda c: (c[1], -c[2], abs(c[0] - default_k), c[0]),
    )
    positive = _minority(class_counts)
    score = _scorer(metric, labels, positive, min_specificity)
    best, best_score, plain_score = None, -math.inf, None
    for k, power, fraction in candidates:
        proba = knn_vote_proba(
            distances[:, :k],
            neighbour_labels[:, :k],
            class_counts,
            prior_power=power,
            temperature=fraction * spread,
        )
        value = score(proba.argmax(axis=1))
        if k == min(default_k, available) and power == 0 and math.isinf(fraction):
            plain_score = value
        if value > best_score:
            best, best_score = (k, power, fraction * spread), value
    k, power, temperature = best
    return DecisionRule(
        "knn",
        tuple(class_counts),
        k=k,
        prior_power=power,
        temperature=temperature,
        metric=metric,
        scores={"plain": plain_score, "chosen": best_score},
    )


def choose_softmax_rule(
    logits: np.ndarray,
    labels: np.ndarray,
    class_counts: np.ndarray,
    *,
    metric: str = "mcr",
    min_specificity: float = 0.9,
) -> DecisionRule:
    """The logit adjustment tau with the best validation ``metric`` (the smallest |tau| among
    equals), then the temperature that minimises the validation negative log-likelihood."""
    positive = _minority(class_counts)
    score = _scorer(metric, labels, positive, min_specificity)
    best_tau, best_score = 0.0, -math.inf
    for tau in sorted(LOGIT_ADJUSTMENTS, key=abs):
        value = score(adjust_logits(logits, class_counts, tau).argmax(axis=1))
        if value > best_score:
            best_tau, best_score = tau, value
    adjusted = adjust_logits(logits, class_counts, best_tau)
    rows = np.arange(len(labels))

    def nll(temperature: float) -> float:
        return float(-np.log(softmax(adjusted / temperature)[rows, labels] + 1e-12).mean())

    calibration = min(CALIBRATION_TEMPERATURES, key=nll)
    return DecisionRule(
        "softmax",
        tuple(class_counts),
        logit_adjustment=best_tau,
        calibration_temperature=calibration,
        metric=metric,
        scores={"plain": score(logits.argmax(axis=1)), "chosen": best_score},
    )


def _scorer(metric: str, labels: np.ndarray, positive: int | None, min_specificity: float):
    def score(predicted: np.ndarray) -> float:
        return decision_score(
            metric, labels, predicted, positive=positive, min_specificity=min_specificity
        )

    return score


def _minority(class_counts: np.ndarray) -> int | None:
    """The positive class of a two-class problem: the rarer training class."""
    return int(np.argmin(class_counts)) if len(class_counts) == 2 else None


def fit_decision_rule(
    network: EmbeddingNetwork,
    spec: MethodSpec,
    prepared: TrainingData,
    knn: KNNClassifier,
    config: TrainConfig,
    *,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> DecisionRule | None:
    """The run's decision rule, chosen on its validation split for ``config.decision_metric``
    with the run's test-time augmentation (``tta: auto``: with or without flips, whichever
    validates better; no TTA on a tie); None without a validation split."""
    if len(prepared.indices("val")) == 0:
        return None
    best = None
    for tta in ("none", "flips") if config.tta == "auto" else (config.tta,):
        embeddings, logits = compute_outputs(
            network,
            prepared.dataset("val", augment=False),
            device=device,
            progress=progress,
            description="choosing the decision rule on the validation set",
            tta=tta,
        )
        labels, counts = prepared.labels("val"), prepared.class_counts("train")
        options = {"metric": config.decision_metric, "min_specificity": config.min_specificity}
        if spec.prediction == "softmax":
            rule = choose_softmax_rule(logits, labels, counts, **options)
        else:
            distances, indices = knn.kneighbors(embeddings, max(KNN_VOTERS))
            rule = choose_knn_rule(
                distances,
                knn.labels_[indices],
                labels,
                counts,
                default_k=config.k_predict,
                **options,
            )
        if best is None or rule.scores["chosen"] > best.scores["chosen"]:
            best = replace(rule, tta=tta)
    return best
