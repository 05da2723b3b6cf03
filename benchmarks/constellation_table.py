"""The constellation paper's Table 1 (few-shot kNN BAC, silhouette, Davies–Bouldin) with verdicts.

python benchmarks/constellation_table.py runs/breastmnist-constellation

The table of ``medknn benchmark`` (mean ± std over the repeats, each seed one draw of the
training images, the same draw for every method), then the verdict of every comparison
docs/results/*_constellation.md makes, under the results' rule (``medknn.evaluation.verdict``:
repeats paired by seed, held only with at least 5): constellation against triplet-hard, N-pairs
(PML's, one pair per class; npairs-all, every pair), the frozen features and the CE-fine-tuned
network; the values of K against each other; the triplet loss, the CE-fine-tuned network and
npairs-all against the baselines. Issue 19's baselines missing from the folder are named with
the command that adds them. Writes ``results_constellation.md`` beside ``results.md``.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable
from itertools import combinations
from pathlib import Path

import yaml

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
# Issue 19's baselines: the specs/*_constellation_ce.yaml entries beside the original table's.
ISSUE_19 = ("ce-finetuned", "npairs-all")
SPECS = Path(__file__).parent / "specs"


def comparisons(labels: list[str]) -> list[tuple[str, str]]:
    """Each constellation-K* label against each baseline present; larger K against smaller K;
    triplet-hard and the CE-fine-tuned network against the frozen features and N-pairs, and
    with npairs-all present, against it too and it against the frozen features and N-pairs."""
    ks = sorted(
        (int(m.group(1)), label) for label in labels if (m := CONSTELLATION.fullmatch(label))
    )
    pairs = [(label, base) for _, label in ks for base in BASELINES if base in labels]
    pairs += [(b, a) for (_, a), (_, b) in combinations(ks, 2)]
    every_pair = ("npairs-all",) if "npairs-all" in labels else ()
    for trained in ("triplet-hard", "ce-finetuned", *every_pair):
        pairs += [(trained, b) for b in ("knn-imagenet", "npairs", *every_pair) if trained != b]
    return pairs


def not_yet_run(labels: Iterable[str], data: str, out: str | Path) -> list[str]:
    """``not yet run: LABEL (COMMAND)`` for each of issue 19's baselines missing from
    ``labels``, the command being the spec of ``data`` that adds it into ``out``."""
    spec = SPECS / f"{data}_constellation_ce.yaml"
    if spec.is_file():
        command = f"medknn benchmark --spec benchmarks/specs/{spec.name} --out {out}"
    else:
        command = f"add it to the spec's methods and rerun it with --out {out}"
    present = set(labels)
    return [f"not yet run: {label} ({command})" for label in ISSUE_19 if label not in present]


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
    labels = [r["label"] for r in records]
    missing = not_yet_run(labels, _data_of(args.out), args.out)
    text += "".join(f"\n{line}" for line in missing) + ("\n" if missing else "")
    print(text)
    atomic_write_text(args.out / "results_constellation.md", text)


def _data_of(out: Path) -> str:
    """The ``data`` of the folder's runs, from a run's ``config.yaml`` (``DATA`` if none)."""
    for config in sorted(out.glob("*/seed*/config.yaml")):
        return str(yaml.safe_load(config.read_text(encoding="utf-8")).get("data", "DATA"))
    return "DATA"


if __name__ == "__main__":
    main()
