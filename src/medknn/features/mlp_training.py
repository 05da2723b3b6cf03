"""The Deep kNN paper's MLP on feature vectors, trained and scored by the image pipeline's own
steps: the same network builder, batch sampler (with resampling), objective, validator, trainer
and kNN settings, with the feature vectors as the run's ``TrainingData``."""

from __future__ import annotations

import torch
from rich.console import Console

from medknn.evaluation import evaluate_network, fit_knn_on_training_set
from medknn.features.parts import FeatureParts
from medknn.io import load_tensors
from medknn.methods import MethodSpec
from medknn.models import EmbeddingNetwork
from medknn.prediction import KNNClassifier
from medknn.run_training import RunJob, train_network
from medknn.runs import RunDir, TrainConfig
from medknn.runs.build import build_network


def mlp_config(config: TrainConfig) -> TrainConfig:
    """``config`` with the MLP in the backbone's place, whatever image backbone it names (the
    run's ``config.yaml`` keeps what it was given)."""
    return config.replace(backbone="mlp")


def build_mlp(spec: MethodSpec, parts: FeatureParts, config: TrainConfig) -> EmbeddingNetwork:
    """``spec``'s network with the 3-layer BN+ReLU MLP as its backbone (``build_network``)."""
    return build_network(mlp_config(config), spec, len(parts.class_names), in_features=parts.dim)


def train_mlp(
    spec: MethodSpec,
    parts: FeatureParts,
    config: TrainConfig,
    run_dir: RunDir,
    *,
    device: torch.device,
    progress: bool = True,
    console: Console | None = None,
) -> EmbeddingNetwork:
    """Train the MLP with ``spec``'s objective and batches (an interrupted run resumes); return
    it with the weights of the best validation MCR."""
    config = mlp_config(config)
    network = build_mlp(spec, parts, config)
    console = console or Console(stderr=True, quiet=not progress)
    train_network(RunJob(config, spec, parts, network, run_dir, device, progress, console))
    network.load_state_dict(load_tensors(run_dir.model))
    return network


def score_test_part(
    network: EmbeddingNetwork,
    spec: MethodSpec,
    parts: FeatureParts,
    config: TrainConfig,
    device: torch.device,
) -> tuple[dict, KNNClassifier | None]:
    """``(metrics, the kNN index or None)`` of the test part under the method's plain rule; kNN
    methods index the embedded training part with the run's kNN settings."""
    knn = None
    if spec.prediction == "knn":
        knn = fit_knn_on_training_set(network, parts, config.knn, device=device)
    metrics, _ = evaluate_network(network, spec, parts, "test", knn=knn, device=device)
    return metrics, knn
