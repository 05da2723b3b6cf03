"""The two prediction rules: vote among nearest training cases, or read the softmax classifier;
each plain, or as a decision rule chosen on the validation split adjusts it."""

from __future__ import annotations

import numpy as np
import torch

from medknn.prediction.decision import DecisionRule
from medknn.prediction.knn import KNNClassifier


def predict_with_rule(
    rule: str,
    *,
    knn: KNNClassifier | None,
    embeddings: np.ndarray,
    logits: np.ndarray | None,
    decision: DecisionRule | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(predicted labels, class probabilities)`` under ``rule`` (``"knn"`` or ``"softmax"``),
    adjusted by ``decision`` when the run has one."""
    if decision is not None and decision.kind != rule:
        raise ValueError(f"a {decision.kind} decision rule cannot adjust the {rule} rule")
    if rule == "softmax":
        if logits is None:
            raise ValueError("the softmax rule needs a network with a classifier")
        if decision is not None:
            proba = decision.softmax_proba(logits)
        else:
            proba = torch.softmax(torch.from_numpy(logits), dim=1).numpy()
        return proba.argmax(axis=1), proba
    if rule == "knn":
        if knn is None:
            raise ValueError("the knn rule needs a fitted KNNClassifier")
        if decision is not None:
            distances, indices = knn.kneighbors(embeddings, decision.k)
            proba = decision.knn_proba(distances, knn.labels_[indices])
            return proba.argmax(axis=1), proba
        return knn.predict(embeddings), knn.predict_proba(embeddings)
    raise ValueError(f"unknown prediction rule {rule!r}")
