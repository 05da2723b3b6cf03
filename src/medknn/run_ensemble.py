"""``medknn ensemble``: several finished runs of one split scored as one model. The members'
probabilities (their own decision rules and test-time augmentation applied) are averaged; the
ensemble's own logit adjustment is chosen on the validation split, as for a single run."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from medknn.evaluation import PartOutputs, classification_metrics, evaluate_network
from medknn.evaluation.decision_choice import choose_softmax_rule
from medknn.io import atomic_write_json, read_json
from medknn.prediction.ensemble_run import EnsembleRun
from medknn.prediction.trained_run import TrainedRun
from medknn.reports import RunReportInputs, choose_cases, write_run_report
from medknn.run_report import REPORT_CASES, evidence_cases
from medknn.runs.device import resolve_device
from medknn.runs.prepare import Part, PreparedData, prepare_data
from medknn.runs.run_dir import RunDir

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
    return score_ensemble(ensemble, part=part, decide=decide, progress=progress).metrics


@dataclass(frozen=True)
class EnsembleScore:
    """An ensemble's metrics and outputs of one part, with each member's own outputs (their
    embeddings locate each member's nearest training cases) and the part's data."""

    metrics: dict
    outputs: PartOutputs
    member_outputs: list[PartOutputs]
    prepared: PreparedData


def score_ensemble(
    ensemble: EnsembleRun, *, part: Part = "test", decide: bool = False, progress: bool = True
) -> EnsembleScore:
    """:func:`evaluate_ensemble` keeping what a report shows."""
    if decide:
        val_outputs, counts, _ = _member_outputs(ensemble, "val", progress)
        val_labels = val_outputs[0].labels
        if len(val_labels):
            member = ensemble.members[0].config
            ensemble.decision = choose_softmax_rule(
                np.log(np.clip(np.mean([o.proba for o in val_outputs], axis=0), 1e-12, None)),
                val_labels,
                counts,
                metric=member.decision_metric,
                min_specificity=member.min_specificity,
            )
            ensemble.decision.save(ensemble.path)
    member_outputs, counts, prepared = _member_outputs(ensemble, part, progress)
    labels = member_outputs[0].labels
    proba = ensemble.combine([o.proba for o in member_outputs])
    predicted = proba.argmax(axis=1)
    metrics = classification_metrics(
        labels, predicted, proba=proba, class_names=ensemble.class_names, train_counts=counts
    )
    member_labels = np.stack([o.proba.argmax(axis=1) for o in member_outputs])
    metrics["agreement"] = float((member_labels == predicted).mean())
    metrics["members"] = [str(run.path) for run in ensemble.members]
    metrics["method"] = ENSEMBLE_METHOD
    # An ensemble has no embedding of its own: each member's is in member_outputs.
    no_embedding = np.zeros((len(labels), 0), np.float32)
    outputs = PartOutputs(labels, predicted, proba, no_embedding, member_outputs[0].indices)
    outputs.save(ensemble.path / f"{part}_outputs.npz")
    if part == "test":
        atomic_write_json(ensemble.path / "metrics.json", metrics)
    return EnsembleScore(metrics, outputs, member_outputs, prepared)


def _member_outputs(
    ensemble: EnsembleRun, part: Part, progress: bool
) -> tuple[list[PartOutputs], np.ndarray, PreparedData]:
    """Each member's outputs of ``part`` under its own decision rule and TTA, the training
    class counts and the first member's prepared data (the members share one split)."""
    all_outputs, counts, first = [], None, None
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
        all_outputs.append(outputs)
        counts = prepared.class_counts("train")
        first = prepared if first is None else first
    return all_outputs, counts, first


def _prepared(run: TrainedRun, progress: bool) -> PreparedData:
    prepared = prepare_data(run.config, run.run_dir, progress=progress)
    return prepared.normalized_for(*run.normalization())


def write_ensemble_report(ensemble: EnsembleRun, score: EnsembleScore, part: Part) -> Path:
    """The ensemble's HTML report (``ENSEMBLE/report/index.html``) of a scored part: its
    metrics, the members' agreement, and each shown case with every member's prediction and
    nearest training cases."""
    first = ensemble.members[0]
    chosen = choose_cases(
        score.outputs.labels,
        score.outputs.predicted,
        score.prepared.class_counts("train"),
        count=REPORT_CASES,
        seed=first.config.seed,
    )
    member_cases = [
        evidence_cases(run, score.prepared, outputs, chosen)
        for run, outputs in zip(ensemble.members, score.member_outputs, strict=True)
    ]
    names = ensemble.class_names
    cases = []
    for position, row in enumerate(chosen):
        combined = f"ensemble: {names[score.outputs.predicted[row]]}"
        for number, (run, member) in enumerate(zip(ensemble.members, member_cases, strict=True)):
            case = member[position]
            label = f"{case.id} · {combined} · member {number + 1} ({run.path.name})"
            cases.append(replace(case, id=label))
    members = [str(run.path) for run in ensemble.members]
    inputs = RunReportInputs(
        title=f"Ensemble of {len(members)} runs on {first.config.data}",
        part=part,
        class_names=names,
        config={"method": ENSEMBLE_METHOD, "members": members, "data": first.config.data},
        data=read_json(first.run_dir.data),
        history=[],
        metrics=score.metrics,
        outputs=score.outputs,
        cases=cases,
        extra={
            "ensemble": str(ensemble.path),
            "agreement between members": f"{score.metrics['agreement']:.3f}",
        },
    )
    return write_run_report(RunDir(ensemble.path).report(part), inputs)
