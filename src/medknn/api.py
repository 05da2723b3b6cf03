"""The Python API, mirroring the CLI: train from a config, load a run, evaluate, predict."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from medknn.errors import ConfigError, DataError
from medknn.evaluation import PartOutputs
from medknn.io import atomic_save_tensors, atomic_write_json, read_json
from medknn.lazy import lazy_getattr
from medknn.prediction import KNNClassifier, Prediction, TrainedRun
from medknn.prediction.ensemble_run import EnsembleRun
from medknn.prediction.knn import EMBEDDINGS_FILE, INDEX_FILE
from medknn.prediction.knn_index import probe_index, write_index
from medknn.reports import write_benchmark_report, write_run_plots
from medknn.run_ensemble import create_ensemble, score_ensemble, write_ensemble_report
from medknn.run_report import write_report
from medknn.run_scoring import score_part
from medknn.runs import RunDir
from medknn.runs.device import resolve_device
from medknn.runs.prepare import prepare_data
from medknn.runs.run_manifest import (
    ManifestCheck,
    check_manifest,
    manifest_path,
    refresh_manifest,
    write_manifest,
)


def load_run(path: str | Path) -> TrainedRun | EnsembleRun:
    """A finished run (or an ensemble of runs, ``medknn ensemble``), ready to predict."""
    return EnsembleRun.load(path) if EnsembleRun.is_ensemble(path) else TrainedRun.load(path)


def predict(
    run: str | Path | TrainedRun | EnsembleRun,
    images: list[str | Path],
    *,
    batch_size: int = 32,
) -> list[Prediction]:
    """Predict image files with a run; each prediction carries its nearest training cases.
    ``TrainedRun.iter_predict_files`` yields them batch by batch instead."""
    trained = run if isinstance(run, TrainedRun | EnsembleRun) else load_run(run)
    return trained.predict_files(images, batch_size=batch_size)


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
    ``decision: plain``); ``tta`` overrides the run's test-time augmentation (a what-if: the run's
    metrics.json and outputs are left as they are). ``plots=True``
    also writes the confusion matrix, ROC curves and a t-SNE map of the embeddings to
    ``RUN/plots/`` (``thumbnails=True`` adds the map drawn with the images);
    ``report=True`` writes the HTML report (:func:`report`; its path in ``metrics["report"]``)."""
    if part not in ("train", "val", "test"):
        raise ConfigError(f"part={part!r}: use train, val or test.")
    if isinstance(run, EnsembleRun) or EnsembleRun.is_ensemble(run):
        members = run if isinstance(run, EnsembleRun) else EnsembleRun.load(run)
        if plots or tta is not None:
            raise ConfigError(
                "An ensemble is evaluated with its members' own settings; plots and --tta are "
                "per run: use them on its members."
            )
        score = score_ensemble(members, part=part, decide=decide, progress=progress)
        if report:
            score.metrics["report"] = str(write_ensemble_report(members, score, part))
        return score.metrics
    trained = run if isinstance(run, TrainedRun) else TrainedRun.load(run)
    prepared = prepare_data(trained.config, trained.run_dir, progress=progress)
    prepared = prepared.normalized_for(*trained.normalization())
    device = resolve_device(trained.config.device)
    trained.network.to(device)
    metrics, outputs = score_part(
        trained.network,
        trained.spec,
        prepared,
        trained.knn,
        trained.config,
        trained.run_dir,
        part,
        device=device,
        progress=progress,
        decide=decide,
        tta=tta,
    )
    if tta is None:  # the run's own record; a --tta is a what-if
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
    if EnsembleRun.is_ensemble(path):
        return Path(evaluate(path, part=part, report=True, progress=progress)["report"])
    trained = run if isinstance(run, TrainedRun) else TrainedRun.load(run)
    run_dir = trained.run_dir
    if part != "test" or not (run_dir.metrics.exists() and run_dir.outputs(part).exists()):
        return Path(evaluate(trained, part=part, report=True, progress=progress)["report"])
    prepared = prepare_data(trained.config, run_dir, progress=progress)
    outputs = PartOutputs.load(run_dir.outputs(part))
    return write_report(trained, prepared, read_json(run_dir.metrics), outputs, part)


def repair(run: str | Path) -> list[str]:
    """Rebuild a run's approximate kNN index (``knn/index.faiss``) from its saved embeddings,
    always, without reading the old file (so also for a run from an untrusted source), and
    record it in the manifest; a run without a manifest (written before them) gets one, for the
    files as they are now. Any other file that does not match the manifest is refused by name:
    only retraining or a fresh copy restores it. Returns what was done, one line per change."""
    run_dir = RunDir(Path(run))
    if not run_dir.config.exists() or not (run_dir.knn / "knn.json").exists():
        raise ConfigError(f"{run_dir.path} is not a finished medknn run (no config.yaml or knn/).")
    check = check_manifest(run_dir)
    index_file = run_dir.knn / INDEX_FILE
    others = {name: why for name, why in check.bad.items() if name != f"knn/{INDEX_FILE}"}
    if others:
        described = ManifestCheck(True, others).describe(run_dir.path)
        raise DataError(
            f"Run {run_dir.path} does not match its manifest: {described}. repair rebuilds only "
            "the kNN index; copy the run again from its source, or retrain it."
        )
    try:
        kind = read_json(run_dir.knn / "knn.json").get("index", "exact")
    except (ValueError, AttributeError):
        kind = "exact"  # damaged: KNNClassifier.load below names the file
    if check.has_manifest and not check.bad and kind == "exact":
        return [f"{run_dir.path} matches its manifest; nothing to repair"]
    done = []
    if kind != "exact" and not (run_dir.knn / EMBEDDINGS_FILE).exists():
        done.append(_save_legacy_embeddings(run_dir))
    knn = KNNClassifier.load(run_dir.knn, rebuild_index=True)
    if knn.index_type_ != "exact":
        write_index(knn.index_, index_file)
        done.append(f"rebuilt {index_file} from {run_dir.knn / EMBEDDINGS_FILE}")
    if check.has_manifest:
        if index_file.exists():
            refresh_manifest(run_dir, index_file)
    else:
        TrainedRun.load(run_dir.path)  # every file must load before the manifest vouches for it
        write_manifest(run_dir)
        done.append(f"wrote {manifest_path(run_dir)} for the run's files as they are now")
    return done


def _save_legacy_embeddings(run_dir: RunDir) -> str:
    """A run saved before medknn kept an approximate index's embeddings beside it: take them
    from its index once a child process has read and searched it without harm."""
    index_file = run_dir.knn / INDEX_FILE
    problem = probe_index(index_file)
    if problem is not None:
        raise DataError(
            f"{index_file} is damaged: {problem}. The run has no saved embeddings to rebuild it "
            "from (it was written before medknn kept them); copy the run again, or retrain it."
        )
    embeddings = KNNClassifier.load(run_dir.knn).embeddings_
    path = atomic_save_tensors(
        {"embeddings": torch.from_numpy(embeddings)}, run_dir.knn / EMBEDDINGS_FILE
    )
    return f"saved the index's {len(embeddings)} embeddings to {path}"


# Training's functions are imported on first use: loading, predicting with and evaluating a run
# (and so `medknn serve`) never import the trainer stack; `tune` (Optuna) only when tuning.
if TYPE_CHECKING:
    from medknn.run_training import as_config, train
    from medknn.tuning import tune

TRAINING = "medknn.run_training"
__getattr__ = lazy_getattr(
    __name__, globals(), {"as_config": TRAINING, "train": TRAINING, "tune": "medknn.tuning"}
)


def history(run: str | Path) -> list[dict[str, float]]:
    return read_json(RunDir(Path(run)).history)


__all__ = [
    "as_config",
    "ensemble",
    "evaluate",
    "history",
    "load_run",
    "predict",
    "repair",
    "report",
    "train",
    "tune",
]
