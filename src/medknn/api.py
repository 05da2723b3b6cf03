"""The Python API, mirroring the CLI: train from a config, load a run, evaluate, predict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medknn.ensemble import create_ensemble, evaluate_ensemble
from medknn.errors import ConfigError
from medknn.evaluation import PartOutputs
from medknn.io import atomic_write_json, read_json
from medknn.prediction import Prediction, TrainedRun
from medknn.prediction.ensemble_run import EnsembleRun
from medknn.reports import write_benchmark_report, write_run_plots
from medknn.run_report import write_report
from medknn.run_training import as_config, score_part, train
from medknn.training import RunDir
from medknn.training.device import resolve_device
from medknn.training.prepare import prepare_data


def load_run(path: str | Path) -> TrainedRun | EnsembleRun:
    """A finished run (or an ensemble of runs, ``medknn ensemble``), ready to predict."""
    return EnsembleRun.load(path) if EnsembleRun.is_ensemble(path) else TrainedRun.load(path)


def predict(
    run: str | Path | TrainedRun | EnsembleRun, images: list[str | Path]
) -> list[Prediction]:
    """Predict image files with a run; each prediction carries its nearest training cases."""
    trained = run if isinstance(run, TrainedRun | EnsembleRun) else load_run(run)
    return trained.predict_files(images)


def ensemble(runs: list[str | Path], out: str | Path, *, progress: bool = True) -> dict[str, Any]:
    """Combine finished runs of one data set and split into an ensemble run directory ``out``
    (probabilities averaged, its decision rule chosen on validation); return its test metrics.
    ``load_run``, ``predict`` and ``evaluate`` accept ``out`` like any run."""
    return create_ensemble(runs, out, progress=progress)[1]


def evaluate(
    run: str | Path | TrainedRun | EnsembleRun,
    *,
    part: str = "test",
    plots: bool = False,
    thumbnails: bool = False,
    report: bool = False,
    progress: bool = True,
    decide: bool = False,
    tta: str | None = None,
) -> dict[str, Any]:
    """Re-score a finished run on ``part`` of its own saved split (``metrics.json`` for test)
    with its decision rule and test-time augmentation; ``decide=True`` first chooses the
    decision rule on the validation split (``RUN/decision.json``, e.g. for a run trained with
    ``decision: plain``); ``tta`` overrides the run's test-time augmentation. ``plots=True``
    also writes the confusion matrix, ROC curves and a t-SNE map of the embeddings to
    ``RUN/plots/`` (``thumbnails=True`` adds the map drawn with the images);
    ``report=True`` writes the HTML report (:func:`report`; its path in ``metrics["report"]``)."""
    if part not in ("train", "val", "test"):
        raise ConfigError(f"part={part!r}: use train, val or test.")
    if isinstance(run, EnsembleRun) or EnsembleRun.is_ensemble(run):
        members = run if isinstance(run, EnsembleRun) else EnsembleRun.load(run)
        if plots or report or tta is not None:
            raise ConfigError(
                "An ensemble is evaluated with its members' own settings; plots, --report and "
                "--tta are per run: use them on its members."
            )
        return evaluate_ensemble(members, part=part, decide=decide, progress=progress)
    trained = run if isinstance(run, TrainedRun) else TrainedRun.load(run)
    prepared = prepare_data(trained.config, trained.run_dir, progress=progress)
    prepared = prepared.normalized_for(*trained.normalization())
    device = resolve_device(trained.config.device)
    trained.network.to(device)
    config = trained.config if tta is None else trained.config.replace(tta=tta)
    metrics, outputs = score_part(
        trained.network,
        trained.spec,
        prepared,
        trained.knn,
        config,
        trained.run_dir,
        part,
        device=device,
        progress=progress,
        decide=decide,
    )
    outputs.save(trained.run_dir.outputs(part))
    if part == "test":
        atomic_write_json(trained.run_dir.metrics, metrics)
    if plots:
        metrics["plots"] = [
            str(p)
            for p in write_run_plots(
                trained.run_dir.plots,
                metrics,
                outputs,
                trained.class_names,
                part=part,
                thumbnails=prepared.images[outputs.indices] if thumbnails else None,
            )
        ]
    if report:
        metrics["report"] = str(write_report(trained, prepared, metrics, outputs, part))
    return metrics


def report(run: str | Path | TrainedRun, *, part: str = "test", progress: bool = True) -> Path:
    """Write the HTML report of a run's ``part`` to ``RUN/report/index.html`` (``report_val/``
    for part="val"; PNGs and ``report.json`` beside it), or of a benchmark directory to
    ``DIR/report/index.html``; returns the page. A run's saved test metrics and outputs are
    reused; any other part is evaluated first."""
    path = run.path if isinstance(run, TrainedRun) else Path(run)
    if not (path / "config.yaml").exists() and (path / "results.json").exists():
        results = read_json(path / "results.json")
        rows = results["rows"]
        columns = list(rows[0]["mean"]) if rows else []
        return write_benchmark_report(
            path / "report", rows, results["records"], columns, title=f"Benchmark {path.name}"
        )
    trained = run if isinstance(run, TrainedRun) else TrainedRun.load(run)
    run_dir = trained.run_dir
    if part != "test" or not (run_dir.metrics.exists() and run_dir.outputs(part).exists()):
        return Path(evaluate(trained, part=part, report=True, progress=progress)["report"])
    prepared = prepare_data(trained.config, run_dir, progress=progress)
    outputs = PartOutputs.load(run_dir.outputs(part))
    return write_report(trained, prepared, read_json(run_dir.metrics), outputs, part)


def history(run: str | Path) -> list[dict[str, float]]:
    return read_json(RunDir(Path(run)).history)


__all__ = ["as_config", "ensemble", "evaluate", "history", "load_run", "predict", "report", "train"]
