"""BSTripletLoss: mean over anchors of max(0, m - mean_pos S² + mean_neg S²) (issue 3 §1)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from pytorch_metric_learning.distances import LpDistance

from medknn.errors import ConfigError
from medknn.losses import BSTripletLoss


def slow_bstriplet(embeddings: torch.Tensor, labels: torch.Tensor, margin: float, squared: bool):
    """The loss anchor by anchor, pair by pair, straight from the formula."""
    unit = F.normalize(embeddings, dim=1)
    terms = []
    for i in range(len(labels)):
        positives, negatives = [], []
        for j in range(len(labels)):
            if j == i:
                continue
            similarity = unit[i] @ unit[j]
            value = similarity**2 if squared else similarity
            (positives if labels[j] == labels[i] else negatives).append(value)
        positive = torch.stack(positives).mean() if positives else torch.zeros(())
        negative = torch.stack(negatives).mean() if negatives else torch.zeros(())
        terms.append(torch.relu(margin - positive + negative))
    return torch.stack(terms).mean()


@pytest.mark.parametrize("squared", [True, False])
def test_equals_the_slow_per_anchor_loop_with_gradients(squared: bool) -> None:
    generator = torch.Generator().manual_seed(0)
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2, 3])  # class 3: an anchor without positive
    embeddings = torch.randn(len(labels), 6, generator=generator).requires_grad_(True)
    leaf = embeddings.detach().clone().requires_grad_(True)

    loss = BSTripletLoss(margin=0.7, squared=squared)(embeddings, labels)
    expected = slow_bstriplet(leaf, labels, 0.7, squared)
    loss.backward()
    expected.backward()

    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert embeddings.grad.abs().sum() > 0
    torch.testing.assert_close(embeddings.grad, leaf.grad, rtol=1e-4, atol=1e-6)


def test_hand_computed_example_and_missing_positive() -> None:
    # Unit vectors a=(1,0), b=(0.6,0.8), c=(0,1); labels 0, 0, 1.
    # S: ab 0.6, ac 0, bc 0.8. Squared, m=0.9:
    # a: 0.9 - 0.36 + 0 = 0.54; b: 0.9 - 0.36 + 0.64 = 1.18;
    # c (no positive, keeps its negative term): 0.9 - 0 + (0 + 0.64)/2 = 1.22.
    embeddings = torch.tensor([[2.0, 0.0], [0.3, 0.4], [0.0, 5.0]])
    loss = BSTripletLoss(margin=0.9)(embeddings, torch.tensor([0, 0, 1]))
    assert loss.item() == pytest.approx((0.54 + 1.18 + 1.22) / 3)


def test_a_good_embedding_scores_lower_than_a_collapsed_one() -> None:
    # The printed eq. 3 (negative term subtracted) gives both 0; the implemented reading does not.
    labels = torch.tensor([0, 0, 1, 1])
    separated = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    collapsed = torch.ones(4, 2)
    loss_fn = BSTripletLoss(margin=0.9)
    assert loss_fn(separated, labels).item() == pytest.approx(0.0, abs=1e-6)
    assert loss_fn(collapsed, labels).item() == pytest.approx(0.9)


def test_moving_a_positive_closer_lowers_and_a_negative_closer_raises_the_loss() -> None:
    anchor, positive, negative = [1.0, 0.2, 0.1], [0.3, 1.0, 0.2], [0.2, 0.3, 1.0]
    labels = torch.tensor([0, 0, 1])
    loss_fn = BSTripletLoss(margin=0.9)

    def loss_with(pos: list[float], neg: list[float]) -> float:
        return loss_fn(torch.tensor([anchor, pos, neg]), labels).item()

    base = loss_with(positive, negative)
    closer_positive = [0.5 * (a + p) for a, p in zip(anchor, positive, strict=True)]
    closer_negative = [0.5 * (a + n) for a, n in zip(anchor, negative, strict=True)]
    assert loss_with(closer_positive, negative) < base
    assert loss_with(positive, closer_negative) > base


@pytest.mark.parametrize("seed", range(5))
def test_stays_within_0_and_1_plus_m_for_non_negative_features(seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    embeddings = torch.rand(24, 8, generator=generator) ** 4  # sparse-ish, like post-ReLU features
    labels = torch.randint(0, 3, (24,), generator=generator)
    for margin in (0.0, 0.5, 1.0):
        value = BSTripletLoss(margin=margin)(embeddings, labels).item()
        assert 0.0 <= value <= 1.0 + margin
    # The bound is reached: every anchor alone in its class, all negatives identical to it.
    worst = BSTripletLoss(margin=0.8)(torch.ones(4, 3), torch.arange(4)).item()
    assert worst == pytest.approx(1.8)


def test_mined_pairs_restrict_the_anchors() -> None:
    embeddings = torch.randn(5, 4)
    labels = torch.tensor([0, 0, 1, 1, 1])
    # Pairs of anchor 0 only: positive 1, negative 2.
    pairs = (torch.tensor([0]), torch.tensor([1]), torch.tensor([0]), torch.tensor([2]))
    unit = F.normalize(embeddings, dim=1)
    expected = torch.relu(0.9 - (unit[0] @ unit[1]) ** 2 + (unit[0] @ unit[2]) ** 2)
    loss = BSTripletLoss()(embeddings, labels, indices_tuple=pairs)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_invalid_input_raises_config_errors() -> None:
    with pytest.raises(ConfigError, match="batch of 1 embedding"):
        BSTripletLoss()(torch.randn(1, 4), torch.tensor([0]))
    with pytest.raises(ConfigError, match=r"margin=1\.5.*\[0, 1\]"):
        BSTripletLoss(margin=1.5)
    with pytest.raises(ConfigError, match="LpDistance.*CosineSimilarity"):
        BSTripletLoss(distance=LpDistance())
