"""The verdict lines the table scripts of benchmarks/ print (the rule of evaluation/verdict)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import yaml
from conftest import load_benchmark_script

from medknn.benchmark import load_benchmark_file
from medknn.runs import TrainConfig


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
        "held: constellation-K3 < npairs on Davies-Bouldin (10 seeds, mean Δ 2.955 ± 0.030, "
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


def test_page_verdicts_name_the_constellation_rows_not_yet_run(monkeypatch) -> None:
    pages = load_benchmark_script("page_verdicts")
    command = (
        "(medknn benchmark --spec benchmarks/specs/breastmnist_constellation_ce.yaml "
        "--out runs/breastmnist-constellation)"
    )
    # Both pages now hold issue 19's rows; take npairs-all out of BreastMNIST's rerun.
    rerun = dict(pages.CONSTELLATION_RERUN["breastmnist"])
    rows = rerun.pop("npairs-all")
    monkeypatch.setitem(pages.CONSTELLATION_RERUN, "breastmnist", rerun)
    lines = pages.constellation_lines("breastmnist")
    assert f"not yet run: npairs-all {command}" in lines
    assert not any("npairs-all" in line for line in lines if not line.startswith("not yet"))
    # Once the page holds the row, its verdicts replace the line.
    monkeypatch.setitem(pages.CONSTELLATION_RERUN, "breastmnist", {**rerun, "npairs-all": rows})
    lines = pages.constellation_lines("breastmnist")
    assert any("npairs-all" in line for line in lines)
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
        held = [line for line in lines if line.startswith("held")]
        seeds = [int(re.search(r"\((\d+) seeds", line).group(1)) for line in held]
        assert all(n >= 5 for n in seeds), (page, held)
    bstriplet = pages.bstriplet_lines()  # the 5-seed rerun: the paper's equal draw per group
    assert "held: CE+BST (DM-equal) > CE (RS) on ACC (5 seeds, mean Δ 0.032 ± 0.008)" in bstriplet
    assert (
        "same within noise: CE+BST (DM-equal) ≈ CE (DM-equal) on ACC (5 seeds, mean Δ 0.002 "
        "± 0.015)" in bstriplet
    )


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


OFFICIAL_SPECS = ("official_breastmnist_main_methods", "official_dermamnist_main_methods")


def test_quality_table_names_paper_like_runs_and_compares_them_with_the_baselines() -> None:
    table = load_benchmark_script("quality_table")
    specs = Path(__file__).resolve().parents[1] / "benchmarks" / "specs"
    for name in OFFICIAL_SPECS:  # issue 19's official splits: every entry is paper-like
        base, entries, _ = load_benchmark_file(specs / f"{name}.yaml")
        for entry in entries:
            config = TrainConfig.from_dict({**base, **entry.overrides, "method": entry.method})
            assert table.setting(config) == "paper settings", (name, entry.label)
    assert table.setting(TrainConfig()) == "recipe"  # medknn's defaults
    assert table.setting(TrainConfig(backbone_lr_scale=0.3)) == "recipe"  # the earlier recipe
    labels = ["frozen + logistic regression", "frozen + kNN", "deepknn (paper settings)"]
    assert table.comparisons(labels) == [
        ("deepknn (paper settings)", "frozen + kNN"),
        ("deepknn (paper settings)", "frozen + logistic regression"),
    ]


def _fake_run(run: Path, config: TrainConfig, epochs: int, stage1_epochs: int = 0) -> None:
    for folder, count in ((run, epochs), (run / "stage1", stage1_epochs)):
        if count:
            folder.mkdir(parents=True)
            (folder / "config.yaml").write_text(yaml.safe_dump(config.to_dict()))
            (folder / "history.json").write_text(json.dumps([{"epoch": e} for e in range(count)]))
            (folder / "status.json").write_text(json.dumps({"status": "complete"}))


def test_quality_table_states_each_rows_budget_when_the_rows_differ(tmp_path: Path) -> None:
    table = load_benchmark_script("quality_table")
    lite0 = TrainConfig(data="breastmnist", image_size=64, batch_size=98)
    _fake_run(tmp_path / "knn-imagenet" / "seed0", lite0, 1)
    _fake_run(tmp_path / "deepknn" / "seed0", lite0, 96)
    _fake_run(tmp_path / "supcon" / "seed0", lite0.replace(batch_size=96), 66, stage1_epochs=66)
    small = lite0.replace(backbone="mobilenetv3_small_100", image_size=28, batch_size=36)
    _fake_run(tmp_path / "ce+bst-dm" / "seed0", small, 80)
    assert table._budget(tmp_path, lite0) == (
        "Budget per trained row: ce+bst-dm: mobilenetv3_small_100 at 28 px, 80 epochs, batch 36; "
        "deepknn: tf_efficientnet_lite0 at 64 px, 96 epochs, batch 98; "
        "supcon: tf_efficientnet_lite0 at 64 px, 66 + 66 (two stages) epochs, batch 96; "
        "one thread of a 2-core CPU per run (wall seconds per run in the last column)."
    )
    for label in ("ce+bst-dm", "supcon"):  # one row left: the one-line budget as before
        shutil.rmtree(tmp_path / label)
    assert table._budget(tmp_path, lite0) == (
        "Budget: tf_efficientnet_lite0 at 64 px, 96 epochs per trained run, batch 98, "
        "one thread of a 2-core CPU per run (wall seconds per run in the last column)."
    )
