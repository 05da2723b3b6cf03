"""``medknn ensemble``: several finished runs of one split scored as one model. The members'
probabilities (their own decision rules and test-time augmentation applied) are averaged; the
ensemble's own logit adjustment is chosen on the validation split, as for a single run."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from medknn.evaluation import PartOutputs, classification_metrics, evaluate_network
from medknn.evaluation.decision_choice import choose_softmax_rule
from medknn.io import atomic_write_json
from medknn.prediction.ensemble_run import EnsembleRun
from medknn.prediction.trained_run import TrainedRun
from medknn.training.device import resolve_device
from medknn.training.prepare import Part, PreparedData, prepare_data

ENSEMBLE_METHOD = "ensemble"


def create_ensemble(
    runs: list[str | Path], out: str | Path, *, progress: bool = True
) -> tuple[EnsembleRun, dict]:
    """Write the ensemble of ``runs`` to ``out`` (``ensemble.json``, ``decision.json``, test
    ``metrics.json`` and ``test_outputs.npz``, ``status.json``); return it and its metrics."""
    started = time.perf_counter()
    ensemble = EnsembleRun.create(runs, out)
    metrics = evaluate_ensemble(ensemble, part="test", decide=True, progress=progress)
    atomic_write_json(
        ensemble.path / "status.json",
        {"status": "complete", "wall_seconds": round(time.perf_counter() - started, 1)},
    )
    return ensemble, metrics


def evaluate_ensemble(
    ensemble: EnsembleRun, *, part: Part = "test", decide: bool = False, progress: bool = True
) -> dict:
    """Score ``part`` with the mean of the members' probabilities; ``decide=True`` first
    chooses the ensemble's decision rule on the validation split (``decision.json``)."""
    if decide:
        val_labels, val_proba, counts = _member_probabilities(ensemble, "val", progress)
        if len(val_labels):
            member = ensemble.members[0].config
            ensemble.decision = choose_softmax_rule(
                np.log(np.clip(np.mean(val_proba, axis=0), 1e-12, None)),
                val_labels,
                counts,
                metric=member.decision_metric,
                min_specificity=member.min_specificity,
            )
            ensemble.decision.save(ensemble.path)
    labels, member_proba, counts = _member_probabilities(ensemble, part, progress)
    proba = ensemble.combine(member_proba)
    predicted = proba.argmax(axis=1)
    metrics = classification_metrics(
        labels, predicted, proba=proba, class_names=ensemble.class_names, train_counts=counts
    )
    member_labels = np.argmax(member_proba, axis=2)
    metrics["agreement"] = float((member_labels == predicted).mean())
    metrics["members"] = [str(run.path) for run in ensemble.members]
    metrics["method"] = ENSEMBLE_METHOD
    first = _prepared(ensemble.members[0], progress)
    indices = first.indices(part)
    PartOutputs(labels, predicted, proba, np.zeros((len(labels), 0), np.float32), indices).save(
        ensemble.path / f"{part}_outputs.npz"
    )
    if part == "test":
        atomic_write_json(ensemble.path / "metrics.json", metrics)
    return metrics


def _member_probabilities(
    ensemble: EnsembleRun, part: Part, progress: bool
) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """The part's labels, each member's (N, C) probabilities, the training class counts."""
    all_proba, labels, counts = [], None, None
    for run in ensemble.members:
        prepared = _prepared(run, progress)
        device = resolve_device(run.config.device)
        run.network.to(device)
        _, outputs = evaluate_network(
            run.network,
            run.spec,
            prepared,
            part,
            knn=run.knn,
            device=device,
            progress=progress,
            decision=run.decision,
            tta=run.tta,
        )
        all_proba.append(outputs.proba)
        labels, counts = outputs.labels, prepared.class_counts("train")
    return labels, all_proba, counts


def _prepared(run: TrainedRun, progress: bool) -> PreparedData:
    prepared = prepare_data(run.config, run.run_dir, progress=progress)
    return prepared.normalized_for(*run.normalization())
