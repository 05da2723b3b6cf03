"""MultiPairNPairsLoss: the N-pair loss (Sohn 2016) on every pair of the batch (issue 19)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from pytorch_metric_learning.distances import LpDistance
from pytorch_metric_learning.reducers import SumReducer

from medknn.losses import ConstellationLoss, MultiPairNPairsLoss
from medknn.losses.constellation_loss import sample_negatives


def _pairs(labels: torch.Tensor) -> list[tuple[int, int]]:
    """Each same-class pair once, the earlier one as anchor."""
    n = len(labels)
    return [(a, p) for a in range(n) for p in range(a + 1, n) if labels[a] == labels[p]]


def _slow_loss(
    unit: torch.Tensor, labels: torch.Tensor, negatives: list[list[int]]
) -> torch.Tensor:
    """The N-pair term of every pair straight from eq. 3, given each pair's negatives."""
    terms = []
    for (a, p), chosen in zip(_pairs(labels), negatives, strict=True):
        total = sum(torch.exp(unit[a] @ unit[n] - unit[a] @ unit[p]) for n in chosen)
        terms.append(torch.log(1 + total))
    return torch.stack(terms).mean()


def _drawn_negatives(labels: torch.Tensor, seed: int) -> list[list[int]]:
    """The negatives a loss with ``Generator().manual_seed(seed)`` draws, checked to be one
    member of every other class of the batch per pair."""
    anchors = torch.tensor([a for a, _ in _pairs(labels)])
    others = len(labels.unique()) - 1
    negatives, valid = sample_negatives(
        labels, anchors, others, torch.Generator().manual_seed(seed)
    )
    assert valid.all()
    rows = negatives.tolist()
    for a, row in zip(anchors.tolist(), rows, strict=True):
        classes = sorted(labels[row].tolist())
        assert classes == sorted(set(labels.tolist()) - {int(labels[a])})
    return rows


@pytest.mark.parametrize(
    "labels",
    [
        [0, 1, 2, 3] * 3,  # a P×Q batch, shuffled
        [0, 0, 0, 1, 1, 2, 3, 3, 3, 3],  # class 2 has one image: no pair, still a negative
        [1, 0, 0, 1, 0, 1, 1],  # two classes: one negative per pair
    ],
)
def test_random_batch_equals_slow_loop_with_gradients(labels: list[int]) -> None:
    labels_t = torch.tensor(labels)
    raw = torch.randn(len(labels), 8, generator=torch.Generator().manual_seed(0))
    fast_leaf = raw.clone().requires_grad_(True)
    slow_leaf = raw.clone().requires_grad_(True)
    loss_fn = MultiPairNPairsLoss(generator=torch.Generator().manual_seed(3))

    loss = loss_fn(fast_leaf, labels_t)
    slow = _slow_loss(F.normalize(slow_leaf, dim=1), labels_t, _drawn_negatives(labels_t, 3))
    loss.backward()
    slow.backward()

    assert loss.item() == pytest.approx(slow.item(), rel=1e-5)
    assert fast_leaf.grad.abs().sum() > 0
    torch.testing.assert_close(fast_leaf.grad, slow_leaf.grad, rtol=1e-4, atol=1e-6)
    others = len(set(labels)) - 1
    assert loss_fn.num_pairs == len(_pairs(labels_t))
    assert loss_fn.num_terms == loss_fn.num_pairs * others


def test_classes_of_one_image_are_the_negatives_without_any_draw() -> None:
    # Only class 0 has pairs; classes 1, 2, 3 have one image each, so every pair's negatives
    # are images 1, 4, 5: the loss is fixed, and computed here with no sampler at all.
    labels = torch.tensor([0, 1, 0, 0, 2, 3])
    raw = torch.randn(6, 5, generator=torch.Generator().manual_seed(1))
    fast_leaf = raw.clone().requires_grad_(True)
    slow_leaf = raw.clone().requires_grad_(True)

    loss = MultiPairNPairsLoss()(fast_leaf, labels)
    slow = _slow_loss(F.normalize(slow_leaf, dim=1), labels, [[1, 4, 5]] * 3)
    loss.backward()
    slow.backward()

    assert loss.item() == pytest.approx(slow.item(), rel=1e-6)
    torch.testing.assert_close(fast_leaf.grad, slow_leaf.grad, rtol=1e-4, atol=1e-7)
    assert slow_leaf.grad[[1, 4, 5]].abs().sum() > 0  # the lone images are pushed away


def test_expectation_is_sohns_loss_over_every_n_pair_tuple_of_the_batch() -> None:
    # Sohn's N-pair-mc on one tuple (an ordered pair per class): 1/N Σ_i log(1 + Σ_{j≠i}
    # exp(f_i·f_j+ − f_i·f_i+)). Averaged over every tuple of a 3 × 3 batch (6³ of them), it is
    # the multi-pair loss averaged over its draws and over both orders of the batch.
    labels = torch.arange(3).repeat(3)
    unit = F.normalize(torch.randn(9, 4, generator=torch.Generator().manual_seed(2)), dim=1)
    sim = unit @ unit.T
    members = [torch.where(labels == c)[0].tolist() for c in range(3)]
    ordered = [list(itertools.permutations(m, 2)) for m in members]
    tuple_losses = []
    for tup in itertools.product(*ordered):
        terms = [
            math.log(1 + sum(math.exp(sim[a, tup[j][1]] - sim[a, p]) for j in range(3) if j != i))
            for i, (a, p) in enumerate(tup)
        ]
        tuple_losses.append(sum(terms) / 3)
    sohn = sum(tuple_losses) / len(tuple_losses)

    loss_fn = MultiPairNPairsLoss(generator=torch.Generator().manual_seed(0))
    draws = [
        (loss_fn(unit, labels) + loss_fn(unit.flip(0), labels.flip(0))).item() / 2
        for _ in range(3000)
    ]
    assert sum(draws) / len(draws) == pytest.approx(sohn, rel=2e-3)


def test_it_is_the_constellation_loss_with_k_equal_to_the_other_classes() -> None:
    labels = torch.tensor([0, 1, 2, 3, 4] * 4)
    embeddings = torch.randn(20, 6, generator=torch.Generator().manual_seed(4))
    npairs = MultiPairNPairsLoss(generator=torch.Generator().manual_seed(9))
    constellation = ConstellationLoss(4, generator=torch.Generator().manual_seed(9))
    assert npairs(embeddings, labels).item() == pytest.approx(
        constellation(embeddings, labels).item(), rel=1e-6
    )
    # K > m: the constellation's first m negatives are the N-pair ones, then reused classes.
    anchors = torch.tensor([a for a, _ in _pairs(labels)])
    mine, _ = sample_negatives(labels, anchors, 4, torch.Generator().manual_seed(5))
    more, _ = sample_negatives(labels, anchors, 7, torch.Generator().manual_seed(5))
    assert torch.equal(more[:, :4], mine)


def test_distance_and_reducer_are_injected() -> None:
    labels = torch.tensor([0, 1, 0, 0, 2, 3])
    embeddings = torch.randn(6, 5, generator=torch.Generator().manual_seed(6))
    distance = LpDistance(normalize_embeddings=False)  # a true distance: s = -d
    loss = MultiPairNPairsLoss(distance=distance, reducer=SumReducer())(embeddings, labels)
    d = torch.cdist(embeddings, embeddings)
    expected = sum(
        torch.log(1 + sum(torch.exp(d[a, p] - d[a, n]) for n in (1, 4, 5)))
        for a, p in _pairs(labels)
    )
    assert loss.item() == pytest.approx(float(expected), rel=1e-5)


def test_batch_of_one_class_gives_a_differentiable_zero() -> None:
    embeddings = torch.randn(5, 4, requires_grad=True)
    loss_fn = MultiPairNPairsLoss()
    loss = loss_fn(embeddings, torch.zeros(5, dtype=torch.long))
    assert loss.item() == 0.0 and loss.grad_fn is not None
    assert loss_fn.num_pairs == 0 and loss_fn.num_terms == 0


def test_pairs_of_a_miner_are_used() -> None:
    labels = torch.arange(3).repeat_interleave(3)
    loss_fn = MultiPairNPairsLoss()
    anchors, positives = torch.tensor([0, 4]), torch.tensor([1, 5])
    loss_fn(torch.randn(9, 4), labels, (anchors, positives, anchors, torch.tensor([3, 0])))
    assert loss_fn.num_pairs == 2 and loss_fn.num_terms == 4
