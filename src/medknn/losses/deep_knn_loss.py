"""The Deep kNN loss (Zhuang et al. 2020, eq. 2-3): PML triplet margin loss on Deep kNN triplets."""

from __future__ import annotations

import math

import torch
from pytorch_metric_learning.distances import BaseDistance, LpDistance
from pytorch_metric_learning.losses import TripletMarginLoss
from pytorch_metric_learning.reducers import MeanReducer

from medknn.errors import ConfigError
from medknn.miners.deep_knn_miner import DeepKNNMiner


class DeepKNNLoss(torch.nn.Module):
    """Mean over all N*K*M Deep kNN triplets of ``[d(a, p) + margin - d(a, n)]_+``.

    PML's ``TripletMarginLoss`` fed with the miner's triplets is exactly eq. 2; ``MeanReducer``
    averages every triplet, satisfied ones (zero terms) included, which is eq. 3 (PML's default
    ``AvgNonZeroReducer`` would drop them). The margin default 0.2 suits the default distance,
    non-squared Euclidean on L2-normalised embeddings (distances in [0, 2]). The miner and the loss
    share one distance object. A batch without any triplet gives a zero loss that still has a
    grad_fn, so ``backward()`` never fails.
    """

    def __init__(
        self,
        num_positives: int = 5,
        num_negatives: int = 5,
        margin: float = 0.2,
        distance: BaseDistance | None = None,
    ) -> None:
        super().__init__()
        is_number = isinstance(margin, int | float) and not isinstance(margin, bool)
        if not (is_number and math.isfinite(margin) and margin >= 0):
            raise ConfigError(
                f"DeepKNNLoss margin={margin!r} is invalid; pass a finite number >= 0 "
                "(0.2 for unit-normalised embeddings)."
            )
        if distance is None:
            distance = LpDistance(normalize_embeddings=True, p=2, power=1)
        self.miner = DeepKNNMiner(num_positives, num_negatives, distance=distance)
        self.triplet_loss = TripletMarginLoss(
            margin=margin, swap=False, smooth_loss=False, distance=distance, reducer=MeanReducer()
        )

    @property
    def distance(self) -> BaseDistance:
        return self.miner.distance

    @property
    def margin(self) -> float:
        return self.triplet_loss.margin

    @property
    def num_skipped_anchors(self) -> int:
        """Anchors of the last batch with no positive or no negative reference."""
        return self.miner.num_skipped_anchors

    @property
    def num_triplets(self) -> int:
        """Triplets mined from the last batch (the denominator of the mean)."""
        return self.miner.num_triplets

    def forward(
        self,
        embeddings: torch.Tensor,
        labels: torch.Tensor,
        ref_emb: torch.Tensor | None = None,
        ref_labels: torch.Tensor | None = None,
        anchor_rows: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The loss of the batch; with ``ref_emb`` the positives and negatives come from that
        reference set (constants if it carries no gradient), ``anchor_rows`` being each anchor's
        own row there (see :class:`DeepKNNMiner`)."""
        triplets = self.miner(embeddings, labels, ref_emb, ref_labels, anchor_rows=anchor_rows)
        return self.triplet_loss(
            embeddings, labels, indices_tuple=triplets, ref_emb=ref_emb, ref_labels=ref_labels
        )
