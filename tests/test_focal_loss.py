"""FocalLoss: -(1 - p_t)^γ log p_t (Lin et al. 2017), γ = 0 is cross entropy (issue 4 §2)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from medknn.errors import ConfigError
from medknn.losses import FocalLoss

WEIGHT = torch.tensor([0.2, 1.0, 3.0, 0.5])


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    logits = 3 * torch.randn(12, 4, generator=generator)
    labels = torch.tensor([0, 1, 2, 3, 0, 0, 1, 2, 2, 3, 1, 0])
    return logits, labels


def slow_focal(logits: torch.Tensor, labels: torch.Tensor, gamma: float, weight=None):
    """Sample by sample from the formula, with cross entropy's weighted mean."""
    total, weights = torch.zeros(()), torch.zeros(())
    for row, label in zip(logits, labels.tolist(), strict=True):
        p_t = torch.exp(row[label]) / torch.exp(row).sum()
        w = torch.ones(()) if weight is None else weight[label]
        total = total - w * (1 - p_t) ** gamma * torch.log(p_t)
        weights = weights + w
    return total / weights


@pytest.mark.parametrize("weight", [None, WEIGHT], ids=["unweighted", "weighted"])
def test_gamma_zero_is_cross_entropy(weight) -> None:
    logits, labels = _batch()
    loss = FocalLoss(gamma=0.0, weight=weight)(logits, labels)
    torch.testing.assert_close(loss, F.cross_entropy(logits, labels, weight=weight))


@pytest.mark.parametrize("gamma", [0.5, 2.0])
@pytest.mark.parametrize("weight", [None, WEIGHT], ids=["unweighted", "weighted"])
def test_equals_the_slow_formula_with_gradients(gamma: float, weight) -> None:
    logits, labels = _batch(seed=1)
    fast_input = logits.clone().requires_grad_(True)
    slow_input = logits.clone().requires_grad_(True)

    loss = FocalLoss(gamma=gamma, weight=weight)(fast_input, labels)
    expected = slow_focal(slow_input, labels, gamma, weight)
    loss.backward()
    expected.backward()

    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert loss.item() < F.cross_entropy(logits, labels, weight=weight).item()
    torch.testing.assert_close(fast_input.grad, slow_input.grad, rtol=1e-4, atol=1e-6)


def test_easy_samples_lose_more_weight_than_hard_ones() -> None:
    # p_t = 0.9 vs p_t = 0.1 (two classes): γ = 2 scales CE by 0.01 vs 0.81.
    logits = torch.tensor([[math.log(9.0), 0.0], [0.0, math.log(9.0)]])
    per_sample = [FocalLoss(2.0)(logits[i : i + 1], torch.tensor([0])) for i in range(2)]
    assert per_sample[0].item() == pytest.approx(0.01 * -math.log(0.9), rel=1e-5)
    assert per_sample[1].item() == pytest.approx(0.81 * -math.log(0.1), rel=1e-5)


@pytest.mark.parametrize("gamma", [0.5, 2.0])
@pytest.mark.parametrize("margin", [20.0, 200.0])  # p_t rounds to 1 at 200
def test_gradient_stays_finite_as_p_t_goes_to_one(gamma: float, margin: float) -> None:
    logits = torch.tensor([[margin, 0.0, 0.0], [0.0, 1.0, 0.0]], requires_grad=True)
    loss = FocalLoss(gamma=gamma)(logits, torch.tensor([0, 1]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    assert logits.grad[1].abs().sum() > 0  # the hard sample still learns


@pytest.mark.parametrize("gamma", [-0.5, float("nan"), float("inf"), "2"])
def test_bad_gamma_is_named(gamma) -> None:
    with pytest.raises(ConfigError, match="gamma"):
        FocalLoss(gamma=gamma)


def test_labels_and_weights_must_fit_the_logits() -> None:
    logits, labels = _batch()
    with pytest.raises(ConfigError, match="0..3"):
        FocalLoss()(logits, labels + 1)
    with pytest.raises(ConfigError, match="3 class weights"):
        FocalLoss(weight=torch.ones(3))(logits, labels)
    with pytest.raises(ConfigError, match="non-negative"):
        FocalLoss(weight=-WEIGHT)
