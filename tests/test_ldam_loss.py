"""LDAMLoss: margins ∝ n^(-1/4) on scaled cosine logits, and the DRW weights (issue 4 §2).

The loss receives ``scale · cos`` (a CosineClassifier with that scale); the slow reference
below applies the published formula to the cosines themselves."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from medknn.errors import ConfigError
from medknn.losses import LDAMLoss, drw_weights

COUNTS = np.array([5000, 600, 81, 16])


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    cosines = torch.rand(10, 4, generator=generator) * 2 - 1
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 3, 3, 0, 2])
    return cosines, labels


def slow_ldam(cosines, labels, counts, max_margin, scale, weight=None):
    """Sample by sample: subtract the true class's margin, scale, softmax, weighted mean."""
    margins = [max_margin * (min(counts) / n) ** 0.25 for n in counts]
    total, weights = torch.zeros(()), torch.zeros(())
    for row, label in zip(cosines, labels.tolist(), strict=True):
        z = torch.stack(
            [scale * (c - (margins[j] if j == label else 0.0)) for j, c in enumerate(row)]
        )
        w = torch.ones(()) if weight is None else weight[label]
        total = total - w * torch.log(torch.exp(z[label]) / torch.exp(z).sum())
        weights = weights + w
    return total / weights


def test_margins_follow_n_to_the_minus_quarter_with_the_largest_at_max_margin() -> None:
    loss = LDAMLoss(COUNTS, max_margin=0.4)
    margins = loss.margins.double().numpy()
    assert margins.argmax() == 3 and margins.max() == pytest.approx(0.4)
    products = margins * COUNTS**0.25  # the constant C
    np.testing.assert_allclose(products, products[0], rtol=1e-6)
    assert margins[2] == pytest.approx(0.4 * (16 / 81) ** 0.25)  # 0.4 · 2/3


@pytest.mark.parametrize("with_weight", [False, True])
def test_equals_the_slow_formula_with_gradients(with_weight: bool) -> None:
    cosines, labels = _batch()
    weight = drw_weights(COUNTS) if with_weight else None
    fast_input = cosines.clone().requires_grad_(True)
    slow_input = cosines.clone().requires_grad_(True)

    loss = LDAMLoss(COUNTS, max_margin=0.5, scale=10.0, weight=weight)(10.0 * fast_input, labels)
    expected = slow_ldam(slow_input, labels, COUNTS, 0.5, 10.0, weight)
    loss.backward()
    expected.backward()

    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    torch.testing.assert_close(fast_input.grad, slow_input.grad, rtol=1e-4, atol=1e-6)


def test_zero_margin_is_scaled_cross_entropy() -> None:
    cosines, labels = _batch(seed=2)
    loss = LDAMLoss(COUNTS, max_margin=0.0, scale=30.0)(30.0 * cosines, labels)
    torch.testing.assert_close(loss, F.cross_entropy(30.0 * cosines, labels))
    with_margin = LDAMLoss(COUNTS, max_margin=0.5, scale=30.0)(30.0 * cosines, labels)
    assert with_margin > loss  # margins make the true class harder to win


def test_weight_can_be_switched_on_later_for_deferred_reweighting() -> None:
    cosines, labels = _batch(seed=3)
    loss = LDAMLoss(COUNTS)
    plain = loss(30.0 * cosines, labels)
    loss.weight = drw_weights(COUNTS)
    reweighted = loss(30.0 * cosines, labels)
    assert reweighted.item() == pytest.approx(
        slow_ldam(cosines, labels, COUNTS, 0.5, 30.0, loss.weight).item(), rel=1e-5
    )
    assert reweighted.item() != pytest.approx(plain.item(), rel=1e-3)


def test_drw_weights_are_the_effective_number_weights_summing_to_the_classes() -> None:
    weights = drw_weights(COUNTS, beta=0.999).double().numpy()
    raw = (1 - 0.999) / (1 - 0.999 ** COUNTS.astype(float))
    np.testing.assert_allclose(weights, raw / raw.sum() * len(COUNTS), rtol=1e-6)
    assert weights.sum() == pytest.approx(4.0)
    assert np.all(np.diff(weights) > 0)  # rarer classes weigh more
    with pytest.raises(ConfigError, match="beta"):
        drw_weights(COUNTS, beta=1.0)


def test_an_empty_class_is_named() -> None:
    with pytest.raises(ConfigError, match="class index 2 has 0 training images"):
        LDAMLoss([10, 5, 0, 3])
    with pytest.raises(ConfigError, match="class index 0"):
        drw_weights([0, 5])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_margin": -0.1}, "max_margin"),
        ({"scale": 0.0}, "scale"),
        ({"scale": float("nan")}, "scale"),
        ({"weight": torch.ones(3)}, "3 class weights"),
    ],
)
def test_bad_options_are_named(kwargs, match) -> None:
    with pytest.raises(ConfigError, match=match):
        LDAMLoss(COUNTS, **kwargs)


def test_logits_must_have_one_column_per_counted_class() -> None:
    cosines, labels = _batch()
    with pytest.raises(ConfigError, match="margins for 3 classes"):
        LDAMLoss(COUNTS[:3])(cosines, labels)
