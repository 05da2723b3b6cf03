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


# --- what methods declare ---------------------------------------------------------------------


def test_the_registry_imports_no_recipe_and_the_package_registers_them() -> None:
    import ast
    from pathlib import Path

    import medknn.methods.registry as registry

    tree = ast.parse(Path(registry.__file__).read_text(encoding="utf-8"))
    imported = [
        node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
    ] + [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    ]
    assert not [name for name in imported if "recipes" in name]
    assert "ldam" in {spec.name for spec in registry.list_methods()}


@pytest.mark.parametrize("name", TRAINING_METHODS)
def test_every_option_default_passes_its_own_check(name: str) -> None:
    spec = get_method(name)
    resolved = spec.resolve_options({})
    assert list(resolved) == [option.name for option in spec.options]
    for option in spec.options:
        assert option.describe().startswith(option.name)


def test_top_level_k_m_margin_are_the_declared_options() -> None:
    spec = get_method("deepknn")
    top = {"num_positives": 7, "num_negatives": 5, "margin": 0.2}
    resolved = spec.resolve_options({}, top)
    assert (resolved["num_positives"], resolved["num_negatives"], resolved["margin"]) == (7, 5, 0.2)
    assert spec.resolve_options({"num_negatives": 3}, top)["num_negatives"] == 3
    with pytest.raises(ConfigError, match="num_positives is 7 at the top level and 4"):
        spec.resolve_options({"num_positives": 4}, top)
    # constellation's K is num_negatives (CLI --m); the loss gets it from either place.
    for context in (
        ObjectiveContext(class_counts=CLASS_COUNTS, num_negatives=2),
        ObjectiveContext(class_counts=CLASS_COUNTS, options={"num_negatives": 2}),
    ):
        assert create_objective("constellation", context).loss.num_negatives == 2
    # a method that does not declare margin ignores the top-level value, refuses the option
    assert get_method("ce").resolve_options({}, top) == {}
    with pytest.raises(ConfigError, match="'ce' has no option 'margin'"):
        get_method("ce").resolve_options({"margin": 0.3}, top)


def test_logged_stats_are_declared_by_the_method() -> None:
    assert get_method("deepknn").stats == ("num_skipped_anchors", "num_triplets")
    assert get_method("constellation").stats == ("num_pairs", "num_terms")
    objective = create_objective("constellation", _context())
    assert objective.stat_attributes == ("num_pairs", "num_terms")


def test_init_from_methods_are_registered_methods() -> None:
    for spec in list_methods():
        assert spec.requires_init_from == bool(spec.init_from_methods)
        for name in spec.init_from_methods:
            get_method(name)
    assert get_method("linear-probe").init_from_methods[0] == "supcon"
    assert "RUN/stage1" in get_method("linear-probe").init_from_hint
    assert get_method("deepknn-star").init_from_hint == "a finished 'weighted-ce' or 'ce' run"
