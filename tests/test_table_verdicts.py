"""The verdict lines the table scripts of benchmarks/ print (the rule of evaluation/verdict)."""

from __future__ import annotations

from pathlib import Path

from conftest import load_benchmark_script


def _records(values: dict[str, list[float]], metric: str) -> list[dict]:
    return [
        {"label": label, "seed": seed, "metrics": {metric: value}}
        for label, seeds in values.items()
        for seed, value in enumerate(seeds)
    ]


def test_constellation_table_pairs_each_k_with_the_baselines_and_the_other_ks() -> None:
    table = load_benchmark_script("constellation_table")
    labels = ["knn-imagenet", "triplet-hard", "npairs", "constellation-K3", "constellation-K7"]
    assert table.comparisons(labels) == [
        ("constellation-K3", "triplet-hard"),
        ("constellation-K3", "npairs"),
        ("constellation-K3", "knn-imagenet"),
        ("constellation-K7", "triplet-hard"),
        ("constellation-K7", "npairs"),
        ("constellation-K7", "knn-imagenet"),
        ("constellation-K7", "constellation-K3"),
        ("triplet-hard", "knn-imagenet"),
        ("triplet-hard", "npairs"),
        ("ce-finetuned", "knn-imagenet"),
        ("ce-finetuned", "npairs"),
    ]
    # ten repeats, Davies-Bouldin: lower is better
    records = _records(
        {"constellation-K3": [2.0 + 0.01 * s for s in range(10)], "npairs": [5.0] * 10},
        "davies_bouldin",
    )
    assert table.verdicts(records) == [
        "held: npairs > constellation-K3 on Davies-Bouldin (10 seeds, mean Δ 2.955 ± 0.030, "
        "lower is better)"
    ]


def test_constellation_table_compares_npairs_all_once_it_has_runs() -> None:
    table = load_benchmark_script("constellation_table")
    labels = ["knn-imagenet", "triplet-hard", "npairs", "npairs-all", "constellation-K3"]
    assert table.comparisons(labels) == [
        ("constellation-K3", "triplet-hard"),
        ("constellation-K3", "npairs"),
        ("constellation-K3", "npairs-all"),  # the same pairs and negatives, K against m terms
        ("constellation-K3", "knn-imagenet"),
        ("triplet-hard", "knn-imagenet"),
        ("triplet-hard", "npairs"),
        ("triplet-hard", "npairs-all"),
        ("ce-finetuned", "knn-imagenet"),
        ("ce-finetuned", "npairs"),
        ("ce-finetuned", "npairs-all"),
        ("npairs-all", "knn-imagenet"),
        ("npairs-all", "npairs"),  # every pair of the batch against one pair per class
    ]
    records = _records(
        {"npairs-all": [0.66 + 0.01 * (s % 2) for s in range(10)], "npairs": [0.60] * 10},
        "knn_bac",
    )
    assert table.verdicts(records) == [
        "held: npairs-all > npairs on kNN BAC (10 seeds, mean Δ 0.065 ± 0.005)"
    ]
    assert table.not_yet_run(labels, "breastmnist", "runs/b") == [
        "not yet run: ce-finetuned (medknn benchmark --spec "
        "benchmarks/specs/breastmnist_constellation_ce.yaml --out runs/b)"
    ]
    assert table.not_yet_run([*labels, "ce-finetuned"], "ham10000", "runs/h") == []


def test_page_verdicts_name_the_constellation_rows_not_yet_run() -> None:
    pages = load_benchmark_script("page_verdicts")
    command = (
        "(medknn benchmark --spec benchmarks/specs/ham10000_constellation_ce.yaml "
        "--out runs/ham10000-constellation)"
    )
    lines = pages.constellation_lines("ham10000")
    assert f"not yet run: npairs-all {command}" in lines
    assert not any("npairs-all" in line for line in lines if not line.startswith("not yet"))
    # Once the page holds the row, its verdicts replace the line.
    pages.CONSTELLATION["ham10000"]["npairs-all"] = ((0.450, 0.030), (0.0, 0.05), (5.0, 1.0))
    lines = pages.constellation_lines("ham10000")
    assert not any(line.startswith("not yet run: npairs-all") for line in lines)
    assert any("constellation-K3" in line and "npairs-all on kNN BAC" in line for line in lines)
    assert any("npairs-all" in line and "npairs on kNN BAC" in line for line in lines)


def test_bstriplet_table_prints_the_pages_comparisons() -> None:
    table = load_benchmark_script("bstriplet_table")
    records = _records({"CE+BST (DM)": [0.85, 0.88, 0.83], "CE (DM)": [0.83, 0.84, 0.83]}, "ACC")
    lines = table.verdict_lines(records, table.COMPARISONS, [("ACC", "ACC")])
    # differences 0.02, 0.04, 0.00: a tie on seed 2
    assert lines == [
        "same within noise: CE+BST (DM) ≈ CE (DM) on ACC (3 seeds, mean Δ 0.020 ± 0.020)"
    ]


def test_quality_table_compares_trained_rows_with_the_baselines() -> None:
    table = load_benchmark_script("quality_table")
    labels = [
        "frozen + logistic regression",
        "frozen + kNN",
        "weighted-ce (recipe)",
        "weighted-ce (recipe, plain rule)",
        "weighted-ce (recipe, TTA flips)",
        "weighted-ce-blr1 (recipe)",
    ]
    assert table.comparisons(labels) == [
        ("weighted-ce (recipe)", "frozen + kNN"),
        ("weighted-ce (recipe)", "frozen + logistic regression"),
        ("weighted-ce (recipe, TTA flips)", "weighted-ce (recipe)"),
        ("weighted-ce-blr1 (recipe)", "frozen + kNN"),
        ("weighted-ce-blr1 (recipe)", "frozen + logistic regression"),
        ("weighted-ce-blr1 (recipe)", "weighted-ce (recipe)"),
    ]
    records = _records(
        {"weighted-ce-blr1 (recipe)": [0.614], "weighted-ce (recipe)": [0.577]}, "mcr"
    )
    assert table.verdicts(records) == [
        "indicative (one seed): weighted-ce-blr1 (recipe) > weighted-ce (recipe) on MCR "
        "(one seed, Δ 0.037)"
    ]


def test_page_verdicts_prints_every_page_under_the_rule() -> None:
    pages = load_benchmark_script("page_verdicts")
    deepknn = pages.deepknn_lines()
    assert (
        "same within noise: weighted-ce ≈ deepknn on kNN BAC (3 seeds, from means ± std, "
        "mean Δ 0.017)"
    ) in deepknn  # the paper's Table 4
    assert (
        "indicative (3 seeds): deepknn > deepknn-bank on MCR (3 seeds, mean Δ 0.031 ± 0.021)"
        in (deepknn)
    )
    for page, lines in ((name, make()) for name, make in pages.PAGES.items()):
        assert lines, page
        assert not any(line.startswith("held") for line in lines if "10 seeds" not in line), page


VERDICT_PREFIXES = ("held", "same within noise", "indicative", "undetermined")


def test_every_verdict_line_on_the_results_pages_is_printed_by_the_script() -> None:
    pages = load_benchmark_script("page_verdicts")
    docs = Path(__file__).resolve().parents[1] / "docs"
    for page, make in pages.PAGES.items():
        path = docs / f"{page}.md" if page == "feature_vectors" else docs / "results" / f"{page}.md"
        printed = set(make())
        quoted = [
            line.strip()
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip().startswith(VERDICT_PREFIXES) and "(" in line and " on " in line
        ]
        missing = [line for line in quoted if line not in printed]
        assert not missing, f"{path.name}: {missing[:2]}"
