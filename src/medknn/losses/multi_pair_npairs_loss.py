"""Multi-class N-pair loss (Sohn 2016; constellation paper eq. 3) over every pair of the batch."""

from __future__ import annotations

from typing import Any

import torch
from pytorch_metric_learning.distances import BaseDistance, DotProductSimilarity
from pytorch_metric_learning.losses import BaseMetricLossFunction
from pytorch_metric_learning.reducers import BaseReducer
from pytorch_metric_learning.utils import common_functions as c_f
from pytorch_metric_learning.utils import loss_and_miner_utils as lmu

from medknn.losses.constellation_loss import sample_negatives


class MultiPairNPairsLoss(BaseMetricLossFunction):
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
    The negatives are drawn by the same :func:`sample_negatives` with K = m, the number of other
    classes: with one generator state, the constellation's first m negatives of every pair are
    these (for K >= m), and at K = m the two losses are equal. The constellation loss has K terms
    instead of m: a random K of the m classes (K < m), or all m and K − m further members of
    reused classes (K > m; on two classes, K members of the other one). Sohn's L2 penalty on
    the embeddings is replaced by normalisation, as in PML's loss. ``generator`` seeds the
    draws (None: torch's global generator).
    """

    def __init__(
        self,
        generator: torch.Generator | None = None,
        distance: BaseDistance | None = None,
        reducer: BaseReducer | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(distance=distance, reducer=reducer, **kwargs)
        self.generator = generator
        # Always recorded (not PML "stats"): the trainer logs them every batch.
        self.add_to_recordable_attributes(list_of_names=["num_pairs", "num_terms"], is_stat=False)

    def compute_loss(self, embeddings, labels, indices_tuple, ref_emb, ref_labels):
        c_f.labels_required(labels)
        c_f.ref_not_supported(embeddings, labels, ref_emb, ref_labels)
        if indices_tuple is None:  # each same-class pair once, as ConstellationLoss
            anchors, positives = torch.where(torch.triu(labels[:, None] == labels, diagonal=1))
        else:
            anchors, positives, _, _ = lmu.convert_to_pairs(indices_tuple, labels)
        other_classes = len(torch.unique(labels)) - 1
        self.num_pairs = len(anchors) if other_classes > 0 else 0
        self.num_terms = self.num_pairs * other_classes
        if self.num_pairs == 0:
            return self.zero_losses()
        # K = m: one member of every other class, every slot filled.
        negatives, _ = sample_negatives(labels, anchors, other_classes, self.generator)
        similarity = self.distance(embeddings)
        if not self.distance.is_inverted:
            similarity = -similarity
        columns = torch.cat([positives.unsqueeze(1), negatives], dim=1)
        picked = similarity[anchors].gather(1, columns)  # [s(a, p), s(a, n_1), ..., s(a, n_m)]
        # log(1 + Σ exp(gap)) as a logsumexp with the 0 of column 0: no overflow.
        losses = torch.logsumexp(picked - picked[:, :1], dim=1)
        return {
            "loss": {
                "losses": losses,
                "indices": (anchors, positives),
                "reduction_type": "pos_pair",
            }
        }

    def get_default_distance(self) -> DotProductSimilarity:
        return DotProductSimilarity()
