"""Methods × seeds on a feature set (the Deep kNN paper's Table 3), into tables and JSON."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from medknn.benchmark import BenchmarkEntry
from medknn.errors import ConfigError
from medknn.features.feature_set import FeatureSet
from medknn.features.methods import (
    TABLE3_LABELS,
    check_feature_method,
    feature_method_label,
    run_feature_method,
)
from medknn.features.parts import FeatureParts
from medknn.features.wide_table import methods_as_columns_table
from medknn.io import atomic_write_json, atomic_write_text, read_json
from medknn.reports import csv_table, markdown_table, summarize
from medknn.reports.tables import DEFAULT_COLUMNS
from medknn.runs import RunDir, TrainConfig


@dataclass
class FeatureBenchmarkResult:
    """``rows``: mean/std per method; ``records``: one per run; ``markdown``: Table 3 layout."""

    rows: list[dict]
    records: list[dict]
    markdown: str
    out: Path


def table3_methods() -> list[str]:
    """The paper's Table 3 methods."""
    return list(TABLE3_LABELS)


def run_feature_benchmark(
    features: str | os.PathLike | FeatureSet,
    methods: Sequence[str | Mapping[str, Any] | BenchmarkEntry],
    seeds: Sequence[int],
    out: str | os.PathLike,
    *,
    config: TrainConfig | Mapping[str, Any] | None = None,
    progress: bool = True,
    console: Console | None = None,
) -> FeatureBenchmarkResult:
    """Every method for every seed under ``out/<label>/seed<k>``, then ``results.md`` (Table 3
    layout and the full metric table), ``results.csv`` and ``results.json``. Finished runs are
    reused.

    ``methods`` are names (``knn-basic``, ``nca``, ``lmnn``, ``triplet``, ``ce``, ``deepknn``,
    or any other registered method that trains) or mappings ``{method, label, <option>: value}``
    as in a benchmark spec. ``config`` holds the training, kNN and split options (``epochs``,
    ``lr``, ``k_predict``, ``split``, ...). Each seed splits the rows as ``medknn train`` would
    with that seed (``split_seed`` fixes one split for all seeds); the features are standardised
    with the training part's statistics.
    """
    console = console or Console(stderr=True, quiet=not progress)
    feature_set = features if isinstance(features, FeatureSet) else FeatureSet.load(features)
    base = _base_config(config, feature_set)
    entries = [_entry(item) for item in methods]
    if not entries:
        raise ConfigError("Name at least one method, e.g. --methods knn-basic,nca,deepknn.")
    if not seeds:
        raise ConfigError("Give at least one seed, e.g. --seeds 0,1,2.")
    for entry in entries:
        check_feature_method(entry.method)  # fail before any training, not after
    out = Path(out)
    records, splits = [], {}
    for seed in seeds:
        split = feature_set.split(
            base.split,
            seed=seed if base.split_seed is None else base.split_seed,
            val_fraction=base.val_fraction,
            test_fraction=base.test_fraction,
        )
        splits[seed] = {part: len(rows) for part, rows in split.parts().items()}
        splits[seed]["strategy"] = split.strategy
        parts = FeatureParts.from_split(feature_set, split)
        for entry in entries:
            run_path = out / entry.slug / f"seed{seed}"
            console.rule(f"{escape(entry.label)} · seed {seed}")
            config_values = {**base.to_dict(), **entry.overrides, "seed": seed}
            metrics = run_feature_method(
                entry.method,
                parts,
                TrainConfig.from_dict(config_values, source=f"method {entry.label!r}"),
                run_path,
                progress=progress,
                console=console,
            )
            records.append(
                {
                    "label": entry.label,
                    "method": entry.method,
                    "seed": seed,
                    "metrics": metrics,
                    "wall_seconds": read_json(RunDir(run_path).status).get("wall_seconds"),
                    "run": str(run_path),
                }
            )
    rows = summarize(records, DEFAULT_COLUMNS)
    result = FeatureBenchmarkResult(rows, records, methods_as_columns_table(rows), out)
    atomic_write_text(out / "results.md", _results_page(feature_set, result, splits, base, entries))
    atomic_write_text(out / "results.csv", csv_table(rows, DEFAULT_COLUMNS))
    atomic_write_json(out / "results.json", {"rows": rows, "records": records, "splits": splits})
    return result


def _base_config(
    config: TrainConfig | Mapping[str, Any] | None, features: FeatureSet
) -> TrainConfig:
    values = config.to_dict() if isinstance(config, TrainConfig) else dict(config or {})
    if values.get("shots") is not None:
        raise ConfigError("The feature benchmark has no few-shot protocol; leave shots unset.")
    # The MLP replaces the image backbone; `data` records which feature file was used.
    values.update(data=features.source, backbone="mlp")
    return TrainConfig.from_dict(values, source="feature benchmark options")


def _entry(item: str | Mapping[str, Any] | BenchmarkEntry) -> BenchmarkEntry:
    """A benchmark entry; one labelled with its bare method name gets the Table 3 name."""
    entry = item if isinstance(item, BenchmarkEntry) else BenchmarkEntry.parse(item)
    if entry.label != entry.method:
        return entry
    return BenchmarkEntry(feature_method_label(entry.method), entry.method, entry.overrides)


def _results_page(
    features: FeatureSet,
    result: FeatureBenchmarkResult,
    splits: dict[int, dict],
    base: TrainConfig,
    entries: list[BenchmarkEntry],
) -> str:
    made_with = features.settings
    origin = (
        f"{made_with.get('backbone')} features of {made_with.get('data')} at "
        f"{made_with.get('image_size')} px"
        if made_with
        else "user-supplied features"
    )
    lines = [
        f"# Feature-vector benchmark: {features.source}",
        "",
        f"{len(features)} × {features.dim} {origin}; standardised with the training part's "
        f"mean and std. Seeds {', '.join(map(str, splits))}; split per seed: "
        + "; ".join(
            f"{seed}: {s['strategy']} {s['train']}/{s['val']}/{s['test']} train/val/test"
            for seed, s in splits.items()
        )
        + ".",
        "",
        f"MLP: 3 × (Linear 512 → BN → ReLU), {base.epochs or 'automatic'} epochs, "
        f"{base.optimizer} lr {base.lr} ({base.schedule} schedule), "
        f"best epoch by validation MCR; K = {base.num_positives}, M = {base.num_negatives}, "
        f"margin {base.margin}; kNN prediction with K_p = {base.k_predict}; "
        + (
            "the plain rule (majority vote, argmax)."
            if base.decision == "plain"
            else f"a decision rule chosen on the validation part for {base.decision_metric} "
            "(kNN-basic, NCA and LMNN: the plain vote)."
        ),
        "",
        "## Table 3 layout (mean ± std over seeds, %)",
        "",
        result.markdown,
        "## All metrics",
        "",
        markdown_table(result.rows, DEFAULT_COLUMNS),
    ]
    fitted = {
        r["label"]: r["metrics"]["fit_samples"]
        for r in result.records
        if "fit_samples" in r["metrics"]
    }
    if fitted:
        train_rows = max(s["train"] for s in splits.values())
        lines.append(
            "Rows the linear metrics were fitted on (a stratified subsample when the training "
            "part is larger than max_samples: NCA/LMNN cost grows with n²): "
            + ", ".join(f"{label} {n} of {train_rows}" for label, n in fitted.items())
            + "; their kNN index holds every training row."
        )
    return "\n".join(lines) + "\n"
