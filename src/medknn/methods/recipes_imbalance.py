"""Methods against class imbalance: supervised contrastive learning (Marrakchi et al. 2021) and
the baselines its paper compares with (focal loss, LDAM, oversampling).

``supcon`` trains in two stages. Stage 1 learns the backbone with the supervised contrastive
loss (eq. 1) on an MLP projection head, two augmented views per image, plain shuffled batches.
Stage 2, the method ``linear-probe``, drops the head, freezes the backbone and trains a linear
softmax classifier on its pooled feature with class-balanced batches; its run is the result.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

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
    from medknn.methods.objectives import (
        CrossEntropyObjective,
        LogitLossObjective,
        MetricLossObjective,
    )

MARRAKCHI = (
    "Marrakchi, Makansi, Brox, Fighting Class Imbalance with Contrastive Learning, MICCAI 2021"
)
FOCAL = "Lin, Goyal, Girshick, He, Dollár, Focal Loss for Dense Object Detection, ICCV 2017"
LDAM = (
    "Cao, Wei, Gaidon, Arechiga, Ma, Learning Imbalanced Datasets with Label-Distribution-Aware "
    "Margin Loss, NeurIPS 2019"
)
FOCAL_GAMMA = 2.0  # Lin et al.'s best value; Marrakchi et al. do not give theirs
SUPCON_TEMPERATURE = 0.1  # the paper's default (its Table 3 finds 0.05 best without resampling)
DRW_SHARE = 0.8  # LDAM-DRW re-weights after 160 of 200 epochs (Cao et al., CIFAR)
LDAM_SCALE = 30.0  # s of Cao et al., on the logits of the cosine classifier


def _cross_entropy(context: ObjectiveContext) -> CrossEntropyObjective:
    from medknn.methods.objectives import CrossEntropyObjective

    return CrossEntropyObjective(label_smoothing=context.label_smoothing)


def _focal(context: ObjectiveContext) -> LogitLossObjective:
    from medknn.losses import FocalLoss
    from medknn.methods.objectives import LogitLossObjective, inverse_frequency_weights

    balanced = context.option("balanced")
    weight = inverse_frequency_weights(context.class_counts) if balanced else None
    return LogitLossObjective(FocalLoss(context.option("gamma"), weight))


def _ldam(context: ObjectiveContext) -> LogitLossObjective:
    from medknn.losses import LDAMLoss, drw_weights
    from medknn.methods.objectives import LogitLossObjective

    loss = LDAMLoss(
        context.class_counts,
        max_margin=context.option("max_margin"),
        scale=context.option("scale"),
    )
    start = context.option("drw_epoch")
    if start == "auto":
        start = None if context.epochs is None else round(DRW_SHARE * context.epochs)
    if start is None:
        return LogitLossObjective(loss)
    return LogitLossObjective(
        loss, deferred_weights=drw_weights(context.class_counts), reweight_from=start
    )


def _supcon(context: ObjectiveContext) -> MetricLossObjective:
    from medknn.losses import SupConLoss
    from medknn.methods.objectives import MetricLossObjective

    return MetricLossObjective(SupConLoss(temperature=context.option("temperature")))


FOCAL_OPTIONS = (
    MethodOption("gamma", FOCAL_GAMMA, "the focusing parameter γ", low=0.0),
    MethodOption(
        "balanced",
        False,
        "class weights n / (C·n_c) as the loss's alpha",
        "bool",
        expects="true (class weights n / (C·n_c) as the focal loss's alpha) or false (none, "
        "the default)",
    ),
)
LDAM_OPTIONS = (
    MethodOption("max_margin", 0.5, "the largest class margin (the rarest class's)", low=0.0),
    MethodOption(
        "scale", LDAM_SCALE, "s, the cosine classifier's logit scale", low=0.0, low_open=True
    ),
    MethodOption(
        "drw_epoch",
        "auto",
        "epochs before deferred re-weighting starts; null: never",
        "integer",
        0,
        choices=("auto", None),
        expects="the number of epochs trained before re-weighting starts (a whole number >= 0), "
        f"null (no re-weighting) or 'auto' ({DRW_SHARE:.0%} of the epochs, as LDAM-DRW's 160 "
        "of 200)",
    ),
)
SUPCON_OPTIONS = (
    MethodOption(
        "temperature",
        SUPCON_TEMPERATURE,
        "the loss's temperature τ (the paper tries 0.01 to 1.0)",
        low=0.0,
        low_open=True,
    ),
)


# Search spaces of `medknn tune` (options named "<method>/<option>").


def _focal_space(trial: Any) -> dict[str, Any]:
    return {
        "method_options": {
            "gamma": trial.suggest_float("focal/gamma", 0.5, 5.0),
            "balanced": trial.suggest_categorical("focal/balanced", [False, True]),
        }
    }


def _ldam_space(trial: Any) -> dict[str, Any]:
    return {"method_options": {"max_margin": trial.suggest_float("ldam/max_margin", 0.1, 1.0)}}


def _supcon_space(method: str, trial: Any) -> dict[str, Any]:
    temperature = trial.suggest_float(f"{method}/temperature", 0.03, 0.5, log=True)
    return {"method_options": {"temperature": temperature}}


def _register_supcon(name: str, resample: str, batches: str) -> None:
    # Shuffled batches keep the data's imbalance, which the loss is meant to fight (P×Q batches
    # would balance the classes, a resampling of their own); two views give every image a
    # positive, so no batch needs a class drawn twice.
    register_method(
        embedding_method(
            name,
            "Two stages: supervised contrastive loss (option temperature 0.1) on an MLP "
            f"projection of two augmented views, {batches}; then linear-probe.",
            MARRAKCHI,
            _supcon,
            options=SUPCON_OPTIONS,
            projection="mlp",
            views=2,
            augmentation="contrastive",
            sampler="shuffle",
            resample=resample,
            next_stage="linear-probe",
            not_on_vectors=(
                "it trains on two contrastive augmented views of each image, then a second "
                "stage (linear-probe) on the frozen backbone; a vector has neither"
            ),
            search_space=partial(_supcon_space, name),
        )
    )


register_method(
    softmax_method(
        "ce+resample",
        "Softmax classifier trained with cross entropy on the oversampled training set (copies "
        "of minority images until every class has the majority's count).",
        "the resampling baseline of " + MARRAKCHI,
        _cross_entropy,
        resample="oversample",
    )
)
register_method(
    softmax_method(
        "focal",
        "Softmax classifier trained with the focal loss -(1-p_t)^γ log p_t (options: gamma 2, "
        "balanced false).",
        FOCAL,
        _focal,
        options=FOCAL_OPTIONS,
        search_space=_focal_space,
    )
)
register_method(
    softmax_method(
        "ldam",
        "Cosine classifier trained with the LDAM loss, margins ∝ n_j^(-1/4), and deferred "
        "re-weighting (options: max_margin 0.5, scale 30, drw_epoch auto = 80 % of the epochs).",
        LDAM,
        _ldam,
        options=LDAM_OPTIONS,
        classifier_type="cosine",
        classifier_scale_option="scale",
        search_space=_ldam_space,
    )
)

_register_supcon("supcon", "none", "shuffled batches")
_register_supcon("supcon+resample", "oversample", "the oversampled training set")
register_method(
    softmax_method(
        "linear-probe",
        "Stage 2 of supcon: a linear softmax classifier on the frozen backbone of a stage-1 run "
        "(--init-from RUN/stage1), cross entropy, class-balanced batches.",
        MARRAKCHI,
        _cross_entropy,
        requires_init_from=True,
        init_from_methods=("supcon", "supcon+resample"),
        not_on_vectors="it is supcon's second stage, on the frozen backbone of an image run",
        freeze_backbone=True,
        sampler="balanced",
    )
)
register_method(
    softmax_method(
        "linear-imagenet",
        "A linear softmax classifier on the frozen ImageNet backbone (no stage 1), cross entropy, "
        "class-balanced batches: supcon's stage 2 without its contrastive stage, the control "
        "that separates the contrastive features from the balanced batches.",
        "the control of " + MARRAKCHI,
        _cross_entropy,
        freeze_backbone=True,
        sampler="balanced",
    )
)
