"""Methods layer: the registry and every registered method's objective."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from medknn.errors import ConfigError
from medknn.methods import ObjectiveContext, create_objective, get_method, list_methods

CLASS_COUNTS = np.array([60, 30, 10])
TRAINING_METHODS = [spec.name for spec in list_methods() if spec.trains]


def _context() -> ObjectiveContext:
    return ObjectiveContext(class_counts=CLASS_COUNTS, num_positives=2, num_negatives=2)


def test_registry_holds_the_paper_methods() -> None:
    names = [spec.name for spec in list_methods()]
    assert names == sorted(names)
    assert {"deepknn", "deepknn-star", "triplet", "ce", "weighted-ce", "knn-imagenet"} <= set(names)
    assert [name for name in names if name != "knn-imagenet"] == TRAINING_METHODS


@pytest.mark.parametrize("name", TRAINING_METHODS)
def test_objective_loss_is_finite_and_reaches_the_embeddings(name: str) -> None:
    torch.manual_seed(0)
    spec = get_method(name)
    objective = create_objective(name, _context())
    raw = torch.randn(12, 8, requires_grad=True)
    embeddings = F.normalize(raw, dim=1) if spec.normalize_embedding else raw
    classifier = torch.nn.Linear(8, 3)
    logits = classifier(embeddings) if spec.classifier else None
    labels = torch.arange(12) % 3

    loss, stats = objective(embeddings, logits, labels)
    loss.backward()

    assert loss.ndim == 0 and torch.isfinite(loss) and loss.item() > 0
    assert raw.grad is not None and torch.isfinite(raw.grad).all() and raw.grad.abs().sum() > 0
    assert all(isinstance(value, float) for value in stats.values())
    assert objective.needs_classifier == spec.classifier


def test_knn_imagenet_has_no_objective() -> None:
    assert not get_method("knn-imagenet").trains
    with pytest.raises(ConfigError, match="knn-imagenet"):
        create_objective("knn-imagenet", _context())


def test_weighted_ce_weights_are_inverse_class_frequency() -> None:
    objective = create_objective("weighted-ce", _context())
    n, c = CLASS_COUNTS.sum(), len(CLASS_COUNTS)
    expected = torch.tensor([n / (c * count) for count in CLASS_COUNTS], dtype=torch.float32)
    torch.testing.assert_close(objective.class_weights, expected)

    logits, labels = torch.randn(6, 3), torch.tensor([0, 1, 2, 2, 1, 0])
    loss, _ = objective(torch.zeros(6, 3), logits, labels)
    torch.testing.assert_close(loss, F.cross_entropy(logits, labels, weight=expected))
    assert create_objective("ce", _context()).class_weights is None


def test_unknown_method_lists_close_names() -> None:
    with pytest.raises(ConfigError, match="'deepkn'") as error:
        get_method("deepkn")
    assert "deepknn" in str(error.value) and "deepknn-star" in str(error.value)
    with pytest.raises(ConfigError, match="Did you mean"):
        create_objective("weighted_ce", _context())


def test_deepknn_reports_skipped_anchors_of_a_singleton_class() -> None:
    objective = create_objective("deepknn", _context())
    embeddings = F.normalize(torch.randn(7, 8), dim=1)
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2])  # class 2 has no positive for its anchor

    loss, stats = objective(embeddings, None, labels)

    assert torch.isfinite(loss)
    assert stats["num_skipped_anchors"] == 1.0
    # Each of the 6 other anchors has K=2 positives and M=2 negatives: 4 triplets.
    assert stats["num_triplets"] == 6 * 2 * 2
