"""Methods × seeds on one data set, each run resumable, into a table of mean ± std per metric."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from medknn import api
from medknn.errors import ConfigError, RunLockedError
from medknn.io import atomic_write_json, atomic_write_text, read_json
from medknn.methods import get_method
from medknn.reports import csv_table, markdown_table, summarize, write_benchmark_report
from medknn.reports.tables import DEFAULT_COLUMNS, OPTIONAL_COLUMNS
from medknn.training import RunDir, TrainConfig

# deep kNN* fine-tunes the weighted-CE network of the same seed (the paper's Table 2).
INIT_FROM_METHOD = "weighted-ce"


@dataclass(frozen=True)
class BenchmarkEntry:
    """One table row: a method with optional option overrides, under a label."""

    label: str
    method: str
    overrides: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, item: str | Mapping[str, Any]) -> BenchmarkEntry:
        if isinstance(item, str):
            return cls(label=item, method=item)
        values = dict(item)
        if "method" not in values:
            raise ConfigError(f"Benchmark entry {values} needs a 'method' key.")
        method = values.pop("method")
        label = values.pop("label", method)
        return cls(label=label, method=method, overrides=values)

    @property
    def slug(self) -> str:
        return "".join(ch if ch.isalnum() or ch in "-_+" else "_" for ch in self.label)


@dataclass
class BenchmarkResult:
    rows: list[dict]
    records: list[dict]
    markdown: str
    csv: str
    out: Path


def load_benchmark_file(path: str | Path) -> tuple[dict, list[BenchmarkEntry], list[int]]:
    """A YAML file with ``base`` (config options), ``methods`` (names or mappings) and ``seeds``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Benchmark file {path} does not exist.")
    spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(spec, dict) or "methods" not in spec:
        raise ConfigError(
            f"{path} must hold a mapping with a 'methods' list (and 'base', 'seeds')."
        )
    entries = [BenchmarkEntry.parse(item) for item in spec["methods"]]
    return dict(spec.get("base") or {}), entries, list(spec.get("seeds") or [0])


def run_benchmark(
    base: TrainConfig | Mapping[str, Any],
    entries: Sequence[BenchmarkEntry | str],
    seeds: Sequence[int],
    out: str | Path,
    *,
    progress: bool = True,
    console: Console | None = None,
) -> BenchmarkResult:
    """Train and test every entry for every seed under ``out/<label>/seed<k>``; write
    ``results.md``, ``results.csv``, ``results.json`` and the HTML page ``report/index.html``
    there. Finished runs are reused. Several processes may work on one ``out`` at once: each
    skips the runs another is training (see ``run_lock``), so the last one to finish should be
    run once more to write the whole table.

    With ``shots`` in ``base`` each seed is one repeat of the few-shot protocol: its own draw of
    training images, the same for every method, from one split fixed by ``split_seed`` (by
    default the base's ``seed``)."""
    console = console or Console(stderr=True, quiet=not progress)
    base_values = base.to_dict() if isinstance(base, TrainConfig) else dict(base)
    entries = [e if isinstance(e, BenchmarkEntry) else BenchmarkEntry.parse(e) for e in entries]
    for entry in entries:
        get_method(entry.method)  # fail before hours of training, not after
    if not seeds:
        raise ConfigError("Give at least one seed, e.g. --seeds 0,1,2.")
    if base_values.get("shots") is not None and base_values.get("split_seed") is None:
        # Few-shot protocol: every seed draws its own training images from one fixed split.
        base_values["split_seed"] = base_values.get("seed", 0)
    out = Path(out)
    records, skipped = [], []
    for seed in seeds:
        for entry in entries:
            values = {**base_values, **entry.overrides, "method": entry.method, "seed": seed}
            run_path = out / entry.slug / f"seed{seed}"
            try:
                if get_method(entry.method).requires_init_from and not values.get("init_from"):
                    values["init_from"] = str(
                        _init_run(base_values, entry, seed, out, progress, console)
                    )
                console.rule(f"{entry.label} · seed {seed}")
                api.train(
                    TrainConfig.from_dict(values), run_path, progress=progress, console=console
                )
            except RunLockedError as error:  # another process of this benchmark trains it
                console.print(f"skipped: {error}")
                skipped.append(run_path)
                continue
            run_dir = RunDir(run_path)
            records.append(
                {
                    "label": entry.label,
                    "method": entry.method,
                    "seed": seed,
                    "metrics": read_json(run_dir.metrics),
                    "wall_seconds": read_json(run_dir.status).get("wall_seconds"),
                    "run": str(run_path),
                }
            )
    reported = [
        c for c in OPTIONAL_COLUMNS if any(r["metrics"].get(c) is not None for r in records)
    ]
    columns = (*DEFAULT_COLUMNS, *reported)
    rows = summarize(records, columns)
    result = BenchmarkResult(
        rows, records, markdown_table(rows, columns), csv_table(rows, columns), out
    )
    atomic_write_text(out / "results.md", result.markdown)
    atomic_write_text(out / "results.csv", result.csv)
    atomic_write_json(out / "results.json", {"rows": rows, "records": records})
    write_benchmark_report(out / "report", rows, records, columns, title=f"Benchmark {out.name}")
    if skipped:
        console.print(
            f"{len(skipped)} run(s) were being trained by other processes and are not in the "
            "table: " + ", ".join(str(p) for p in skipped) + ". Run the same command again once "
            "they have finished; it reloads every finished run and writes the whole table."
        )
    return result


def _init_run(
    base_values: dict, entry: BenchmarkEntry, seed: int, out: Path, progress: bool, console: Console
) -> Path:
    """Train (or reuse) the weighted-CE run that deep kNN* of this seed starts from."""
    existing = out / INIT_FROM_METHOD / f"seed{seed}"
    if RunDir(existing).status.exists():
        return existing
    # The base options only: the entry's overrides (e.g. a fine-tuning lr) are deep kNN*'s own.
    values = {**base_values, "method": INIT_FROM_METHOD, "seed": seed, "init_from": None}
    path = out / f"{INIT_FROM_METHOD}-init" / f"seed{seed}"
    console.rule(f"{INIT_FROM_METHOD} (start of {entry.label}) · seed {seed}")
    api.train(TrainConfig.from_dict(values), path, progress=progress, console=console)
    return path
