"""The two prediction rules: vote among nearest training cases, or read the softmax classifier."""

from __future__ import annotations

import numpy as np
import torch

from medknn.prediction.knn import KNNClassifier


def predict_with_rule(
    rule: str, *, knn: KNNClassifier | None, embeddings: np.ndarray, logits: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """``(predicted labels, class probabilities)`` under ``rule`` (``"knn"`` or ``"softmax"``)."""
    if rule == "softmax":
        if logits is None:
            raise ValueError("the softmax rule needs a network with a classifier")
        proba = torch.softmax(torch.from_numpy(logits), dim=1).numpy()
        return proba.argmax(axis=1), proba
    if rule == "knn":
        if knn is None:
            raise ValueError("the knn rule needs a fitted KNNClassifier")
        return knn.predict(embeddings), knn.predict_proba(embeddings)
    raise ValueError(f"unknown prediction rule {rule!r}")
