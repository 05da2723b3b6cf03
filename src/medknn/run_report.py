"""A run's HTML report: its saved metrics and outputs, and test images shown with their
nearest training cases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from medknn.evaluation import PartOutputs
from medknn.io import read_json
from medknn.prediction import TrainedRun
from medknn.reports import EvidenceCase, RunReportInputs, choose_cases, write_run_report
from medknn.runs.prepare import PreparedData

# Test images shown with their nearest training cases in a run's HTML report.
REPORT_CASES = 6


def write_report(
    trained: TrainedRun,
    prepared: PreparedData,
    metrics: dict[str, Any],
    outputs: PartOutputs,
    part: str,
) -> Path:
    run_dir = trained.run_dir
    chosen = choose_cases(
        outputs.labels,
        outputs.predicted,
        prepared.class_counts("train"),
        count=REPORT_CASES,
        seed=trained.config.seed,
    )
    status = read_json(run_dir.status) if run_dir.status.exists() else {}
    inputs = RunReportInputs(
        title=f"{trained.config.method} on {prepared.table.name or trained.config.data}",
        part=part,
        class_names=trained.class_names,
        config=trained.config.to_dict(),
        data=read_json(run_dir.data),
        history=read_json(run_dir.history) if run_dir.history.exists() else [],
        metrics=metrics,
        outputs=outputs,
        cases=evidence_cases(trained, prepared, outputs, chosen),
        wall_seconds=status.get("wall_seconds"),
        extra={"run": str(run_dir.path)},
    )
    return write_run_report(run_dir.report(part), inputs)


def evidence_cases(
    trained: TrainedRun, prepared: PreparedData, outputs: PartOutputs, chosen: np.ndarray
) -> list[EvidenceCase]:
    """The chosen cases of a part with their nearest training cases, images looked up by id."""
    if len(chosen) == 0:
        return []
    row_of = {case_id: row for row, case_id in enumerate(prepared.table.ids)}
    names = trained.class_names
    return [
        EvidenceCase(
            id=prepared.table.ids[outputs.indices[i]],
            true_class=names[outputs.labels[i]],
            predicted_class=names[outputs.predicted[i]],
            probability=float(outputs.proba[i, outputs.predicted[i]]),
            image=prepared.images[outputs.indices[i]],
            neighbours=neighbours,
            neighbour_images=[prepared.images[row_of[n.id]] for n in neighbours],
        )
        for i, neighbours in zip(
            chosen, trained.knn.explain(outputs.embeddings[chosen]), strict=True
        )
    ]
