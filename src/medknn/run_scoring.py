"""Scoring one part of a run with its decision rule: chosen on the validation split when asked,
saved beside the run, applied with the run's test-time augmentation. Used when a run finishes
training and by ``medknn evaluate``; it needs no part of the trainer."""

from __future__ import annotations

import math
from dataclasses import asdict

import torch

from medknn.evaluation import (
    PartOutputs,
    evaluate_network,
    fit_decision_rule,
    with_embedding_quality,
)
from medknn.methods import MethodSpec
from medknn.prediction import KNNClassifier
from medknn.prediction.decision import DecisionRule
from medknn.runs import RunDir, TrainConfig
from medknn.runs.run_manifest import refresh_manifest
from medknn.runs.training_data import TrainingData

# The metrics of the method's plain rule kept beside those of its decision rule.
PLAIN_METRICS = ("accuracy", "mcr", "rs", "macro_f1", "auc", "ece")


def score_part(
    network: torch.nn.Module,
    spec: MethodSpec,
    prepared: TrainingData,
    knn: KNNClassifier,
    config: TrainConfig,
    run_dir: RunDir,
    part: str,
    *,
    device: torch.device | str,
    progress: bool,
    decide: bool,
    tta: str | None = None,
) -> tuple[dict, PartOutputs]:
    """Score ``part`` with the run's decision rule (first chosen on the validation split and
    saved as ``RUN/decision.json`` when ``decide``) and its test-time augmentation, or ``tta``.
    With a decision rule, ``metrics["plain"]`` holds the headline metrics of the method's plain
    rule without test-time augmentation."""
    decision = DecisionRule.load(run_dir.path)
    if decide:
        decision = fit_decision_rule(
            network, spec, prepared, knn, config, device=device, progress=progress
        )
        if decision is not None:
            decision.save(run_dir.path)
            refresh_manifest(run_dir, run_dir.decision)
    metrics, outputs = evaluate_network(
        network,
        spec,
        prepared,
        part,
        knn=knn,
        device=device,
        progress=progress,
        decision=decision,
        tta=tta or run_tta(config, decision),
    )
    with_embedding_quality(metrics, outputs, knn)
    if decision is not None:
        plain, _ = evaluate_network(network, spec, prepared, part, knn=knn, device=device)
        metrics["plain"] = {key: plain[key] for key in PLAIN_METRICS}
        metrics["decision"] = asdict(decision) | {"temperature": _finite(decision.temperature)}
    metrics["tta"] = tta or run_tta(config, decision)
    metrics["method"] = config.method
    metrics["seed"] = config.seed
    return metrics, outputs


def run_tta(config: TrainConfig, decision: DecisionRule | None) -> str:
    """The test-time augmentation a run scores with: its decision rule's, else its config's
    (``auto`` without a rule to have chosen: none)."""
    if decision is not None:
        return decision.tta
    return "none" if config.tta == "auto" else config.tta


def _finite(value: float) -> float | None:
    return None if math.isinf(value) else value
