"""Built-in methods: Deep kNN (Zhuang et al. 2020) and the baselines its paper compares with."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from medknn.errors import ConfigError
from medknn.methods.registry import (
    MethodOption,
    ObjectiveContext,
    embedding_method,
    register_method,
    softmax_method,
)

# The losses and objectives import torch: each factory imports them when a run builds its
# objective, so that listing or looking up methods stays fast (`medknn methods`).
if TYPE_CHECKING:
    from medknn.methods.objectives import CrossEntropyObjective, MetricLossObjective, Objective

DEEP_KNN = "Zhuang et al., Deep kNN for Medical Image Classification, MICCAI 2020"
# Where Deep kNN searches each anchor's neighbours: the mini-batch (the paper's choice) or an
# embedding bank of the whole training set refreshed every epoch (method_options neighbours).
NEIGHBOUR_SEARCHES = ("batch", "bank")


def _deep_knn(context: ObjectiveContext) -> Objective:
    from medknn.losses.deep_knn_loss import DeepKNNLoss
    from medknn.methods.embedding_bank import EmbeddingBank
    from medknn.methods.objectives import MemoryBankObjective, MetricLossObjective

    loss = DeepKNNLoss(
        num_positives=context.option("num_positives"),
        num_negatives=context.option("num_negatives"),
        margin=context.option("margin"),
    )
    if context.option("neighbours") == "batch":
        return MetricLossObjective(loss, stat_attributes=context.stats)
    if context.training_set is None:
        raise ConfigError(
            "Method 'deepknn' with neighbours 'bank' embeds the whole training set every epoch; "
            "that needs a run (medknn train / medknn.train, or the feature benchmark), not a "
            "bare objective. Use neighbours 'batch' here."
        )
    return MemoryBankObjective(
        loss, EmbeddingBank(context.training_set), stat_attributes=context.stats
    )


def _batch_hard_triplet(context: ObjectiveContext) -> MetricLossObjective:
    from pytorch_metric_learning import distances, losses, miners

    from medknn.losses.mined_loss import MinedLoss
    from medknn.methods.objectives import MetricLossObjective

    # Same distance as Deep kNN (L2 on unit vectors) so that the margin means the same thing.
    distance = distances.LpDistance(normalize_embeddings=True, p=2, power=1)
    miner = miners.BatchHardMiner(distance=distance)
    loss = losses.TripletMarginLoss(margin=context.option("margin"), distance=distance)
    return MetricLossObjective(MinedLoss(loss, miner))


def _cross_entropy(context: ObjectiveContext) -> CrossEntropyObjective:
    from medknn.methods.objectives import CrossEntropyObjective

    return CrossEntropyObjective(label_smoothing=context.label_smoothing)


def _weighted_cross_entropy(context: ObjectiveContext) -> CrossEntropyObjective:
    from medknn.methods.objectives import CrossEntropyObjective, inverse_frequency_weights

    return CrossEntropyObjective(
        inverse_frequency_weights(context.class_counts), label_smoothing=context.label_smoothing
    )


# The Deep kNN paper's K, M and margin; also top-level options (--k, --m, --margin).
POSITIVES = MethodOption(
    "num_positives", 5, "K: nearest same-class neighbours per anchor", "integer", 1, 1000
)
NEGATIVES = MethodOption(
    "num_negatives", 5, "M: nearest other-class neighbours per anchor", "integer", 1, 1000
)
MARGIN = MethodOption("margin", 0.2, "the triplet margin on L2 distances", low=0.0)
NEIGHBOURS = MethodOption(
    "neighbours",
    "batch",
    "where neighbours are searched: the mini-batch or the whole training set's embedding bank",
    "choice",
    choices=NEIGHBOUR_SEARCHES,
    expects="'batch' (in the mini-batch, the default) or 'bank' (in the whole training set)",
)
DEEP_KNN_OPTIONS = (NEIGHBOURS, POSITIVES, NEGATIVES, MARGIN)
DEEP_KNN_STATS = ("num_skipped_anchors", "num_triplets")
# Search spaces of `medknn tune`: each takes an Optuna trial (anything with its suggest_*
# methods) and returns config overrides; parameters are named "<method>/<option>".


def _deep_knn_space(trial: Any) -> dict[str, Any]:
    return {
        "num_positives": trial.suggest_int("deepknn/num_positives", 1, 10),
        "num_negatives": trial.suggest_int("deepknn/num_negatives", 1, 10),
        "margin": trial.suggest_float("deepknn/margin", 0.05, 0.5, log=True),
    }


def _triplet_space(trial: Any) -> dict[str, Any]:
    return {"margin": trial.suggest_float("triplet/margin", 0.05, 0.5, log=True)}


def _label_smoothing_space(method: str) -> Callable[[Any], dict[str, Any]]:
    def space(trial: Any) -> dict[str, Any]:
        return {"label_smoothing": trial.suggest_float(f"{method}/label_smoothing", 0.0, 0.2)}

    return space


register_method(
    embedding_method(
        "deepknn",
        "Deep kNN triplet loss: K nearest same-class × M nearest other-class neighbours "
        "mined in P×Q stratified batches (method_options neighbours: bank searches the whole "
        "training set); kNN prediction.",
        DEEP_KNN,
        _deep_knn,
        options=DEEP_KNN_OPTIONS,
        stats=DEEP_KNN_STATS,
        search_space=_deep_knn_space,
    )
)
register_method(
    embedding_method(
        "deepknn-star",
        "deep kNN*: Deep kNN fine-tuning of a CE-trained run's backbone (--init-from RUN).",
        DEEP_KNN,
        _deep_knn,
        options=DEEP_KNN_OPTIONS,
        stats=DEEP_KNN_STATS,
        requires_init_from=True,
        init_from_methods=("weighted-ce", "ce"),
        not_on_vectors="it fine-tunes the backbone of a CE-trained image run (--init-from)",
    )
)
register_method(
    embedding_method(
        "triplet",
        "Traditional triplet loss with batch-hard mining (Hermans et al. 2017); kNN prediction.",
        "Hermans, Beyer, Leibe, In Defense of the Triplet Loss, 2017",
        _batch_hard_triplet,
        options=(MARGIN,),
        search_space=_triplet_space,
    )
)
register_method(
    softmax_method(
        "ce",
        "Softmax classifier trained with cross entropy.",
        "standard baseline",
        _cross_entropy,
        search_space=_label_smoothing_space("ce"),
    )
)
register_method(
    softmax_method(
        "weighted-ce",
        "Softmax classifier with class-weighted cross entropy (weights n / (C·n_c)).",
        "the Deep kNN paper's Weighted-CE baseline",
        _weighted_cross_entropy,
        search_space=_label_smoothing_space("weighted-ce"),
    )
)
register_method(
    embedding_method(
        "knn-imagenet",
        "No training: kNN on frozen (ImageNet) backbone features, L2-normalised.",
        "the Deep kNN paper's kNN (ResNet50) baseline",
        None,
        embedding="pooled",
        sampler="shuffle",
        not_on_vectors="it does not train; kNN on the feature vectors as given is knn-basic",
    )
)
