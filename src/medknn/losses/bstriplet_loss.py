"""The batch-similarity triplet loss, BSTriplet (Huang et al., Sensors 2021, eq. 2-4)."""

from __future__ import annotations

import math

import torch
from pytorch_metric_learning.distances import BaseDistance, CosineSimilarity
from pytorch_metric_learning.losses import GenericPairLoss
from pytorch_metric_learning.utils import common_functions as c_f
from pytorch_metric_learning.utils import loss_and_miner_utils as lmu

from medknn.errors import ConfigError


class BSTripletLoss(GenericPairLoss):
    """Mean over anchors i of ``max(0, m - mean_j S_ij^2 + mean_k S_ik^2)``.

    S is the cosine similarity of the batch (the default ``distance``; any PML similarity may be
    injected), j runs over i's positives and k over its negatives, the diagonal excluded. With
    ``squared=False`` the similarities enter linearly. An anchor without positives (negatives)
    in the batch keeps the other term; anchors with neither (only possible with a miner's
    ``indices_tuple``) leave the mean. A batch of one embedding and no ``ref_emb`` is refused:
    the paper's only invalid case (§2.3).

    Deliberate deviation from the printed eq. 3, which *subtracts* the negative term: with
    D = S ⊙ (2B − 1), squaring erases the sign (2B − 1) gave the negatives, so the printed loss
    falls as negatives become more similar, and an embedding with all pairs at similarity 1
    scores the same as a perfect one. The paper's stated intent (positives above m, negatives
    pushed towards 0, an upper bound of 1 + m for non-negative pooled features, §2.2) is the
    formula above. The squared form sends negatives towards similarity 0, not -1, so it suits
    non-negative (post-ReLU) features; ``squared=False`` suits signed embeddings.
    """

    def __init__(
        self, margin: float = 0.9, squared: bool = True, distance: BaseDistance | None = None
    ) -> None:
        is_number = isinstance(margin, int | float) and not isinstance(margin, bool)
        if not (is_number and math.isfinite(margin) and 0 <= margin <= 1):
            raise ConfigError(
                f"BSTripletLoss margin={margin!r} is invalid; pass a number in [0, 1], near 1 "
                "(the paper: 'm should be near 1'; default 0.9)."
            )
        if distance is not None and not distance.is_inverted:
            raise ConfigError(
                f"BSTripletLoss needs a similarity in [-1, 1], got the distance "
                f"{type(distance).__name__}; pass CosineSimilarity() or leave distance unset."
            )
        super().__init__(mat_based_loss=True, distance=distance)
        self.margin = float(margin)
        self.squared = bool(squared)
        self.add_to_recordable_attributes(list_of_names=["margin"], is_stat=False)

    def get_default_distance(self) -> CosineSimilarity:
        return CosineSimilarity()

    def compute_loss(self, embeddings, labels, indices_tuple, ref_emb, ref_labels):
        if ref_emb is embeddings and len(embeddings) < 2:
            raise ConfigError(
                f"BSTripletLoss got a batch of {len(embeddings)} embedding(s): it compares each "
                "image with the rest of its batch, so use batch_size >= 2."
            )
        # GenericPairLoss.compute_loss without its shortcut that zeroes a lone mined pair.
        c_f.labels_or_indices_tuple_required(labels, indices_tuple)
        pairs = lmu.convert_to_pairs(indices_tuple, labels, ref_labels)
        return self.mat_based_loss(self.distance(embeddings, ref_emb), pairs)

    def _compute_loss(
        self, mat: torch.Tensor, pos_mask: torch.Tensor, neg_mask: torch.Tensor
    ) -> dict:
        similarity = mat.square() if self.squared else mat
        positive = _row_mean(similarity, pos_mask)
        negative = _row_mean(similarity, neg_mask)
        losses = torch.relu(self.margin - positive + negative)
        anchors = torch.nonzero((pos_mask + neg_mask).sum(dim=1) > 0).squeeze(1)
        if len(anchors) == 0:
            return self.zero_losses()
        return {
            "loss": {"losses": losses[anchors], "indices": anchors, "reduction_type": "element"}
        }


def _row_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of each row's masked entries; 0 for a row without any (its term is absent)."""
    return (values * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
