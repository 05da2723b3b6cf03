"""Build a method's network from a config, including a start from another run's backbone
(deep kNN* from a CE run, the linear probe from a SupCon stage-1 run)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from medknn.errors import ConfigError
from medknn.io import load_tensors
from medknn.methods.embedding_bank import TrainingSetEmbedder
from medknn.methods.objectives import Objective
from medknn.methods.registry import MethodSpec, ObjectiveContext, create_objective
from medknn.models import EmbeddingNetwork, create_network
from medknn.models.weights import LITE0
from medknn.runs.config import TrainConfig
from medknn.runs.run_dir import RunDir


def uses_pretrained(config: TrainConfig) -> bool:
    """ImageNet weights by default where they ship offline, unless a local file is given."""
    if config.pretrained is not None:
        return config.pretrained
    return config.weights is None and config.backbone.partition(".")[0] == LITE0


def starts_pretrained(config: TrainConfig, spec: MethodSpec) -> bool:
    """Whether the backbone starts from learned weights (ImageNet, a file, another run)."""
    return uses_pretrained(config) or config.weights is not None or spec.requires_init_from


def build_network(
    config: TrainConfig,
    spec: MethodSpec,
    num_classes: int,
    *,
    load_weights: bool = True,
    in_features: int | None = None,
) -> EmbeddingNetwork:
    """The network for ``spec``: the method's head (projected or pooled, linear or MLP
    projection, activation, normalisation) and classifier (linear or cosine, its scale) on the
    config's backbone; ``in_features`` for feature vectors (the ``mlp`` backbone).
    ``load_weights=False`` skips ImageNet/--weights/--init-from (used when a run's own weights
    are loaded right after)."""
    network = create_network(
        config.backbone,
        embedding_dim=config.embedding_dim if spec.embedding == "projected" else None,
        normalize=spec.normalize_embedding,
        num_classes=num_classes if spec.classifier else None,
        in_features=in_features,
        head_activation=spec.head_activation,
        projection=spec.projection,
        classifier_type=spec.classifier_type,
        classifier_scale=spec.classifier_scale(config.method_options or {}),
        **_backbone_weights(config, load_weights),
    )
    if spec.requires_init_from and load_weights:
        if not config.init_from:
            raise ConfigError(
                f"Method {spec.name!r} starts from a trained run's backbone: pass --init-from RUN "
                f"({spec.init_from_hint} with the same backbone)."
            )
        load_backbone_from_run(network, Path(config.init_from), config)
    if spec.freeze_backbone:
        network.freeze_backbone()
    if in_features is None and uses_channels_last(config):
        network.use_channels_last()
    return network


def uses_channels_last(config: TrainConfig) -> bool:
    """``memory_format: auto`` is channels-last for every image backbone: measured 1.5x
    faster for Lite0 at 64 px on CPU (docs/benchmarks/cpu_speed.md); vectors have no layout."""
    if config.memory_format == "auto":
        return config.backbone != "mlp"
    return config.memory_format == "channels_last"


def build_feature_extractor(config: TrainConfig) -> EmbeddingNetwork:
    """The config's backbone with the weights a run would start from, its pooled features as
    they are (no head, no normalisation, no classifier): what ``medknn features`` extracts."""
    return create_network(
        config.backbone, embedding_dim=None, normalize=False, **_backbone_weights(config, True)
    )


def _backbone_weights(config: TrainConfig, load_weights: bool) -> dict:
    """The backbone's starting weights (ImageNet, a file) and its small-input adaptation."""
    return dict(
        pretrained=load_weights and uses_pretrained(config),
        weights=config.weights if load_weights else None,
        small_input=config.resolved_small_input,
    )


def load_backbone_from_run(network: EmbeddingNetwork, run_path: Path, config: TrainConfig) -> None:
    """Copy a finished run's backbone into ``network``; its classifier and head are left behind."""
    source = RunDir(run_path)
    if not source.model.exists():
        raise ConfigError(
            f"--init-from {run_path}: no {source.model.name} there; finish training that run first."
        )
    if source.config.exists():
        other = TrainConfig.load_saved(source.config)
        if (other.backbone, other.resolved_small_input) != (
            config.backbone,
            config.resolved_small_input,
        ):
            raise ConfigError(
                f"--init-from {run_path} used backbone {other.backbone!r} "
                f"(small_input={other.resolved_small_input}); this run asks for "
                f"{config.backbone!r} (small_input={config.resolved_small_input}). Make them match."
            )
    state = load_tensors(source.model)
    backbone_state = {
        k[len("backbone.") :]: v for k, v in state.items() if k.startswith("backbone.")
    }
    with torch.no_grad():
        network.backbone.load_state_dict(backbone_state)


def build_objective(
    config: TrainConfig,
    class_counts: np.ndarray,
    *,
    training_set: TrainingSetEmbedder | None = None,
) -> Objective:
    """The objective of ``config.method`` with the config's hyper-parameters and options;
    ``training_set`` for objectives that search neighbours in the whole training set."""
    return create_objective(
        config.method,
        ObjectiveContext(
            class_counts=class_counts,
            num_positives=config.num_positives,
            num_negatives=config.num_negatives,
            margin=config.margin,
            options=config.method_options,
            epochs=config.epochs,
            training_set=training_set,
            label_smoothing=config.label_smoothing,
        ),
    )
