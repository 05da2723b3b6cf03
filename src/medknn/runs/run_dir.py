"""The layout of a run directory; every other module asks this one where a file lives."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunDir:
    """``config.yaml`` (resolved config), ``split.json``, ``data.json`` (classes, counts, skipped
    images), ``checkpoints/last.safetensors`` (resume state), ``model.safetensors`` (best weights),
    ``knn/`` (training-set embeddings for prediction), ``history.json``, ``train.log``,
    ``metrics.json`` (test metrics), ``test_outputs.npz`` (predictions and embeddings),
    ``plots/``, ``report/`` (the HTML report of the test part) and ``status.json``. A two-stage
    method's run holds its stage-1 run, a complete run directory of its own, in ``stage1/``."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    config = property(lambda self: self.path / "config.yaml")
    decision = property(lambda self: self.path / "decision.json")  # chosen on validation
    split = property(lambda self: self.path / "split.json")
    data = property(lambda self: self.path / "data.json")
    last_checkpoint = property(lambda self: self.path / "checkpoints" / "last.safetensors")
    model = property(lambda self: self.path / "model.safetensors")
    knn = property(lambda self: self.path / "knn")
    history = property(lambda self: self.path / "history.json")
    log = property(lambda self: self.path / "train.log")
    metrics = property(lambda self: self.path / "metrics.json")
    status = property(lambda self: self.path / "status.json")
    plots = property(lambda self: self.path / "plots")
    first_stage = property(lambda self: self.path / "stage1")

    def report(self, part: str = "test") -> Path:
        """The folder of the HTML report of one part: ``report/`` for test, else ``report_val/``…"""
        return self.path / ("report" if part == "test" else f"report_{part}")

    def outputs(self, part: str) -> Path:
        """Labels, predictions, probabilities and embeddings of one part (``test_outputs.npz``)."""
        return self.path / f"{part}_outputs.npz"

    def remove_partial_writes(self) -> list[Path]:
        """Delete temporary files that a killed process left mid-write (the real files are
        intact: each is replaced in one rename). ``run_lock`` keeps other processes out."""
        stale = [p for p in self.path.rglob(".*.tmp") if p.is_file()]
        for path in stale:
            path.unlink()
        return stale

    def create(self) -> RunDir:
        (self.path / "checkpoints").mkdir(parents=True, exist_ok=True)
        return self
