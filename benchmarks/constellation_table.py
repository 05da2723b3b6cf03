"""The constellation paper's Table 1 (few-shot kNN BAC, silhouette, Davies–Bouldin) with verdicts.

python benchmarks/constellation_table.py runs/breastmnist-constellation

The table of ``medknn benchmark`` (mean ± std over the repeats, each seed one draw of the
training images, the same draw for every method), then the verdict of every comparison
docs/results/*_constellation.md makes, under the results' rule (``medknn.evaluation.verdict``:
repeats paired by seed, held only with at least 5): constellation against triplet-hard, N-pairs,
the frozen features and the CE-fine-tuned network; the values of K against each other; the
triplet loss against the baselines. Writes ``results_constellation.md`` beside ``results.md``.
"""

from __future__ import annotations

import argparse
import re
from itertools import combinations
from pathlib import Path

from medknn.evaluation.verdict import verdict_lines, verdict_section
from medknn.io import atomic_write_text, read_json
from medknn.reports import markdown_table, summarize
from medknn.reports.tables import DEFAULT_COLUMNS, EMBEDDING_COLUMNS, LOWER_IS_BETTER

COLUMNS = (*DEFAULT_COLUMNS, *EMBEDDING_COLUMNS)
VERDICT_METRICS = (
    ("knn_bac", "kNN BAC"),
    ("silhouette", "silhouette"),
    ("davies_bouldin", "Davies-Bouldin"),
)
BASELINES = ("triplet-hard", "npairs", "npairs-all", "knn-imagenet", "ce-finetuned")
CONSTELLATION = re.compile(r"constellation-K(\d+)")


def comparisons(labels: list[str]) -> list[tuple[str, str]]:
    """Each constellation-K* label against each baseline present; larger K against smaller K;
    triplet-hard and the CE-fine-tuned network against the frozen features and N-pairs."""
    ks = sorted(
        (int(m.group(1)), label) for label in labels if (m := CONSTELLATION.fullmatch(label))
    )
    pairs = [(label, base) for _, label in ks for base in BASELINES if base in labels]
    pairs += [(b, a) for (_, a), (_, b) in combinations(ks, 2)]
    for trained in ("triplet-hard", "ce-finetuned"):
        pairs += [(trained, base) for base in ("knn-imagenet", "npairs") if trained != base]
    return pairs


def verdicts(records: list[dict]) -> list[str]:
    labels = list(dict.fromkeys(r["label"] for r in records))
    return verdict_lines(
        records, comparisons(labels), VERDICT_METRICS, lower_is_better=LOWER_IS_BETTER
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the benchmark's --out folder")
    args = parser.parse_args()
    records = read_json(args.out / "results.json")["records"]
    columns = tuple(c for c in COLUMNS if any(r["metrics"].get(c) is not None for r in records))
    text = markdown_table(summarize(records, columns), columns) + verdict_section(verdicts(records))
    print(text)
    atomic_write_text(args.out / "results_constellation.md", text)


if __name__ == "__main__":
    main()
