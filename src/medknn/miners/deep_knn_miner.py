"""Deep kNN triplet mining (Zhuang et al. 2020, sec. 2): nearest same-class x other-class cases."""

from __future__ import annotations

import torch
from pytorch_metric_learning.distances import LpDistance
from pytorch_metric_learning.miners import BaseMiner

from medknn.errors import ConfigError


class DeepKNNMiner(BaseMiner):
    """Each anchor with its K nearest same-class and M nearest other-class references: K*M triplets.

    Returns PML triplets ``(anchor_idx, positive_idx, negative_idx)``; positives and negatives index
    ``ref_emb`` (the batch itself when no reference set is given, in which case an anchor is never
    its own positive). When the reference set holds the anchors too (an embedding bank of the
    whole training set), ``anchor_rows`` names each anchor's own row (-1: none), which is then
    never its positive either. Anchors with fewer than K positives (M negatives) use the ones
    there are; anchors with none are skipped and counted in ``num_skipped_anchors``.

    The default distance is non-squared Euclidean on L2-normalised embeddings, so distances lie in
    [0, 2] and the loss margin is scale-free. Pass the same distance object to the loss.
    """

    def __init__(self, num_positives: int = 5, num_negatives: int = 5, **kwargs) -> None:
        super().__init__(**kwargs)
        for name, value in (("num_positives", num_positives), ("num_negatives", num_negatives)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(
                    f"DeepKNNMiner {name}={value!r} is invalid; pass an integer >= 1 "
                    "(the paper uses K = M = 5)."
                )
        self.num_positives = num_positives
        self.num_negatives = num_negatives
        self._anchor_rows: torch.Tensor | None = None
        # Not PML "stats" (those are off unless COLLECT_STATS): the trainer always logs these.
        self.add_to_recordable_attributes(
            list_of_names=["num_positives", "num_negatives", "num_skipped_anchors", "num_triplets"]
        )

    def get_default_distance(self) -> LpDistance:
        return LpDistance(normalize_embeddings=True, p=2, power=1)

    def forward(
        self,
        embeddings: torch.Tensor,
        labels: torch.Tensor,
        ref_emb: torch.Tensor | None = None,
        ref_labels: torch.Tensor | None = None,
        anchor_rows: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # BaseMiner.forward passes only the PML arguments on to mine(): hold this one meanwhile.
        self._anchor_rows = anchor_rows
        try:
            return super().forward(embeddings, labels, ref_emb, ref_labels)
        finally:
            self._anchor_rows = None

    def mine(
        self,
        embeddings: torch.Tensor,
        labels: torch.Tensor,
        ref_emb: torch.Tensor,
        ref_labels: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # BaseMiner.forward runs this under torch.no_grad(): the search is not differentiated.
        dist = self.distance(embeddings, ref_emb)
        same_class = labels.unsqueeze(1) == ref_labels.unsqueeze(0)
        positive_mask = same_class
        if ref_emb is embeddings:
            positive_mask = same_class & ~torch.eye(
                len(labels), dtype=torch.bool, device=dist.device
            )
        elif self._anchor_rows is not None:
            rows = torch.arange(len(ref_labels), device=dist.device)
            own_row = rows.unsqueeze(0) == self._anchor_rows.to(dist.device).unsqueeze(1)
            positive_mask = same_class & ~own_row
        positives, has_positive = self._nearest(dist, positive_mask, self.num_positives)
        negatives, has_negative = self._nearest(dist, ~same_class, self.num_negatives)

        # (anchor, k, m) is a triplet iff the k-th positive and the m-th negative both exist.
        valid = has_positive.unsqueeze(2) & has_negative.unsqueeze(1)
        anchor_idx, k_idx, m_idx = valid.nonzero(as_tuple=True)
        self.num_skipped_anchors = int((~(has_positive.any(1) & has_negative.any(1))).sum())
        return anchor_idx, positives[anchor_idx, k_idx], negatives[anchor_idx, m_idx]

    def _nearest(
        self, dist: torch.Tensor, mask: torch.Tensor, k: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Indices of the k nearest masked references per row, and which of those really exist."""
        k = min(k, dist.shape[1])
        inverted = self.distance.is_inverted  # similarities: "nearest" means largest
        excluded = float("-inf") if inverted else float("inf")
        masked = dist.masked_fill(~mask, excluded)
        values, indices = masked.topk(k, dim=1, largest=inverted)
        return indices, values != excluded
