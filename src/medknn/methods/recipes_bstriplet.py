"""CE + metric-loss methods of the BSTriplet paper (Huang et al. 2021) and its baselines.

All three put the softmax classifier and the metric loss on the same feature, the backbone's
pooled output (the paper's embedding), and predict with the softmax, as the paper does. The
batch sampler is plain shuffling ("RS") unless ``sampler: cluster`` ("DM", §2.3) is set.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from pytorch_metric_learning import distances, losses, miners

from medknn.errors import ConfigError
from medknn.losses.bstriplet_loss import BSTripletLoss
from medknn.losses.mined_loss import MinedLoss
from medknn.methods.objectives import CrossEntropyPlusMetricObjective, Objective
from medknn.methods.registry import ObjectiveContext, register_method, softmax_method

BSTRIPLET = (
    "Huang et al., Batch Similarity Based Triplet Loss Assembled into Light-Weighted "
    "Convolutional Neural Networks for Medical Image Classification, Sensors 2021"
)


def _number(context: ObjectiveContext, method: str, name: str, default: float) -> float:
    value: Any = context.option(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(
            f"Method {method!r}: method_options {name}={value!r} must be a number "
            f"(default {default})."
        )
    return float(value)


def _ce_plus_bstriplet(context: ObjectiveContext) -> CrossEntropyPlusMetricObjective:
    context.check_options("ce+bst", ("weight", "bst_margin", "squared"))
    squared = context.option("squared", True)
    if not isinstance(squared, bool):
        raise ConfigError(
            f"Method 'ce+bst': method_options squared={squared!r} must be true (the paper's "
            "squared similarities) or false (linear)."
        )
    loss = BSTripletLoss(margin=_number(context, "ce+bst", "bst_margin", 0.9), squared=squared)
    return CrossEntropyPlusMetricObjective(loss, _number(context, "ce+bst", "weight", 1.0))


def _ce_plus_triplet(context: ObjectiveContext) -> CrossEntropyPlusMetricObjective:
    context.check_options("ce+triplet", ("weight", "triplet_margin"))
    # The paper's eq. 1: max(0, 1 - s+ + s-) on cosine similarities. Batch-hard mining gives
    # each anchor one positive and one negative, the "regular" triplet loss the paper contrasts
    # BSTriplet with, and needs no P×Q batches: anchors without a pair are skipped.
    similarity = distances.CosineSimilarity()
    loss = losses.TripletMarginLoss(
        margin=_number(context, "ce+triplet", "triplet_margin", 1.0), distance=similarity
    )
    return CrossEntropyPlusMetricObjective(
        MinedLoss(loss, miners.BatchHardMiner(distance=similarity)),
        _number(context, "ce+triplet", "weight", 1.0),
    )


def _ce_plus_lifted(context: ObjectiveContext) -> CrossEntropyPlusMetricObjective:
    context.check_options("ce+lifted", ("weight", "pos_margin", "neg_margin"))
    # PML's default distance here is Euclidean on L2-normalised embeddings, so the margins are
    # scale-free like the other two losses.
    loss = losses.GeneralizedLiftedStructureLoss(
        neg_margin=_number(context, "ce+lifted", "neg_margin", 1.0),
        pos_margin=_number(context, "ce+lifted", "pos_margin", 0.0),
    )
    return CrossEntropyPlusMetricObjective(loss, _number(context, "ce+lifted", "weight", 1.0))


def _register(
    name: str, summary: str, reference: str, build: Callable[[ObjectiveContext], Objective]
) -> None:
    # The paper's set-up: the metric term and the softmax share the pooled backbone feature.
    register_method(softmax_method(name, summary, reference, build))


_register(
    "ce+bst",
    "Cross entropy + λ·BSTriplet on the pooled feature (options: weight, bst_margin, squared); "
    "softmax prediction. sampler: cluster gives the paper's DM batches.",
    BSTRIPLET,
    _ce_plus_bstriplet,
)
_register(
    "ce+triplet",
    "Cross entropy + λ·cosine triplet loss (margin 1, batch-hard mining) on the pooled feature "
    "(options: weight, triplet_margin); softmax prediction.",
    "the BSTriplet paper's CE+Triplet baseline (eq. 1)",
    _ce_plus_triplet,
)
_register(
    "ce+lifted",
    "Cross entropy + λ·generalized lifted structure loss on the pooled feature (options: "
    "weight, pos_margin, neg_margin); softmax prediction.",
    "the BSTriplet paper's CE+LS baseline; Hermans et al. 2017's generalized lifted structure",
    _ce_plus_lifted,
)
