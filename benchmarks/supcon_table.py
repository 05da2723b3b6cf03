"""The SupCon paper's tables and figure from a benchmark's results (Marrakchi et al. 2021).

python benchmarks/supcon_table.py runs/ham10000-supcon --figure ce supcon

Table 1 layout: accuracy and macro F-score, mean ± std over seeds, per method. Table 3 layout:
the mean F-score of the majority, middle and minority training classes per method (per
temperature for the temperature benchmark). Fig. 3: per-class F-score of the ``--figure``
methods side by side, classes by training count (majority left). Written to
``BENCH_DIR/results_supcon.md`` and ``BENCH_DIR/per_class_f1.png``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from medknn.io import atomic_write_text, read_json
from medknn.reports import markdown_table, plot_per_class_f1, summarize
from medknn.training import RunDir

TABLE1 = ("accuracy", "macro_f1")
TABLE3 = ("f1_majority", "f1_middle", "f1_minority")
FIGURE_DEFAULT = ("ce", "supcon")


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
    )
    print(text)
    atomic_write_text(args.out / "results_supcon.md", text)


if __name__ == "__main__":
    main()
