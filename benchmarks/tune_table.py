"""docs/results/tune.md's table for one ``medknn tune`` study, beside the hand-set runs.

python benchmarks/tune_table.py runs/tune-pneumoniamnist-60m --hand-set runs/quality-candidates \
    --labels deepknn-blr1,weighted-ce-blr1

Rows: the study's best single trial and its top trials' ensemble (each chosen on validation by
the study; test read once, after the choice, from ``OUT/result.json``); the study's trial 0, the
hand-set recipe (the README command's method at its defaults) inside the same budget; with
``--hand-set BENCH``, each trained label of a quality benchmark (``quality_table.py``'s rows, mean
± std over its seeds, and the ensembles already built there); the published figures. Then one
line per metric for the study's recommended model against each hand-set row: a single study has
no paired seeds, so the line is "indicative (one study)" with its direction, and says "within the
hand-set seeds' spread" when the gap is no larger than their standard deviation.
Writes ``OUT/tune_table.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import optuna

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality_table import REFERENCES, collect  # noqa: E402

from medknn.io import atomic_write_text, read_json  # noqa: E402
from medknn.reports import summarize  # noqa: E402
from medknn.runs import TrainConfig  # noqa: E402
from medknn.tuning.budget import describe_seconds  # noqa: E402
from medknn.tuning.storage import load_study, open_storage  # noqa: E402

METRICS = (("accuracy", "Acc"), ("mcr", "MCR"), ("auc", "AUC"))
TRIAL_SETTINGS = ("image_size", "epochs", "lr", "backbone_lr_scale", "resample", "sampler")


def trial_label(run: Path) -> str:
    """The method and the settings a reader compares: size, epochs, lr, scale, sampling."""
    config = TrainConfig.load_saved(run / "config.yaml")

    def shown(key: str) -> str:
        value = getattr(config, key)
        if value is None:
            return f"{key} default"
        return f"{key} {value:.3g}" if isinstance(value, float) else f"{key} {value}"

    return f"{config.method}: " + ", ".join(shown(key) for key in TRIAL_SETTINGS)


def study_span(out: Path) -> str:
    """From the first trial's start to the last trial's end, as the study's storage records."""
    study = load_study(open_storage(None, out), out.name, str(out))
    starts = [t.datetime_start for t in study.trials if t.datetime_start]
    ends = [t.datetime_complete for t in study.trials if t.datetime_complete]
    if not starts or not ends:
        return "unknown"
    return describe_seconds((max(ends) - min(starts)).total_seconds())


def study_rows(out: Path) -> tuple[list[dict], str]:
    """The study's rows (validation and test metrics) and its budget line."""
    result = read_json(out / "result.json")
    rows = [
        {
            "label": f"best trial {result['best_trial']} ({trial_label(Path(result['best_run']))})",
            "val": result["validation"]["best"],
            "test": result["test"]["best"],
        }
    ]
    if "ensemble" in result["test"]:
        members = ", ".join(map(str, result["ensemble_members"]))
        rows.append(
            {
                "label": f"ensemble of trials {members}",
                "val": result["validation"]["ensemble"],
                "test": result["test"]["ensemble"],
            }
        )
    recommended = "ensemble" if Path(result["recommended"]).name == "ensemble" else "best"
    rows[0 if recommended == "best" else 1]["label"] += " — recommended"
    trial0 = out / "trials" / "0"
    if (trial0 / "metrics.json").exists() and read_json(trial0 / "status.json").get(
        "status"
    ) == "complete":
        metrics = read_json(trial0 / "metrics.json")
        rows.append(
            {
                "label": f"trial 0, the hand-set recipe ({trial_label(trial0)})",
                "val": _trial_value(out, 0),
                "test": metrics,
            }
        )
    counts = ", ".join(f"{n} {state}" for state, n in result["trials"].items())
    budget = (
        f"Budget: `medknn tune` in {out.name}: trials {counts}; trials trained from the first "
        f"start to the last end in {study_span(out)}; one torch thread per trial."
    )
    return rows, budget


def _trial_value(out: Path, number: int) -> float | None:
    for entry in read_json(out / "result.json")["fingerprint"]:
        if entry[0] == number:
            return entry[2]
    return None


def hand_set_rows(bench: Path, labels: list[str] | None = None) -> list[dict]:
    """quality_table's trained rows and already-built seed ensembles of a quality benchmark
    (only the spec labels in ``labels``, if given)."""

    def wanted(label: str) -> bool:
        return labels is None or label in labels

    records = [
        r
        for r in collect(bench, ensembles=False)
        if r["label"].endswith(" (recipe)") and wanted(r["label"].removesuffix(" (recipe)"))
    ]
    for ensemble in sorted(bench.glob("ensemble-*/metrics.json")):
        label = ensemble.parent.name.removeprefix("ensemble-")
        if wanted(label):
            records.append(
                {"label": f"ensemble of {label} seeds", "seed": 0, "metrics": read_json(ensemble)}
            )
    return summarize(records, [key for key, _ in METRICS])


def _cell(mean: float | None, std: float | None = None) -> str:
    if mean is None:
        return "–"
    return f"{mean:.3f}" if not std or std < 5e-4 else f"{mean:.3f} ± {std:.3f}"


def render(out: Path, bench: Path | None, labels: list[str] | None = None) -> str:
    rows, budget = study_rows(out)
    data, split = _data_and_split(out / "trials" / "0")
    if bench is not None:
        theirs = _data_and_split(next(bench.glob("*/seed*")))
        if theirs != (data, split):
            raise SystemExit(
                f"{bench} holds runs on {theirs[0]} ({theirs[1]} split), the study {out} on "
                f"{data} ({split} split): give the hand-set benchmark of the study's data."
            )
    hand_set = hand_set_rows(bench, labels) if bench else []
    header = ["model", "validation MCR", *[f"test {name}" for _, name in METRICS], "seeds"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [_cell(row["test"].get(key)) for key, _ in METRICS]
        lines.append(f"| {row['label']} | {_cell(row['val'])} | " + " | ".join(cells) + " | 1 |")
    for row in hand_set:
        cells = [_cell(row["mean"][key], row["std"][key]) for key, _ in METRICS]
        lines.append(
            f"| hand-set: {row['label']} | – | " + " | ".join(cells) + f" | {row['runs']} |"
        )
    reference = REFERENCES.get((data, split), {})
    text = [f"## {data}, split {split}", "", budget, "", *lines, ""]
    if reference:
        text += [f"Published: {reference['published']}.", ""]
    recommended = next(row for row in rows if row["label"].endswith("recommended"))
    text += comparison_lines(recommended, hand_set)
    return "\n".join(text) + "\n"


def _data_and_split(run: Path) -> tuple[str, str]:
    """The data set and the split as the run resolved it (not "auto")."""
    record = read_json(run / "data.json")
    return record["name"], record["split_strategy"]


def comparison_lines(recommended: dict, hand_set: list[dict]) -> list[str]:
    """The recommended model against each hand-set row: one study, so indicative."""
    lines = []
    for row in hand_set:
        parts = []
        for key, name in METRICS:
            ours, theirs, spread = recommended["test"].get(key), row["mean"][key], row["std"][key]
            if ours is None or theirs is None:
                continue
            gap = ours - theirs
            side = "above" if gap > 0 else "below" if gap < 0 else "equal"
            noise = ", within the seeds' spread" if abs(gap) <= spread else ""
            parts.append(f"{name} {side}{noise} ({ours:.3f} against {_cell(theirs, spread)})")
        if parts:
            lines.append(
                f"- indicative (one study): the recommended model against {row['label']}: "
                + "; ".join(parts)
            )
    return ["Against the hand-set runs:", "", *lines, ""] if lines else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path, help="a `medknn tune` --out folder")
    parser.add_argument("--hand-set", type=Path, help="a quality benchmark's --out folder")
    parser.add_argument("--labels", help="comma-separated spec labels of --hand-set to show")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    labels = args.labels.split(",") if args.labels else None
    text = render(args.study, args.hand_set, labels)
    atomic_write_text(args.study / "tune_table.md", text)
    print(text)


if __name__ == "__main__":
    main()
