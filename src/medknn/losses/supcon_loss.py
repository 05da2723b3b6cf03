"""Supervised contrastive loss L_out (Khosla et al. 2020; Marrakchi et al. 2021, eq. 1)."""

from __future__ import annotations

import torch
from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning.reducers import MeanReducer


class SupConLoss(pml_losses.SupConLoss):
    """PML's ``SupConLoss`` averaged over exactly the anchors that have a positive in the batch.

    Per anchor the terms are PML's: ``-1/|P(i)| Σ_p log(exp(z_i·z_p/τ) / Σ_{a≠i} exp(z_i·z_a/τ))``
    on cosine similarities. PML's default ``AvgNonZeroReducer`` averages over the anchors whose
    loss is non-zero, which also drops anchors whose loss underflowed to exactly 0 in float32 (a
    lone positive far closer than every negative, common at τ ≤ 0.1): the mean then exceeds
    eq. 1's and effectively scales the learning rate up as the embedding gets better. Anchors
    without a positive (a class with one image in the batch) have no eq. 1 term (1/|P(i)| is
    undefined) and leave the mean, as in PML. A batch of one class gives 0, as in PML.
    """

    def _compute_loss(self, mat, pos_mask, neg_mask):
        result = super()._compute_loss(mat, pos_mask, neg_mask)
        loss = result["loss"]
        if loss["reduction_type"] == "element":
            anchors = torch.nonzero(pos_mask.bool().any(dim=1)).squeeze(1)
            loss["losses"], loss["indices"] = loss["losses"][anchors], anchors
        return result

    def get_default_reducer(self) -> MeanReducer:
        return MeanReducer()
