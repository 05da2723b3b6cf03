"""The SupCon paper's tables and figure from a benchmark's results (Marrakchi et al. 2021).

python benchmarks/supcon_table.py runs/ham10000-supcon --figure ce supcon

Table 1 layout: accuracy and macro F-score, mean ± std over seeds, per method. Table 3 layout:
the mean F-score of the majority, middle and minority training classes per method (per
temperature for the temperature benchmark). Fig. 3: per-class F-score of the ``--figure``
methods side by side, classes by training count (majority left). Written to
``BENCH_DIR/results_supcon.md`` and ``BENCH_DIR/per_class_f1.png``; for a benchmark of several
temperatures also ``BENCH_DIR/temperature_f1.png`` (the three group F-scores against τ,
without and with resampling). Last, the verdict of every comparison
docs/results/ham10000_supcon.md makes (the results' rule, ``medknn.evaluation.verdict``: paired
seeds, held only with at least 5), including the ``linear-imagenet`` control and, for the
temperature benchmark, every τ against τ = 0.1 without and with resampling; before them, each
seed's values of those metrics (what a page keeps when its run folders are not).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from medknn.evaluation.verdict import verdict_lines, verdict_section  # noqa: E402
from medknn.io import atomic_write_text, read_json  # noqa: E402
from medknn.methods.recipes_imbalance import SUPCON_TEMPERATURE  # noqa: E402
from medknn.reports import (  # noqa: E402
    markdown_table,
    per_seed_table,
    plot_per_class_f1,
    summarize,
)
from medknn.runs import RunDir, TrainConfig  # noqa: E402

TABLE1 = ("accuracy", "macro_f1")
TABLE3 = ("f1_majority", "f1_middle", "f1_minority")
FIGURE_DEFAULT = ("ce", "supcon")
# The page's comparisons (A, B); pairs missing from the benchmark are skipped.
COMPARISONS = (
    ("supcon", "ce"),
    ("supcon", "focal"),
    ("supcon", "ldam"),
    ("supcon+resample", "supcon"),
    ("focal", "ce"),
    ("ldam", "ce"),
    ("ce+resample", "ce"),
    ("supcon", "linear-imagenet"),  # the contrastive stage against balanced batches alone
    ("linear-imagenet", "ce"),
)
VERDICT_METRICS = (
    ("accuracy", "Acc"),
    ("macro_f1", "macro F1"),
    ("mcr", "MCR"),
    ("f1_majority", "F1 majority"),
    ("f1_middle", "F1 middle"),
    ("f1_minority", "F1 minority"),
)


def class_order(records: list[dict]) -> list[str]:
    """Classes by training count, largest first (the runs of a benchmark share one data set)."""
    counts = read_json(RunDir(Path(records[0]["run"])).data)["counts"]["train"]
    return sorted(counts, key=lambda name: -counts[name])


def figure_labels(records: list[dict], asked: list[str] | None) -> list[str]:
    labels = list(dict.fromkeys(r["label"] for r in records))
    chosen = asked or [label for label in FIGURE_DEFAULT if label in labels] or labels
    unknown = [label for label in chosen if label not in labels]
    if unknown:
        raise SystemExit(f"--figure {unknown[0]!r} is not a label here; labels: {labels}")
    return chosen


def temperature_of(record: dict) -> float | None:
    """The stage-1 temperature of a SupCon run (None for the other methods)."""
    if not record["method"].startswith("supcon"):
        return None
    stage_one = TrainConfig.load_saved(RunDir(Path(record["run"])).first_stage / "config.yaml")
    return float(stage_one.method_options.get("temperature", SUPCON_TEMPERATURE))


def plot_temperature(records: list[dict], path: Path) -> Path | None:
    """Group F-scores against τ, one line per group, dashed with resampling (seeds averaged)."""
    points: dict[tuple[str, bool], dict[float, list[float]]] = {}
    for record in records:
        tau = temperature_of(record)
        if tau is None:
            continue
        resampled = record["method"].endswith("+resample")
        for group in TABLE3:
            points.setdefault((group, resampled), {}).setdefault(tau, []).append(
                record["metrics"][group]
            )
    if len({tau for series in points.values() for tau in series}) < 2:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for (group, resampled), series in sorted(points.items()):
        taus = sorted(series)
        color = {"f1_majority": "C0", "f1_middle": "C1", "f1_minority": "C2"}[group]
        ax.plot(
            taus,
            [sum(series[t]) / len(series[t]) for t in taus],
            marker="o",
            color=color,
            linestyle="--" if resampled else "-",
            label=f"{group.removeprefix('f1_')}{' + resample' if resampled else ''}",
        )
    ax.set(xscale="log", xlabel="temperature τ", ylabel="F-score", title="F-score by class group")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def temperature_comparisons(labels: list[str]) -> list[tuple[str, str]]:
    """Every ``tau X`` (``+ resample``) label against ``tau 0.1`` of its own group."""
    pairs = []
    for label in labels:
        if label.startswith("tau "):
            reference = "tau 0.1 + resample" if label.endswith(" + resample") else "tau 0.1"
            if label != reference:
                pairs.append((label, reference))
    return pairs


def verdicts(records: list[dict]) -> list[str]:
    labels = list(dict.fromkeys(r["label"] for r in records))
    comparisons = [*COMPARISONS, *temperature_comparisons(labels)]
    return verdict_lines(records, comparisons, VERDICT_METRICS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the benchmark's --out folder")
    parser.add_argument(
        "--figure", nargs="+", help="labels drawn in Fig. 3 (default: ce and supcon if present)"
    )
    args = parser.parse_args()
    records = read_json(args.out / "results.json")["records"]
    groups = records[0]["metrics"]["frequency_groups"]
    figure = plot_per_class_f1(
        {
            label: [r["metrics"] for r in records if r["label"] == label]
            for label in figure_labels(records, args.figure)
        },
        args.out / "per_class_f1.png",
        class_order=class_order(records),
        title="F-score per class, classes by training count",
    )
    text = (
        "Table 1 layout: accuracy and macro F-score\n\n"
        + markdown_table(summarize(records, TABLE1), TABLE1)
        + "\nTable 3 layout: mean F-score of the classes grouped by training count ("
        + "; ".join(f"{group}: {', '.join(names) or '-'}" for group, names in groups.items())
        + ")\n\n"
        + markdown_table(summarize(records, TABLE3), TABLE3)
        + f"\nFig. 3 layout: ![per-class F-score]({figure.name})\n"
        + "\nPer seed, what the verdicts read:\n\n"
        + per_seed_table(records, [key for key, _ in VERDICT_METRICS])
    )
    temperature = plot_temperature(records, args.out / "temperature_f1.png")
    if temperature is not None:
        text += f"\nTable 3 as a plot: ![F-score against temperature]({temperature.name})\n"
    text += verdict_section(verdicts(records))
    print(text)
    atomic_write_text(args.out / "results_supcon.md", text)


if __name__ == "__main__":
    main()
