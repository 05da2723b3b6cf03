"""SupConLoss against eq. 1 of Marrakchi et al. 2021 (L_out of Khosla et al. 2020), issue 4 §4.

Eq. 1 for anchor i: -1/|P(i)| Σ_{p∈P(i)} log(exp(z_i·z_p/τ) / Σ_{a≠i} exp(z_i·z_a/τ)), the loss
being the mean over the anchors that have a positive. An anchor whose class has one image in
the batch has P(i) = ∅ and 1/|P(i)| undefined, so it has no term; it still appears in the other
anchors' denominators. PML gives such an anchor a loss of 0 and its AvgNonZeroReducer skips it:
the same. But the reducer also skips anchors whose loss is exactly 0 in float32, which eq. 1
averages in; medknn's SupConLoss (a PML subclass) averages over the anchors with a positive.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from pytorch_metric_learning import losses as pml_losses

from medknn.losses import SupConLoss

# Class 3 has one image in the batch: an anchor without positive.
LABELS = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2, 3])


def slow_supcon(z: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """Eq. 1 anchor by anchor on L2-normalised rows of ``z``."""
    z = F.normalize(z, dim=1)
    terms = []
    for i in range(len(labels)):
        positives = [p for p in range(len(labels)) if p != i and labels[p] == labels[i]]
        if not positives:
            continue  # no eq. 1 term
        others = torch.stack([z[i] @ z[a] / temperature for a in range(len(labels)) if a != i])
        log_denominator = torch.log(torch.exp(others).sum())
        logs = [z[i] @ z[p] / temperature - log_denominator for p in positives]
        terms.append(-torch.stack(logs).mean())
    return torch.stack(terms).mean()


def _unit_batch(seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(len(LABELS), 8, generator=generator, dtype=torch.float64), dim=1)


@pytest.mark.parametrize("temperature", [0.05, 0.1, 1.0])
def test_medknn_and_pml_equal_eq_1_with_gradients(temperature: float) -> None:
    z = _unit_batch(seed=0)
    inputs = [z.clone().requires_grad_(True) for _ in range(3)]
    losses = [
        SupConLoss(temperature)(inputs[0], LABELS),
        pml_losses.SupConLoss(temperature)(inputs[1], LABELS),
        slow_supcon(inputs[2], LABELS, temperature),
    ]
    for loss in losses:
        loss.backward()
    for loss, z_input in zip(losses[:2], inputs[:2], strict=True):
        assert loss.item() == pytest.approx(losses[2].item(), rel=1e-9)
        torch.testing.assert_close(z_input.grad, inputs[2].grad)


def test_the_anchor_without_positive_only_enters_denominators() -> None:
    z = _unit_batch(seed=1)
    moved = z.clone()
    moved[9] = F.normalize(torch.ones(8, dtype=torch.float64), dim=0)  # the lone class-3 image
    for batch in (z, moved):
        assert SupConLoss(0.1)(batch, LABELS).item() == pytest.approx(
            slow_supcon(batch, LABELS, 0.1).item(), rel=1e-9
        )
    # It is a negative of everyone else, so moving it changes the loss.
    assert SupConLoss(0.1)(z, LABELS).item() != pytest.approx(
        SupConLoss(0.1)(moved, LABELS).item(), rel=1e-6
    )


def test_anchors_whose_loss_underflows_to_zero_stay_in_the_mean() -> None:
    # Class 1's two images coincide and lie far from all others: at τ = 0.05 their loss is
    # log(1 + Σ exp(-40 or less)), exactly 0 in float32. Eq. 1 averages those zeros in.
    z = _unit_batch(seed=2).float()
    z[3] = z[4] = torch.eye(8)[0]
    z[[0, 1, 2, 5, 6, 7, 8, 9], 0] = -1.0
    z = F.normalize(z, dim=1)
    expected = slow_supcon(z.double(), LABELS, 0.05).item()
    assert SupConLoss(0.05)(z, LABELS).item() == pytest.approx(expected, rel=1e-5)
    # PML's AvgNonZeroReducer drops those two of the 9 anchors with a positive (a larger mean):
    # the reason medknn subclasses it. If a PML release changes this, re-export PML's class.
    pml = pml_losses.SupConLoss(0.05)(z, LABELS).item()
    assert pml == pytest.approx(expected * 9 / 7, rel=1e-5)


def test_two_views_per_image_make_every_class_an_anchor() -> None:
    # The trainer stacks views view-major: labels repeat, so a lone image has its other view.
    z = _unit_batch(seed=3)
    views = torch.cat([z, F.normalize(z + 0.1 * torch.randn_like(z), dim=1)])
    labels = LABELS.repeat(2)
    assert SupConLoss(0.1)(views, labels).item() == pytest.approx(
        slow_supcon(views, labels, 0.1).item(), rel=1e-9
    )


def test_a_batch_of_one_class_gives_zero() -> None:
    # Eq. 1 is defined there (positives only in the denominator) but carries no contrast;
    # PML, and so medknn, return 0.
    z = _unit_batch(seed=4)
    loss = SupConLoss(0.1)(z, torch.zeros(len(LABELS), dtype=torch.long))
    assert loss.item() == 0.0
