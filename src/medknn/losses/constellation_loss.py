"""Constellation loss (Medela & Picon 2020, eq. 4): anchor-positive pairs against K negatives."""

from __future__ import annotations

import torch
from pytorch_metric_learning.distances import DotProductSimilarity
from pytorch_metric_learning.losses import BaseMetricLossFunction
from pytorch_metric_learning.utils import common_functions as c_f
from pytorch_metric_learning.utils import loss_and_miner_utils as lmu

from medknn.errors import ConfigError


class ConstellationLoss(BaseMetricLossFunction):
    """Mean over (anchor a, positive p) pairs of ``log(1 + Σ_j exp(s(a, n_j) − s(a, p)))``.

    ``s`` is the distance's similarity, by default the dot product of L2-normalised embeddings
    (for a true distance, ``s = −d``). The pairs are every same-class pair of the batch once,
    the earlier one in the batch as anchor (batches are shuffled, so which member anchors is
    random), or the pairs of a PML miner's ``indices_tuple``. Each pair gets its own
    ``num_negatives`` (K) negatives, drawn afresh at every call by :func:`sample_negatives`:
    K distinct other classes of the batch with one random member each; when the batch has fewer
    other classes than K they are reused with further members, and a slot that the batch cannot
    fill is left out of the sum. A batch of one class gives a zero loss.

    The paper enumerates every constellation of a batch of K + 1 classes × ``spc`` images,
    ``(K+1)·spc(spc−1)/2 · spc^K`` of them (its eq. 5), each with K exponential terms. Here each
    of the ``P·spc(spc−1)/2`` pairs of a P×spc batch is one constellation with one random draw of
    negatives, K terms per pair: in a batch of K + 1 classes, as in the paper, its expectation is
    the paper's mean over the pair's ``spc^K`` negative sets, at a cost linear in K instead of
    exponential. ``generator`` seeds the draws (None: torch's global RNG).
    """

    def __init__(
        self, num_negatives: int = 3, generator: torch.Generator | None = None, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        if (
            isinstance(num_negatives, bool)
            or not isinstance(num_negatives, int)
            or num_negatives < 1
        ):
            raise ConfigError(
                f"ConstellationLoss num_negatives={num_negatives!r} is invalid; pass an integer "
                ">= 1 (the paper tries K = 3, 5, 7)."
            )
        self.num_negatives = num_negatives
        self.generator = generator
        # Always recorded (not PML "stats"): the trainer logs them every batch.
        self.add_to_recordable_attributes(
            list_of_names=["num_negatives", "num_pairs", "num_terms"], is_stat=False
        )

    def compute_loss(self, embeddings, labels, indices_tuple, ref_emb, ref_labels):
        c_f.labels_required(labels)
        c_f.ref_not_supported(embeddings, labels, ref_emb, ref_labels)
        if indices_tuple is None:  # each same-class pair once, as in eq. 5; no negative pairs
            anchors, positives = torch.where(torch.triu(labels[:, None] == labels, diagonal=1))
        else:
            anchors, positives, _, _ = lmu.convert_to_pairs(indices_tuple, labels)
        negatives, valid = sample_negatives(labels, anchors, self.num_negatives, self.generator)
        # The first slot is filled for every pair or, in a batch of one class, for none.
        self.num_terms = int(valid.sum())
        self.num_pairs = len(anchors) if self.num_terms else 0
        if self.num_pairs == 0:
            return self.zero_losses()
        similarity = self.distance(embeddings)
        if not self.distance.is_inverted:
            similarity = -similarity
        # One gather of flat indices into the B×B matrix: [s(a, p), s(a, n_1), ..., s(a, n_K)].
        columns = torch.cat([positives.unsqueeze(1), negatives], dim=1)
        picked = _lookup(similarity.reshape(-1), (anchors * len(similarity)).unsqueeze(1) + columns)
        # Column 0 becomes s(a, p) − s(a, p) = 0, so logsumexp gives log(1 + Σ exp(gap)) without
        # overflow; an empty slot's exp(-inf) is 0.
        gaps = picked - picked[:, :1]
        gaps[:, 1:].masked_fill_(~valid, float("-inf"))
        losses = torch.logsumexp(gaps, dim=1)
        return {
            "loss": {
                "losses": losses,
                "indices": (anchors, positives),
                "reduction_type": "pos_pair",
            }
        }

    def get_default_distance(self) -> DotProductSimilarity:
        return DotProductSimilarity()


def sample_negatives(
    labels: torch.Tensor,
    anchors: torch.Tensor,
    num_negatives: int,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(negatives, valid)``, both ``(len(anchors), num_negatives)``: batch positions of each
    anchor's negatives, and which slots hold one.

    The batch's classes are put in one random cyclic order; an anchor's m other classes are the
    ones after its own, and slot j takes the ``((r + j) mod m)``-th of them for a random offset r
    per row. So the first min(K, m) slots hold distinct classes, a uniformly random subset for
    each row (the rows of one call share the cycle, which is redrawn at every call), and no row
    is sorted. Slot j takes the ``(j div m)``-th member of its class counted cyclically from a
    uniformly random start, so a class reused when K > m gives distinct members; a slot beyond
    its class's size is invalid.
    """
    device = labels.device
    _, class_of, counts = torch.unique(labels, return_inverse=True, return_counts=True)
    num_rows, num_classes = len(anchors), len(counts)
    others = num_classes - 1
    if num_rows == 0 or others == 0:
        shape = (num_rows, num_negatives)
        return (
            torch.zeros(shape, dtype=torch.long, device=device),
            torch.zeros(shape, dtype=torch.bool, device=device),
        )
    # Class c's members are by_class[first[c] : first[c] + counts[c]].
    by_class = torch.argsort(class_of, stable=True)
    first = torch.cumsum(counts, dim=0) - counts
    cycle = torch.randperm(num_classes, generator=generator, device=_where(generator, device))
    place = torch.argsort(cycle).to(device)  # place[c]: position of class c in the cycle
    cycle = cycle.to(device).repeat(2)  # read past the end without a modulo

    slots = torch.arange(num_negatives, device=device)
    offsets = (_uniform((num_rows, 1), generator, device) * others).long()
    # 1..m places after the anchor's own class: (offset + j) mod m + 1, read from a small table
    # because an elementwise modulo over every (pair, slot) costs more than the lookup.
    step = _lookup(
        torch.arange(others + num_negatives, device=device) % others + 1, offsets + slots
    )
    classes = _lookup(cycle, _lookup(place, _lookup(class_of, anchors)).unsqueeze(1) + step)
    sizes = _lookup(counts, classes)
    distinct = min(num_negatives, others)
    starts = (_uniform((num_rows, distinct), generator, device) * sizes[:, :distinct]).long()
    if num_negatives <= others:  # every slot has its own class: nothing to wrap or leave out
        negatives = _lookup(by_class, _lookup(first, classes) + starts)
        return negatives, torch.ones_like(classes, dtype=torch.bool)
    lap = slots // others  # slot j has the class of slot j mod m: take the lap-th next member
    members = (starts.index_select(1, slots % others) + lap) % sizes
    return _lookup(by_class, _lookup(first, classes) + members), lap < sizes


def _lookup(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    # table[index] for a 1-D table; index_select is several times faster than advanced indexing
    # on the CPU (forward and backward), which dominated this loss's time at batch 256.
    return table.index_select(0, index.reshape(-1)).view(index.shape)


def _where(generator: torch.Generator | None, device: torch.device) -> torch.device:
    # Draw on the generator's own device (a CPU generator cannot fill a CUDA tensor).
    return generator.device if generator is not None else device


def _uniform(
    shape: tuple[int, int], generator: torch.Generator | None, device: torch.device
) -> torch.Tensor:
    return torch.rand(shape, generator=generator, device=_where(generator, device)).to(device)
