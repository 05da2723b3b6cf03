"""CE + metric-loss methods of the BSTriplet paper (Huang et al. 2021) and its baselines.

All three put the softmax classifier and the metric loss on the same feature, the backbone's
pooled output (the paper's embedding), and predict with the softmax, as the paper does. The
batch sampler is plain shuffling ("RS") unless ``sampler: cluster`` ("DM", §2.3) is set.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from medknn.methods.registry import (
    MethodOption,
    ObjectiveContext,
    register_method,
    softmax_method,
)

# The losses and objectives import torch: each factory imports them when a run builds its
# objective, so that listing or looking up methods stays fast (`medknn methods`).
if TYPE_CHECKING:
    from medknn.methods.objectives import CrossEntropyPlusMetricObjective, Objective

SearchSpace = Callable[[Any], dict[str, Any]]
BSTRIPLET = (
    "Huang et al., Batch Similarity Based Triplet Loss Assembled into Light-Weighted "
    "Convolutional Neural Networks for Medical Image Classification, Sensors 2021"
)


def _ce_plus_bstriplet(context: ObjectiveContext) -> CrossEntropyPlusMetricObjective:
    from medknn.losses.bstriplet_loss import BSTripletLoss
    from medknn.methods.objectives import CrossEntropyPlusMetricObjective

    loss = BSTripletLoss(margin=context.option("bst_margin"), squared=context.option("squared"))
    return CrossEntropyPlusMetricObjective(
        loss, context.option("weight"), label_smoothing=context.label_smoothing
    )


def _ce_plus_triplet(context: ObjectiveContext) -> CrossEntropyPlusMetricObjective:
    from pytorch_metric_learning import distances, losses, miners

    from medknn.losses.mined_loss import MinedLoss
    from medknn.methods.objectives import CrossEntropyPlusMetricObjective

    # The paper's eq. 1: max(0, 1 - s+ + s-) on cosine similarities. Batch-hard mining gives
    # each anchor one positive and one negative, the "regular" triplet loss the paper contrasts
    # BSTriplet with, and needs no P×Q batches: anchors without a pair are skipped.
    similarity = distances.CosineSimilarity()
    loss = losses.TripletMarginLoss(margin=context.option("triplet_margin"), distance=similarity)
    return CrossEntropyPlusMetricObjective(
        MinedLoss(loss, miners.BatchHardMiner(distance=similarity)),
        context.option("weight"),
        label_smoothing=context.label_smoothing,
    )


def _ce_plus_lifted(context: ObjectiveContext) -> CrossEntropyPlusMetricObjective:
    from pytorch_metric_learning import losses

    from medknn.methods.objectives import CrossEntropyPlusMetricObjective

    # PML's default distance here is Euclidean on L2-normalised embeddings, so the margins are
    # scale-free like the other two losses.
    loss = losses.GeneralizedLiftedStructureLoss(
        neg_margin=context.option("neg_margin"), pos_margin=context.option("pos_margin")
    )
    return CrossEntropyPlusMetricObjective(
        loss, context.option("weight"), label_smoothing=context.label_smoothing
    )


WEIGHT = MethodOption("weight", 1.0, "λ, the metric term's weight beside cross entropy", low=0.0)


def _metric_term_space(method: str, margin: str, low: float, high: float) -> SearchSpace:
    """`medknn tune`: the metric term's weight λ and its margin (method options)."""

    def space(trial: Any) -> dict[str, Any]:
        return {
            "method_options": {
                "weight": trial.suggest_float(f"{method}/weight", 0.1, 3.0, log=True),
                margin: trial.suggest_float(f"{method}/{margin}", low, high),
            }
        }

    return space


def _register(
    name: str,
    summary: str,
    reference: str,
    build: Callable[[ObjectiveContext], Objective],
    options: tuple[MethodOption, ...],
    search_space: SearchSpace,
) -> None:
    # The paper's set-up: the metric term and the softmax share the pooled backbone feature.
    register_method(
        softmax_method(
            name, summary, reference, build, options=(WEIGHT, *options), search_space=search_space
        )
    )


_register(
    "ce+bst",
    "Cross entropy + λ·BSTriplet on the pooled feature (options: weight, bst_margin, squared); "
    "softmax prediction. sampler: cluster gives the paper's DM batches.",
    BSTRIPLET,
    _ce_plus_bstriplet,
    (
        MethodOption("bst_margin", 0.9, "BSTriplet's margin", low=0.0, high=1.0),
        MethodOption(
            "squared",
            True,
            "squared batch similarities, as the paper",
            "bool",
            expects="true (the paper's squared similarities) or false (linear)",
        ),
    ),
    _metric_term_space("ce+bst", "bst_margin", 0.5, 1.0),
)
_register(
    "ce+triplet",
    "Cross entropy + λ·cosine triplet loss (margin 1, batch-hard mining) on the pooled feature "
    "(options: weight, triplet_margin); softmax prediction.",
    "the BSTriplet paper's CE+Triplet baseline (eq. 1)",
    _ce_plus_triplet,
    (MethodOption("triplet_margin", 1.0, "the margin on cosine similarities"),),
    _metric_term_space("ce+triplet", "triplet_margin", 0.2, 1.5),
)
_register(
    "ce+lifted",
    "Cross entropy + λ·generalized lifted structure loss on the pooled feature (options: "
    "weight, pos_margin, neg_margin); softmax prediction.",
    "the BSTriplet paper's CE+LS baseline; Hermans et al. 2017's generalized lifted structure",
    _ce_plus_lifted,
    (
        MethodOption("pos_margin", 0.0, "the positive pairs' margin"),
        MethodOption("neg_margin", 1.0, "the negative pairs' margin"),
    ),
    _metric_term_space("ce+lifted", "neg_margin", 0.5, 1.5),
)
