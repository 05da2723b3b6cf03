"""DeepKNNLoss: eq. 2-3 of the paper, i.e. the hinge averaged over ALL mined triplets."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from pytorch_metric_learning.distances import LpDistance

from medknn.errors import ConfigError
from medknn.losses.deep_knn_loss import DeepKNNLoss


def test_hand_computed_1d_example_includes_zero_terms_in_the_mean():
    # Raw 1-D distances, K=1, M=2, margin 1. Per anchor [d(a,p) + 1 - d(a,n)]_+ for its 2 negatives:
    # x=0:   p=1 (1),   n=1.5 (1.5), 4 (4)  -> 0.5, 0
    # x=1:   p=0 (1),   n=1.5 (0.5), 4 (3)  -> 1.5, 0
    # x=1.5: p=4 (2.5), n=1 (0.5),   0 (1.5) -> 3.0, 2.0
    # x=4:   p=1.5 (2.5), n=1 (3),   0 (4)  -> 0.5, 0
    # Mean over N*K*M = 8 triplets: 7.5 / 8 (the 3 zero terms count; non-zero mean would be 1.5).
    embeddings = torch.tensor([[0.0], [1.0], [1.5], [4.0]], requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1])
    loss_fn = DeepKNNLoss(
        num_positives=1,
        num_negatives=2,
        margin=1.0,
        distance=LpDistance(normalize_embeddings=False),
    )
    loss = loss_fn(embeddings, labels)
    assert loss.item() == pytest.approx(7.5 / 8)
    assert loss_fn.num_triplets == 8


def test_hand_computed_2d_example_with_default_normalised_distance():
    # After L2 normalisation a=(1,0), b=(0,1), c=(-1,0): d(a,b)=d(b,c)=sqrt(2), d(a,c)=2.
    # a: p=b, n=c -> [sqrt2 + 0.2 - 2]_+ = 0; b: p=a, n=c -> 0.2; c has no positive (skipped).
    embeddings = torch.tensor([[2.0, 0.0], [0.0, 3.0], [-0.5, 0.0]], requires_grad=True)
    loss_fn = DeepKNNLoss(num_positives=1, num_negatives=1)
    loss = loss_fn(embeddings, torch.tensor([0, 0, 1]))
    assert loss.item() == pytest.approx(0.2 / 2)
    assert (loss_fn.num_triplets, loss_fn.num_skipped_anchors) == (2, 1)
    assert loss_fn.margin == 0.2


def test_random_batch_equals_slow_loop_over_triplets():
    gen = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 5, (40,), generator=gen)
    # Noisy class centres: some triplets are satisfied (zero terms), some are not.
    centres = torch.randn(5, 16, generator=gen)
    embeddings = centres[labels] + 0.5 * torch.randn(40, 16, generator=gen)
    embeddings.requires_grad_(True)
    loss_fn = DeepKNNLoss(num_positives=3, num_negatives=4, margin=0.3)

    loss = loss_fn(embeddings, labels)
    loss.backward()

    leaf = embeddings.detach().clone().requires_grad_(True)
    unit = F.normalize(leaf, dim=1)
    triplets = zip(*(t.tolist() for t in loss_fn.miner(embeddings, labels)), strict=True)
    terms = torch.stack(
        [
            F.relu((unit[a] - unit[p]).norm() + 0.3 - (unit[a] - unit[n]).norm())
            for a, p, n in triplets
        ]
    )
    assert 0 < int((terms == 0).sum()) < len(terms)  # both satisfied and violated triplets
    slow_loss = terms.mean()
    slow_loss.backward()

    assert loss.item() == pytest.approx(slow_loss.item(), rel=1e-5)
    assert torch.isfinite(embeddings.grad).all() and embeddings.grad.abs().sum() > 0
    torch.testing.assert_close(embeddings.grad, leaf.grad, rtol=1e-4, atol=1e-6)


def test_batch_without_triplets_gives_a_differentiable_zero():
    embeddings = torch.randn(6, 4, requires_grad=True)
    loss_fn = DeepKNNLoss()
    loss = loss_fn(embeddings, torch.zeros(6, dtype=torch.long))
    assert loss.item() == 0.0 and loss.grad_fn is not None
    loss.backward()
    assert torch.equal(embeddings.grad, torch.zeros_like(embeddings))
    assert loss_fn.num_skipped_anchors == 6


def test_miner_and_loss_share_one_distance():
    distance = LpDistance(normalize_embeddings=False)
    loss_fn = DeepKNNLoss(distance=distance)
    assert loss_fn.miner.distance is distance and loss_fn.triplet_loss.distance is distance


@pytest.mark.parametrize("bad", [-0.1, math.nan, math.inf, "0.2"])
def test_invalid_margin_names_the_value(bad):
    with pytest.raises(ConfigError, match="margin="):
        DeepKNNLoss(margin=bad)
