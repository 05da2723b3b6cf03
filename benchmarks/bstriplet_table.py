"""A BSTriplet-paper table (SEN, SPE, ACC, AUC; mean ± std over seeds) from a benchmark's results.

python benchmarks/bstriplet_table.py runs/pneumoniamnist-bstriplet --positive pneumonia

For two classes SEN and SPE are those of the ``--positive`` (disease) class, as in the paper's
Chest-2 table; with more classes, the macro averages of eq. 10-11. The MedMNIST v2 ResNet-18
(28) figures for PneumoniaMNIST are printed beneath for reference, then each run's values by seed
(the page keeps them, so that benchmarks/page_verdicts.py can recompute its verdicts), then the
verdict of every comparison docs/results/pneumoniamnist_bstriplet.md makes (the results' rule,
``medknn.evaluation.verdict``: paired seeds, held only with at least 5).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from medknn.evaluation.verdict import verdict_lines, verdict_section
from medknn.io import atomic_write_text, read_json
from medknn.reports import markdown_table, per_seed_table, summarize

COLUMNS = ("SEN", "SPE", "ACC", "AUC")
# (A, B) pairs of the page, each on every column; pairs missing from the benchmark are skipped.
COMPARISONS = (
    ("CE+BST (DM)", "CE (DM)"),
    ("CE+BST (RS)", "CE (RS)"),
    ("CE+BST (DM)", "CE (RS)"),
    ("CE+BST (DM)", "CE+Triplet"),
    ("CE+BST (DM)", "CE+LS"),
    ("CE (DM)", "CE (RS)"),  # the DM sampler against random batches
    ("CE+BST (DM)", "CE+BST (RS)"),
    ("CE+BST (DM-equal)", "CE+BST (DM)"),  # the paper's equal draw per group
    # The paper's sampler against every baseline, and against CE under the same batches: the
    # equal draw balances the classes, which alone may move SPE.
    ("CE+BST (DM-equal)", "CE (DM-equal)"),
    ("CE+BST (DM-equal)", "CE (RS)"),
    ("CE+BST (DM-equal)", "CE+Triplet"),
    ("CE+BST (DM-equal)", "CE+LS"),
    ("CE (DM-equal)", "CE (RS)"),
)
MEDMNIST_RESNET18_28 = "MedMNIST v2 ResNet-18 (28), published: ACC 0.854, AUC 0.944."


def paper_metrics(metrics: dict, positive: str) -> dict:
    per_class = metrics["per_class"]
    if len(per_class) == 2:
        if positive not in per_class:
            raise SystemExit(f"--positive {positive!r} is not a class; classes: {list(per_class)}")
        sensitivity = per_class[positive]["recall"]
        specificity = per_class[positive]["specificity"]
    else:
        sensitivity, specificity = metrics["sensitivity"], metrics["specificity"]
    return {
        "SEN": sensitivity,
        "SPE": specificity,
        "ACC": metrics["accuracy"],
        "AUC": metrics["auc"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the benchmark's --out folder")
    parser.add_argument("--positive", default="pneumonia", help="the disease class (2 classes)")
    args = parser.parse_args()
    records = read_json(args.out / "results.json")["records"]
    paper_records = [{**r, "metrics": paper_metrics(r["metrics"], args.positive)} for r in records]
    rows = summarize(paper_records, COLUMNS)
    text = markdown_table(rows, COLUMNS) + "\n" + MEDMNIST_RESNET18_28 + "\n\n"
    text += per_seed_table(paper_records, COLUMNS)
    text += verdict_section(
        verdict_lines(paper_records, COMPARISONS, [(column, column) for column in COLUMNS])
    )
    print(text)
    atomic_write_text(args.out / "results_bstriplet.md", text)


if __name__ == "__main__":
    main()
