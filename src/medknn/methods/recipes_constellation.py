"""The constellation loss (Medela & Picon 2020) and the pair/tuple losses its paper compares with.

Every method here uses the paper's embedding head, a 128-unit layer with a sigmoid, then L2
normalisation; P×Q stratified batches (``samples_per_class`` is the paper's ``spc``); and kNN
prediction. The paper's "ImageNet" baseline, a softmax network fine-tuned on the data and read
through its embeddings, is the ``ce`` method (its ``knn_bac`` embedding-quality metric); frozen,
not fine-tuned, ImageNet features are ``knn-imagenet``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from medknn.methods.registry import (
    MethodOption,
    ObjectiveContext,
    embedding_method,
    register_method,
)

# The losses and objectives import torch: each factory imports them when a run builds its
# objective, so that listing or looking up methods stays fast (`medknn methods`).
if TYPE_CHECKING:
    from medknn.methods.objectives import MetricLossObjective

CONSTELLATION = (
    "Medela & Picon, Constellation Loss: Improving the Efficiency of Deep Metric Learning Loss "
    "Functions for the Optimal Embedding of Histopathological Images, J Pathol Inform 2020"
)
CONTRASTIVE_MARGIN = 1.0  # eq. 1: "m is the margin, usually set to 1"


def _contrastive(context: ObjectiveContext) -> MetricLossObjective:
    from pytorch_metric_learning import distances, losses, reducers

    from medknn.methods.objectives import MetricLossObjective

    # Eq. 1 averages over all pairs, zero terms included: MeanReducer, not PML's non-zero mean.
    loss = losses.ContrastiveLoss(
        pos_margin=0.0,
        neg_margin=CONTRASTIVE_MARGIN,
        distance=distances.LpDistance(normalize_embeddings=True, p=2, power=1),
        reducer=reducers.MeanReducer(),
    )
    return MetricLossObjective(loss)


def _hard_triplet(context: ObjectiveContext) -> MetricLossObjective:
    from pytorch_metric_learning import distances, losses, miners, reducers

    from medknn.losses.mined_loss import MinedLoss
    from medknn.methods.objectives import MetricLossObjective

    # Eq. 2 compares squared distances; "hard-triplet mining" keeps every triplet with a positive
    # loss (hard and semi-hard), which is PML's TripletMarginMiner(type_of_triplets="all").
    distance = distances.LpDistance(normalize_embeddings=True, p=2, power=2)
    margin = context.option("margin")
    miner = miners.TripletMarginMiner(margin=margin, type_of_triplets="all", distance=distance)
    loss = losses.TripletMarginLoss(
        margin=margin, distance=distance, reducer=reducers.MeanReducer()
    )
    return MetricLossObjective(MinedLoss(loss, miner))


def _npairs(context: ObjectiveContext) -> MetricLossObjective:
    from pytorch_metric_learning import losses

    from medknn.methods.objectives import MetricLossObjective

    # "No need for L2 normalization [...] as it already incorporates [it] in the loss": PML's
    # N-pairs normalises inside (cosine similarities), so the head's own L2 norm changes nothing
    # in training and gives kNN the geometry that was trained. Plain dot products of sigmoid
    # outputs (up to 128) diverged at lr 1e-3 on HAM10000 (docs/constellation.md).
    loss = losses.NPairsLoss()
    return MetricLossObjective(loss)


def _npairs_all(context: ObjectiveContext) -> MetricLossObjective:
    # Issue 19: N-pairs given the constellation loss's pairs and negatives. Same head and
    # similarity (dot product of L2-normalised embeddings) as `npairs` and `constellation`.
    from medknn.losses.multi_pair_npairs_loss import MultiPairNPairsLoss
    from medknn.methods.objectives import MetricLossObjective

    return MetricLossObjective(MultiPairNPairsLoss(), stat_attributes=context.stats)


def _constellation(context: ObjectiveContext) -> MetricLossObjective:
    # K is the option num_negatives (also top-level: CLI --m / --set num_negatives=K).
    from medknn.losses.constellation_loss import ConstellationLoss
    from medknn.methods.objectives import MetricLossObjective

    loss = ConstellationLoss(num_negatives=context.option("num_negatives"))
    return MetricLossObjective(loss, stat_attributes=context.stats)


def _hard_triplet_space(trial: Any) -> dict[str, Any]:
    """`medknn tune`: the margin on squared distances."""
    return {"margin": trial.suggest_float("triplet-hard/margin", 0.05, 0.5, log=True)}


def _register(
    name: str,
    summary: str,
    build: Callable[[ObjectiveContext], MetricLossObjective],
    reference: str,
    **declared: Any,
) -> None:
    # The constellation paper's head: 128 sigmoid units, then L2 normalisation. The margins of
    # contrastive loss and the constellation loss's K are the paper's: no search space of their own.
    register_method(
        embedding_method(name, summary, reference, build, head_activation="sigmoid", **declared)
    )


_register(
    "contrastive",
    "Contrastive loss (Chopra et al. 2005; constellation paper eq. 1): every same-class pair "
    "pulled together, every other pair pushed beyond L2 distance 1; kNN prediction.",
    _contrastive,
    "Chopra, Hadsell, LeCun, CVPR 2005; as eq. 1 of " + CONSTELLATION,
)
_register(
    "triplet-hard",
    "Triplet loss on squared L2 distances over every margin-violating (hard or semi-hard) "
    "triplet of the batch (constellation paper eq. 2); kNN prediction.",
    _hard_triplet,
    "Schroff, Kalenichenko, Philbin, FaceNet, CVPR 2015; as eq. 2 of " + CONSTELLATION,
    options=(MethodOption("margin", 0.2, "the margin on squared L2 distances", low=0.0),),
    search_space=_hard_triplet_space,
)
_register(
    "npairs",
    "Multi-class N-pair loss (Sohn 2016; constellation paper eq. 3): one pair per class "
    "against the other classes' positives; kNN prediction.",
    _npairs,
    "Sohn, Improved Deep Metric Learning with Multi-class N-pair Loss, NeurIPS 2016; as eq. 3 "
    "of " + CONSTELLATION,
)
_register(
    "npairs-all",
    "Multi-class N-pair loss on every same-class pair of the batch (issue 19): each pair "
    "against one random member of every other class, the constellation loss's pairs and "
    "negatives with K = the number of other classes; kNN prediction.",
    _npairs_all,
    "Sohn, Improved Deep Metric Learning with Multi-class N-pair Loss, NeurIPS 2016; as eq. 3 "
    "of " + CONSTELLATION + ", on the constellation loss's pairs",
    stats=("num_pairs", "num_terms"),
)
_register(
    "constellation",
    "Constellation loss (Medela & Picon 2020, eq. 4): every same-class pair against K "
    "negatives from distinct other classes (option num_negatives = K); kNN prediction.",
    _constellation,
    CONSTELLATION,
    options=(
        MethodOption(
            "num_negatives",
            5,
            "K: negatives per pair, from distinct other classes (CLI --m)",
            "integer",
            1,
            1000,
        ),
    ),
    stats=("num_pairs", "num_terms"),
)
