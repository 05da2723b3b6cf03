"""Multi-class N-pair loss (Sohn 2016; constellation paper eq. 3) over every pair of the batch."""

from __future__ import annotations

from typing import Any

import torch
from pytorch_metric_learning.utils import common_functions as c_f

from medknn.losses.constellation_loss import ConstellationLoss


class MultiPairNPairsLoss(ConstellationLoss):
    """Mean over (anchor a, positive p) pairs of ``log(1 + Σ_c exp(s(a, n_c) − s(a, p)))``,
    c running over the batch's other classes, ``n_c`` one random member of class c.

    The N-pair construction (one negative per other class, N − 1 terms) on every same-class
    pair of the batch, where PML's ``NPairsLoss`` takes one pair per class. Its expectation over
    the draws (and the batch's random order) is Sohn's N-pair-mc loss averaged over every
    N-pair tuple of a P×Q batch: there a class's negative is the positive of that class's pair,
    a uniformly random member of it. A class with one image has no pair but remains a negative.

    Against ``ConstellationLoss(K)`` everything but the negatives is the same: the pairs (each
    once, the earlier as anchor, or a miner's), ``s`` (by default the dot product of
    L2-normalised embeddings), the term and the mean over pairs; eq. 3 and eq. 4 are one formula.
    It is therefore ``ConstellationLoss`` with K set at each call to m, the batch's number of
    other classes: with one generator state, the constellation's first m negatives of every pair are
    these (for K >= m), and at K = m the two losses are equal. The constellation loss has K terms
    instead of m: a random K of the m classes (K < m), or all m and K − m further members of
    reused classes (K > m; on two classes, K members of the other one). Sohn's L2 penalty on
    the embeddings is replaced by normalisation, as in PML's loss. ``generator`` seeds the
    draws (None: torch's global generator).
    """

    def __init__(self, generator: torch.Generator | None = None, **kwargs: Any) -> None:
        super().__init__(num_negatives=1, generator=generator, **kwargs)

    def compute_loss(self, embeddings, labels, indices_tuple, ref_emb, ref_labels):
        c_f.labels_required(labels)
        # K = m, the batch's other classes: one member of each, every slot filled.
        self.num_negatives = max(len(torch.unique(labels)) - 1, 1)
        return super().compute_loss(embeddings, labels, indices_tuple, ref_emb, ref_labels)
