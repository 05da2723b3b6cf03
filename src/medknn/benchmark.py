"""Methods × seeds on one data set, each run resumable, into a table of mean ± std per metric."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.markup import escape

from medknn import api
from medknn.errors import ConfigError, RunLockedError
from medknn.evaluation.verdict import folder_name
from medknn.io import atomic_write_json, atomic_write_text, read_json
from medknn.methods import get_method
from medknn.reports import csv_table, markdown_table, summarize, write_benchmark_report
from medknn.reports.tables import DEFAULT_COLUMNS, OPTIONAL_COLUMNS
from medknn.runs import RunDir, TrainConfig


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
        if not isinstance(item, Mapping):
            raise ConfigError(
                f"Benchmark entry {item!r} must be a method name or a mapping with 'method', "
                "e.g. - {method: deepknn, label: deepknn-k7, num_positives: 7}."
            )
        values = dict(item)
        if "method" not in values:
            raise ConfigError(f"Benchmark entry {values} needs a 'method' key.")
        method = values.pop("method")
        label = values.pop("label", method)
        if not isinstance(method, str) or not isinstance(label, str):
            raise ConfigError(
                f"Benchmark entry {item!r}: method and label must be text, e.g. method: deepknn."
            )
        return cls(label=label, method=method, overrides=values)

    @property
    def slug(self) -> str:
        return folder_name(self.label)


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
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as error:  # also a !!python tag: refused
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"{path} is not plain YAML ({problem}); fix the file.") from None
    if not isinstance(spec, dict) or "methods" not in spec:
        raise ConfigError(
            f"{path} must hold a mapping with a 'methods' list (and 'base', 'seeds')."
        )
    methods, seeds, base = spec["methods"], spec.get("seeds", [0]), spec.get("base") or {}
    if not isinstance(methods, list):
        # A bare string would be read letter by letter ("Unknown method 'd'").
        raise ConfigError(
            f"{path}: methods must be a list, e.g. methods: [{methods}] or one name per line "
            "as '- name'."
        )
    if not isinstance(seeds, list) or not all(_is_int(s) for s in seeds):
        hint = f"seeds: [{', '.join(map(str, range(seeds)))}]" if _is_int(seeds) else ""
        raise ConfigError(
            f"{path}: seeds must be a list of whole numbers, e.g. seeds: [0, 1, 2]"
            + (f" ({seeds} seeds: {hint})." if hint and 0 < seeds <= 20 else ".")
        )
    if not isinstance(base, dict):
        raise ConfigError(
            f"{path}: base must be a mapping of option: value, e.g. base: {{lr: 0.01}}."
        )
    entries = [BenchmarkEntry.parse(item) for item in methods]
    return dict(base), entries, list(seeds or [0])


def select_entries(entries: Sequence[BenchmarkEntry], names: Sequence[str]) -> list[BenchmarkEntry]:
    """The spec's entries named by ``names`` (``--methods`` beside ``--spec``), with their own
    options: a name picks the entry of that label, else every entry of that method; a registered
    method the spec does not hold is added bare. Anything else is refused naming the labels."""
    chosen: list[BenchmarkEntry] = []
    for name in names:
        matches = [e for e in entries if e.label == name] or [
            e for e in entries if e.method == name
        ]
        if not matches:
            try:
                get_method(name)
            except ConfigError:
                labels = ", ".join(e.label for e in entries) or "none"
                raise ConfigError(
                    f"--methods {name!r} is neither an entry of the spec (its labels: {labels}) "
                    "nor a method; see `medknn methods`."
                ) from None
            matches = [BenchmarkEntry.parse(name)]
        chosen.extend(m for m in matches if m not in chosen)
    return chosen


def _check_distinct_folders(entries: Sequence[BenchmarkEntry]) -> None:
    """Two labels that make one folder name would train into, and mix up, one run folder."""
    seen: dict[str, str] = {}
    for entry in entries:
        other = seen.setdefault(entry.slug, entry.label)
        if other != entry.label:
            raise ConfigError(
                f"The benchmark labels {other!r} and {entry.label!r} both map to the folder "
                f"name {entry.slug!r}; give one of them another label (letters, digits, - _ +)."
            )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


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
    _check_distinct_folders(entries)
    if not seeds:
        raise ConfigError("Give at least one seed, e.g. --seeds 0,1,2.")
    for entry in entries:  # every entry's options, checked before the first run trains
        for seed in seeds:
            TrainConfig.from_dict(
                {**base_values, **entry.overrides, "method": entry.method, "seed": seed},
                source=f"benchmark entry {entry.label!r}",
            )
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
                console.rule(f"{escape(entry.label)} · seed {seed}")
                api.train(
                    TrainConfig.from_dict(values), run_path, progress=progress, console=console
                )
            except RunLockedError as error:  # another process of this benchmark trains it
                console.print(f"skipped: {error}", markup=False)
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
            "they have finished; it reloads every finished run and writes the whole table.",
            markup=False,
        )
    return result


def _init_run(
    base_values: dict, entry: BenchmarkEntry, seed: int, out: Path, progress: bool, console: Console
) -> Path:
    """Train (or reuse) the run of the same seed that ``entry``'s method starts from: the first
    of its ``init_from_methods`` (deep kNN* fine-tunes the weighted-CE network, the paper's
    Table 2; the linear probe trains on a SupCon stage 1). A two-stage method's run is used
    through its stage 1, ``RUN/stage1``."""
    method = get_method(get_method(entry.method).init_from_methods[0])

    def start_of(run: Path) -> Path:
        return RunDir(run).first_stage if method.next_stage is not None else run

    existing = out / method.name / f"seed{seed}"
    if RunDir(start_of(existing)).status.exists():
        return start_of(existing)
    # The base options only: the entry's overrides (e.g. a fine-tuning lr) are the method's own.
    values = {**base_values, "method": method.name, "seed": seed, "init_from": None}
    path = out / f"{method.name}-init" / f"seed{seed}"
    console.rule(f"{method.name} (start of {entry.label}) · seed {seed}")
    api.train(TrainConfig.from_dict(values), path, progress=progress, console=console)
    return start_of(path)
