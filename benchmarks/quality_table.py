"""The quality issue's table from a quality benchmark (benchmarks/specs/quality_*.yaml).

python benchmarks/quality_table.py runs/quality-breastmnist [--ensembles]
python benchmarks/quality_table.py runs/official-dermamnist   # official_*_main_methods.yaml


Rows: frozen ImageNet features + class-balanced logistic regression (fitted on the knn-imagenet
runs' saved training embeddings: the baseline any user could write) and + kNN; each trained
method of the benchmark under its decision rule chosen on validation (and, for reference, under
its plain rule, and with ``--tta`` re-scored with flip test-time augmentation), named
``LABEL (recipe)``, or ``LABEL (paper settings)`` for a run that pinned every option the recipe
changed to its earlier value (the reproductions' specs: their method's own rule, no EMA); with
``--ensembles`` the ensemble of each method's seeds (``medknn ensemble``,
written to ``DIR/ensemble-<method>``). Every metric is the mean ± std over seeds of the test
split; the published figures and the issue's targets follow, each target marked met or missed by
how much for the best row, then each seed's values of the rows compared and the verdict of each
trained row against the frozen baselines, of each ``-blr1`` candidate against its default and of
flip TTA against none (the results' rule, ``medknn.evaluation.verdict``: paired seeds, held only
with at least 5; one seed is indicative).
Writes ``results_quality.md`` beside the benchmark's ``results.md``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import medknn
from medknn.evaluation import PartOutputs, classification_metrics
from medknn.evaluation.verdict import MIN_SEEDS, verdict_lines, verdict_section
from medknn.io import atomic_write_text, load_tensors, read_json
from medknn.reports import per_seed_table, summarize
from medknn.reports.classification_plots import save_figure  # also selects the Agg backend
from medknn.runs import TrainConfig
from medknn.runs.config import OPTIONS_BEFORE_THE_RECIPE

VERDICT_SEEDS = MIN_SEEDS  # the results' rule: fewer seeds are indicative, never a verdict
VERDICT_METRICS = (("accuracy", "Acc"), ("mcr", "MCR"), ("auc", "AUC"))
BASELINES = ("frozen + kNN", "frozen + logistic regression")
TRAINED = (" (recipe)", " (paper settings)")  # the suffixes of the trained rows
# The options whose default the recipe changed (memory_format aside: speed only). A run with all
# of them at their earlier values trained with paper-like settings, not with the recipe.
RECIPE_OPTIONS = tuple(
    key
    for key, value in OPTIONS_BEFORE_THE_RECIPE.items()
    if key != "memory_format" and getattr(TrainConfig(), key) != value
)
COLUMNS = ("accuracy", "mcr", "rs", "macro_f1", "auc", "ece", "val_mcr")
LABELS = {
    "accuracy": "Acc",
    "mcr": "MCR",
    "rs": "RS",
    "macro_f1": "macro F1",
    "auc": "AUC",
    "val_mcr": "best val MCR",
}
# (data, split) → published test figures and the targets.
REFERENCES = {
    ("ham10000", "grouped"): {
        "published": "frozen Lite0@64 + balanced logistic regression: MCR .36 (issue 15)",
        "targets": {"accuracy": 0.82, "mcr": 0.72, "rs": 0.60},
    },
    ("ham10000", "dermamnist"): {
        "published": "MedMNIST v2 (Yang et al. 2023) ResNet-18 (28) Acc .735 / AUC .917; "
        "ResNet-18 (224) .754 / .920; ResNet-50 (28) .735 / .913; ResNet-50 (224) .731 / .912",
        "targets": {"accuracy": 0.80, "auc": 0.94},
    },
    ("pneumoniamnist", "official"): {
        "published": "MedMNIST v2 ResNet-18 (28) Acc .854 / AUC .944; ResNet-50 (224) .884 / .962",
        "targets": {"accuracy": 0.90, "auc": 0.96},
    },
    ("breastmnist", "official"): {
        "published": "MedMNIST v2 (Yang et al. 2023) ResNet-18 (28) Acc .863 / AUC .901; "
        "ResNet-18 (224) .833 / .891; ResNet-50 (28) .812 / .857; ResNet-50 (224) .842 / .866",
        "targets": {"accuracy": 0.89, "auc": 0.93},
    },
}


def logistic_regression_metrics(run: Path) -> dict:
    """Class-balanced logistic regression on a frozen-feature run's saved embeddings."""
    knn = read_json(run / "knn" / "knn.json")
    train = load_tensors(run / "knn" / "embeddings.safetensors")["embeddings"].numpy()
    test = PartOutputs.load(run / "test_outputs.npz")
    model = make_pipeline(
        StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=5000)
    )
    model.fit(train, np.asarray(knn["labels"]))
    proba = model.predict_proba(test.embeddings)
    counts = np.bincount(knn["labels"], minlength=len(knn["class_names"]))
    return classification_metrics(
        test.labels,
        proba.argmax(axis=1),
        proba=proba,
        class_names=knn["class_names"],
        train_counts=counts,
    )


def setting(config: TrainConfig) -> str:
    """``paper settings`` for a run with every option the recipe changed at its earlier value
    (a reproduction's spec pins them), ``recipe`` otherwise."""
    paper = all(getattr(config, key) == OPTIONS_BEFORE_THE_RECIPE[key] for key in RECIPE_OPTIONS)
    return "paper settings" if paper else "recipe"


def best_validation_mcr(run: Path) -> float | None:
    """The best validation MCR over the run's epochs (raw or EMA weights): what a choice
    between settings may read; the test split never enters it."""
    scores = [
        max(r["val_mcr"], r.get("ema_val_mcr", -1.0))
        for r in read_json(run / "history.json")
        if "val_mcr" in r
    ]
    return max(scores, default=None)


def collect(bench: Path, ensembles: bool, tta: bool = False) -> list[dict]:
    """Records ``{"label", "seed", "metrics", "wall_seconds"}`` of every row."""
    records: list[dict] = []
    finished = _finished_runs(bench)
    for label, runs in finished.items():
        for seed, run in runs:
            metrics = read_json(run / "metrics.json")
            wall = read_json(run / "status.json").get("wall_seconds")
            if label == "knn-imagenet":
                lr = logistic_regression_metrics(run)
                records.append(_record("frozen + logistic regression", seed, lr, wall))
                records.append(_record("frozen + kNN", seed, metrics, wall))
                continue
            chosen_on = {"val_mcr": best_validation_mcr(run), "method": metrics.get("method")}
            how = setting(TrainConfig.load_saved(run / "config.yaml"))
            records.append(_record(f"{label} ({how})", seed, {**metrics, **chosen_on}, wall))
            if "plain" in metrics:
                plain = metrics["plain"]
                records.append(_record(f"{label} ({how}, plain rule)", seed, plain, wall))
            if tta:
                flipped = medknn.evaluate(run, tta="flips", progress=False)
                records.append(_record(f"{label} ({how}, TTA flips)", seed, flipped, wall))
    if ensembles:
        for label, runs in finished.items():
            if label == "knn-imagenet" or len(runs) < 2:
                continue
            out = bench / f"ensemble-{label}"
            metrics = medknn.ensemble([run for _, run in runs], out, progress=False)
            wall = sum(read_json(run / "status.json").get("wall_seconds") or 0 for _, run in runs)
            records.append(_record(f"ensemble of {len(runs)} {label} seeds", 0, metrics, wall))
    return records


def _finished_runs(bench: Path) -> dict[str, list[tuple[int, Path]]]:
    runs: dict[str, list[tuple[int, Path]]] = {}
    for status in sorted(bench.glob("*/seed*/status.json")):
        run = status.parent
        if read_json(status).get("status") == "complete":
            runs.setdefault(run.parent.name, []).append((int(run.name.removeprefix("seed")), run))
    return runs


def _record(label: str, seed: int, metrics: dict, wall: float | None) -> dict:
    return {"label": label, "seed": seed, "metrics": metrics, "wall_seconds": wall}


def _cell(row: dict, column: str) -> str:
    mean, std = row["mean"].get(column), row["std"].get(column)
    if mean is None:
        return "–"
    # One seed, or seeds that agree (the frozen baselines' features are the same for every seed):
    # no ± at all, whatever the float rounding of a zero spread.
    return f"{mean:.3f}" if not std or std < 5e-4 else f"{mean:.3f} ± {std:.3f}"


def render(bench: Path, records: list[dict]) -> str:
    rows = summarize(records, COLUMNS)
    config = TrainConfig.load_saved(next(bench.glob("*/seed*/config.yaml")))
    reference = REFERENCES.get((config.data, config.split), {})
    header = ["", *[LABELS.get(c, c.upper()) for c in COLUMNS], "seeds", "wall s/run"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        wall = row.get("wall_seconds")
        cells = [_cell(row, c) for c in COLUMNS]
        lines.append(
            f"| {row['label']} | " + " | ".join(cells) + f" | {row['runs']} | "
            f"{'–' if not wall else f'{wall:.0f}'} |"
        )
    text = [f"## {config.data}, split {config.split}", "", _budget(bench, config), "", *lines, ""]
    if reference:
        text.append(f"Published: {reference['published']}.")
        text.append("")
        text += _targets(rows, reference["targets"])
    text += _validation_choice(records)
    return "\n".join(text) + "\n" + _seeds_compared(records) + verdict_section(verdicts(records))


def _seeds_compared(records: list[dict]) -> str:
    """Each seed's values of the rows the verdicts compare, for the results page to keep."""
    pairs = comparisons(list(dict.fromkeys(r["label"] for r in records)))
    if not pairs:
        return ""
    compared = list(dict.fromkeys(label for pair in pairs for label in pair))
    columns = [metric for metric, _ in VERDICT_METRICS]
    return "Per seed, the rows compared:\n\n" + per_seed_table(records, columns, compared) + "\n"


def comparisons(labels: list[str]) -> list[tuple[str, str]]:
    """Each trained method (recipe or paper settings) against the frozen baselines; a ``-blr1``
    candidate against its default; flip TTA against none."""
    pairs = []
    for label in labels:
        suffix = next((s for s in TRAINED if label.endswith(s)), None)
        if suffix is not None:
            method = label.removesuffix(suffix)
            pairs += [(label, baseline) for baseline in BASELINES]
            if method.endswith("-blr1"):
                pairs.append((label, f"{method.removesuffix('-blr1')}{suffix}"))
        elif label.endswith(", TTA flips)"):
            pairs.append((label, label.replace(", TTA flips)", ")")))
    return pairs


def verdicts(records: list[dict]) -> list[str]:
    labels = list(dict.fromkeys(r["label"] for r in records))
    return verdict_lines(records, comparisons(labels), VERDICT_METRICS)


def _budget(bench: Path, config: TrainConfig) -> str:
    """The training budget of the trained runs, read from their configs and histories: one line
    when they share backbone, image size and batch (the quality specs), else one per row."""
    trained = {k: v for k, v in _finished_runs(bench).items() if k != "knn-imagenet"}
    thread = "one thread of a 2-core CPU per run (wall seconds per run in the last column)."
    rows = {label: _run_budget([run for _, run in runs]) for label, runs in trained.items()}
    if len({(b["backbone"], b["size"], b["batch"], b["stages"]) for b in rows.values()}) > 1:
        listed = "; ".join(
            f"{label}: {b['backbone']} at {b['size']} px, {b['epochs']} epochs, batch {b['batch']}"
            for label, b in rows.items()
        )
        return f"Budget per trained row: {listed}; {thread}"
    epochs = sorted(
        {len(read_json(run / "history.json")) for runs in trained.values() for _, run in runs}
    )
    return (
        f"Budget: {config.backbone} at {config.image_size} px, "
        f"{'/'.join(map(str, epochs)) or 0} epochs per trained run, batch {config.batch_size}, "
        + thread
    )


def _run_budget(runs: list[Path]) -> dict:
    """Backbone, image size, batch and epochs (``/``-joined where seeds differ) of one row; a
    two-stage run (``RUN/stage1``) counts its stages."""
    config = TrainConfig.load_saved(runs[0] / "config.yaml")

    def epochs(histories: list[Path]) -> str:
        return "/".join(map(str, sorted({len(read_json(h)) for h in histories})))

    stage1 = [run / "stage1" / "history.json" for run in runs]
    last = epochs([run / "history.json" for run in runs])
    two = all(h.is_file() for h in stage1)
    return {
        "backbone": config.backbone,
        "size": config.image_size,
        "batch": config.batch_size,
        "epochs": f"{epochs(stage1)} + {last} (two stages)" if two else last,
        "stages": 2 if two else 1,
    }


def _targets(rows: list[dict], targets: dict[str, float]) -> list[str]:
    seeds = min((r["runs"] for r in rows), default=0)
    status = (
        ""
        if seeds >= VERDICT_SEEDS
        else (
            f" — indicative only: {seeds} seed(s), fewer than the {VERDICT_SEEDS} a verdict needs"
        )
    )
    lines = [f"Targets (best mean of any row){status}:", ""]
    for column, goal in targets.items():
        scored = [
            r for r in rows if r["mean"].get(column) is not None and "plain" not in r["label"]
        ]
        if not scored:
            continue
        best = max(scored, key=lambda r: r["mean"][column])
        value = best["mean"][column]
        verdict = "met" if value >= goal else f"missed by {goal - value:.3f}"
        lines.append(f"- {LABELS[column]} ≥ {goal:.2f}: {value:.3f} ({best['label']}) — {verdict}")
    return [*lines, ""]


def _validation_choice(records: list[dict]) -> list[str]:
    """Where a method was run under more than one setting: the setting with the higher mean
    best validation MCR (test metrics play no part)."""
    by_method: dict[str, dict[str, list[float]]] = {}
    for record in records:
        method, score = record["metrics"].get("method"), record["metrics"].get("val_mcr")
        if method and score is not None and record["label"].endswith(TRAINED):
            by_method.setdefault(method, {}).setdefault(record["label"], []).append(score)
    lines = []
    for method, settings in by_method.items():
        if len(settings) < 2:
            continue
        means = {label: float(np.mean(scores)) for label, scores in settings.items()}
        best = max(means, key=means.__getitem__)
        listed = ", ".join(f"{label} {mean:.3f}" for label, mean in means.items())
        seeds = min(len(scores) for scores in settings.values())
        lines.append(
            f"- {method}: chosen on validation {best} (best val MCR {listed}; {seeds} seed(s))"
        )
    return ["Chosen on the validation split:", "", *lines, ""] if lines else []


def plot_validation_curves(bench: Path) -> Path | None:
    """Validation MCR per epoch of every trained run (the better of the raw and the EMA
    weights), so a reader sees whether more epochs would have helped."""
    runs = {label: r for label, r in _finished_runs(bench).items() if label != "knn-imagenet"}
    if not runs:
        return None
    figure, axis = plt.subplots(figsize=(6, 3.6))
    for colour, (label, seeds) in zip(plt.cm.tab10.colors, sorted(runs.items()), strict=False):
        for index, (_, run) in enumerate(seeds):
            history = read_json(run / "history.json")
            points = [
                (r["epoch"], max(r["val_mcr"], r.get("ema_val_mcr", -1.0)))
                for r in history
                if "val_mcr" in r
            ]
            if points:
                axis.plot(
                    *zip(*points, strict=True),
                    color=colour,
                    alpha=0.8,
                    label=label if index == 0 else None,
                )
    axis.set_xlabel("epoch")
    axis.set_ylabel("validation MCR")
    axis.legend()
    axis.grid(alpha=0.3)
    return save_figure(figure, bench / "val_mcr.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench", type=Path, help="a quality benchmark's --out folder")
    parser.add_argument("--ensembles", action="store_true", help="also build the seed ensembles")
    parser.add_argument("--tta", action="store_true", help="also score with flip TTA (what-if)")
    args = parser.parse_args()
    text = render(args.bench, collect(args.bench, args.ensembles, args.tta))
    atomic_write_text(args.bench / "results_quality.md", text)
    print(text)
    figure = plot_validation_curves(args.bench)
    if figure is not None:
        print(f"figure: {figure}")


if __name__ == "__main__":
    main()
