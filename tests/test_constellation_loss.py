"""ConstellationLoss: eq. 4 of Medela & Picon 2020, and how its negatives are drawn."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from pytorch_metric_learning.distances import DotProductSimilarity

from medknn.errors import ConfigError
from medknn.losses import ConstellationLoss
from medknn.losses.constellation_loss import sample_negatives
from medknn.models import create_network


def _pairs(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each same-class pair once, the earlier one as anchor."""
    pairs = [
        (a, p)
        for a in range(len(labels))
        for p in range(a + 1, len(labels))
        if labels[a] == labels[p]
    ]
    return torch.tensor(pairs).T.unbind()


def _slow_loss(
    unit: torch.Tensor, labels: torch.Tensor, num_negatives: int, seed: int
) -> torch.Tensor:
    anchors, positives = _pairs(labels)
    negatives, valid = sample_negatives(
        labels, anchors, num_negatives, torch.Generator().manual_seed(seed)
    )
    terms = []
    for i, (a, p) in enumerate(zip(anchors.tolist(), positives.tolist(), strict=True)):
        chosen = [n for n, ok in zip(negatives[i].tolist(), valid[i].tolist(), strict=True) if ok]
        total = sum(torch.exp(unit[a] @ unit[n] - unit[a] @ unit[p]) for n in chosen)
        terms.append(torch.log(1 + total))
    return torch.stack(terms).mean()


@pytest.mark.parametrize(
    ("num_classes", "per_class", "num_negatives"),
    [(5, 4, 3), (2, 4, 5)],  # distinct classes for every negative; one other class reused
)
def test_random_batch_equals_slow_loop(num_classes, per_class, num_negatives):
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(num_classes).repeat_interleave(per_class)
    raw = torch.randn(len(labels), 16, generator=gen, requires_grad=True)
    loss_fn = ConstellationLoss(num_negatives, generator=torch.Generator().manual_seed(7))

    loss = loss_fn(raw, labels)
    loss.backward()

    leaf = raw.detach().clone().requires_grad_(True)
    slow = _slow_loss(F.normalize(leaf, dim=1), labels, num_negatives, seed=7)
    slow.backward()
    assert loss.item() == pytest.approx(slow.item(), rel=1e-5)
    torch.testing.assert_close(raw.grad, leaf.grad, rtol=1e-4, atol=1e-6)
    assert loss_fn.num_pairs == num_classes * per_class * (per_class - 1) // 2  # as eq. 5


def test_loss_vanishes_when_every_negative_is_far_below_the_positive():
    labels = torch.arange(4).repeat_interleave(3)
    embeddings = 30.0 * F.one_hot(labels, 4).float()  # s(a, p) = 900, s(a, n) = 0
    loss_fn = ConstellationLoss(3, distance=DotProductSimilarity(normalize_embeddings=False))
    assert loss_fn(embeddings, labels).item() == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("num_negatives", [1, 3])
def test_loss_is_log_1_plus_k_when_negatives_equal_the_positive(num_negatives):
    labels = torch.arange(4).repeat_interleave(3)
    embeddings = torch.ones(12, 8)  # every similarity is the same: every exponent is 0
    loss = ConstellationLoss(num_negatives)(embeddings, labels)
    assert loss.item() == pytest.approx(math.log(1 + num_negatives))


def test_gradients_reach_the_backbone_through_the_sigmoid_head():
    torch.manual_seed(0)
    network = create_network("mlp", in_features=12, embedding_dim=8, head_activation="sigmoid")
    labels = torch.arange(3).repeat_interleave(4)
    embeddings, _ = network(torch.randn(12, 12))
    ConstellationLoss(2)(embeddings, labels).backward()
    grads = [p.grad for p in network.backbone.parameters()]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


def test_negatives_never_share_the_anchors_class_and_spread_over_classes():
    gen = torch.Generator().manual_seed(1)
    labels = torch.tensor([0] * 5 + [1] * 2 + [2] * 3 + [3] * 4)
    anchors = torch.arange(len(labels)).repeat(50)
    for num_negatives in (1, 3, 6):  # 3 other classes: fewer, as many, and more than needed
        negatives, valid = sample_negatives(labels, anchors, num_negatives, gen)
        assert valid[:, : min(3, num_negatives)].all()
        assert (
            labels[negatives][valid] != labels[anchors].unsqueeze(1).expand_as(valid)[valid]
        ).all()
        classes = labels[negatives[:, : min(3, num_negatives)]]
        assert all(len(set(row)) == len(row) for row in classes.tolist())
        for row, ok in zip(negatives.tolist(), valid.tolist(), strict=True):
            chosen = [n for n, keep in zip(row, ok, strict=True) if keep]
            assert len(set(chosen)) == len(chosen)  # a reused class gives other members


def test_a_slot_the_batch_cannot_fill_is_left_out():
    labels = torch.tensor([0, 0, 0, 1, 1])  # anchors of class 0 have two negatives only
    negatives, valid = sample_negatives(labels, torch.tensor([0, 3]), 4)
    assert valid.tolist() == [[True, True, False, False], [True, True, True, False]]
    assert set(negatives[0, :2].tolist()) == {3, 4}


def test_classes_and_members_are_drawn_uniformly():
    gen = torch.Generator().manual_seed(2)
    labels = torch.tensor([0, 1, 1, 2, 2, 2, 2, 3])
    negatives, _ = sample_negatives(labels, torch.zeros(6000, dtype=torch.long), 1, gen)
    class_share = torch.bincount(labels[negatives[:, 0]], minlength=4)[1:] / 6000
    torch.testing.assert_close(class_share, torch.full((3,), 1 / 3), atol=0.03, rtol=0)
    member_share = torch.bincount(negatives[:, 0], minlength=8)[3:7] / class_share[1] / 6000
    torch.testing.assert_close(member_share, torch.full((4,), 1 / 4), atol=0.04, rtol=0)


def test_negatives_follow_the_generator_seed_and_change_every_call():
    labels = torch.arange(6).repeat_interleave(3)
    anchors, _ = _pairs(labels)
    first = sample_negatives(labels, anchors, 3, torch.Generator().manual_seed(5))[0]
    again = sample_negatives(labels, anchors, 3, torch.Generator().manual_seed(5))[0]
    assert torch.equal(first, again)
    gen = torch.Generator().manual_seed(5)
    assert not torch.equal(
        sample_negatives(labels, anchors, 3, gen)[0], sample_negatives(labels, anchors, 3, gen)[0]
    )


def test_batch_of_one_class_gives_a_differentiable_zero():
    embeddings = torch.randn(6, 4, requires_grad=True)
    loss_fn = ConstellationLoss(3)
    loss = loss_fn(embeddings, torch.zeros(6, dtype=torch.long))
    assert loss.item() == 0.0 and loss.grad_fn is not None and loss_fn.num_pairs == 0


def test_pairs_of_a_miner_are_used():
    labels = torch.arange(3).repeat_interleave(3)
    embeddings = torch.randn(9, 4)
    loss_fn = ConstellationLoss(2)
    anchors, positives = torch.tensor([0, 4]), torch.tensor([1, 5])
    loss_fn(embeddings, labels, (anchors, positives, anchors, torch.tensor([3, 0])))
    assert loss_fn.num_pairs == 2 and loss_fn.num_terms == 4


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "3"])
def test_invalid_number_of_negatives_names_the_value(bad):
    with pytest.raises(ConfigError, match="num_negatives="):
        ConstellationLoss(bad)
