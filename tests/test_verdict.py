"""The results' verdict rule (evaluation/verdict.py) on hand-computed cases."""

from __future__ import annotations

import math

import pytest

from medknn.evaluation.verdict import (
    compare,
    folder_name,
    record_values,
    seed_values,
    summary_verdict,
    verdict_lines,
    verdict_section,
)
from medknn.io import atomic_write_json


def test_five_seeds_one_way_and_separated_is_held() -> None:
    # differences 0.02, 0.03, 0.04, 0.03, 0.03: mean 0.03, std sqrt(0.0002 / 4) = 0.00707
    a = {0: 0.52, 1: 0.53, 2: 0.54, 3: 0.53, 4: 0.53}
    b = {seed: 0.50 for seed in range(5)}
    verdict = compare(a, b, a="deepknn", b="triplet", metric="MCR")
    assert verdict.kind == "held" and verdict.label == "held"
    assert verdict.better == "deepknn"
    assert verdict.mean_diff == pytest.approx(0.03)
    assert verdict.std_diff == pytest.approx(math.sqrt(0.0002 / 4))
    assert verdict.line() == "held: deepknn > triplet on MCR (5 seeds, mean Δ 0.030 ± 0.007)"


def test_held_for_b_when_b_is_better() -> None:
    a = {seed: 0.40 for seed in range(6)}
    b = {seed: 0.45 + 0.001 * seed for seed in range(6)}
    verdict = compare(a, b, a="bank", b="in-batch", metric="MCR")
    assert verdict.kind == "held" and verdict.better == "in-batch"
    assert verdict.line().startswith("held: in-batch > bank on MCR (6 seeds, mean Δ 0.05")
    assert verdict.mean_diff == pytest.approx(-0.0525)


def test_one_way_but_mean_below_std_is_same_within_noise() -> None:
    # differences 0.001, 0.001, 0.001, 0.001, 0.1: all positive, mean 0.0208, std 0.0443
    a = {0: 0.501, 1: 0.501, 2: 0.501, 3: 0.501, 4: 0.6}
    b = {seed: 0.5 for seed in range(5)}
    verdict = compare(a, b)
    assert verdict.std_diff > abs(verdict.mean_diff)
    assert verdict.kind == "same within noise" and verdict.better is None
    assert verdict.line().startswith("same within noise: A ≈ B on metric (5 seeds, mean Δ 0.021")


def test_mixed_signs_are_same_within_noise_however_large_the_mean() -> None:
    # differences 0.1, 0.1, 0.1, 0.1, -0.001: mean 0.0798 > std 0.0447, but one points back
    a = {0: 0.6, 1: 0.6, 2: 0.6, 3: 0.6, 4: 0.499}
    b = {seed: 0.5 for seed in range(5)}
    verdict = compare(a, b)
    assert abs(verdict.mean_diff) > verdict.std_diff
    assert verdict.kind == "same within noise"


def test_a_tie_on_one_seed_breaks_the_direction() -> None:
    a = {0: 0.6, 1: 0.6, 2: 0.6, 3: 0.6, 4: 0.5}
    b = {seed: 0.5 for seed in range(5)}
    assert compare(a, b).kind == "same within noise"


def test_all_ties_are_same_within_noise() -> None:
    values = {seed: 0.7 for seed in range(5)}
    verdict = compare(values, dict(values))
    assert verdict.kind == "same within noise"
    assert verdict.mean_diff == 0 and verdict.std_diff == 0
    assert verdict.line() == "same within noise: A ≈ B on metric (5 seeds, mean Δ 0.000 ± 0.000)"


def test_fewer_than_five_seeds_is_at_most_indicative() -> None:
    # the in-batch against bank MCR of docs/results/ham10000_deepknn.md, seeds 0-2:
    # differences 0.053, 0.029, 0.011: mean 0.031, std 0.0211 -> indicative (3 seeds)
    in_batch = {0: 0.492, 1: 0.472, 2: 0.484}
    bank = {0: 0.439, 1: 0.443, 2: 0.473}
    verdict = compare(in_batch, bank, a="in-batch", b="bank", metric="MCR")
    assert verdict.kind == "indicative" and verdict.label == "indicative (3 seeds)"
    assert verdict.better == "in-batch"
    assert verdict.mean_diff == pytest.approx(0.031)
    assert verdict.std_diff == pytest.approx(0.021071, abs=1e-6)
    assert verdict.line() == (
        "indicative (3 seeds): in-batch > bank on MCR (3 seeds, mean Δ 0.031 ± 0.021)"
    )
    # with the same differences on five seeds it would be held
    five = compare({**in_batch, 3: 0.5, 4: 0.5}, {**bank, 3: 0.47, 4: 0.47})
    assert five.kind == "held"


def test_few_seeds_inside_the_noise_are_same_within_noise() -> None:
    # MLP + deep kNN against MLP + CE, RS in %, docs/feature_vectors.md: 16.6, -8.7, 0.0
    verdict = compare({0: 20.8, 1: 8.7, 2: 4.2}, {0: 4.2, 1: 17.4, 2: 4.2}, metric="RS")
    assert verdict.kind == "same within noise" and verdict.better is None
    assert verdict.label == "same within noise"
    assert "(3 seeds," in verdict.line()


def test_one_seed_is_indicative_never_held() -> None:
    verdict = compare({0: 0.517}, {0: 0.504}, a="M = 7", b="M = 5", metric="MCR")
    assert verdict.kind == "indicative" and verdict.label == "indicative (one seed)"
    assert verdict.better == "M = 7"
    assert math.isnan(verdict.std_diff)
    assert verdict.line() == "indicative (one seed): M = 7 > M = 5 on MCR (one seed, Δ 0.013)"
    tie = compare({0: 0.5}, {0: 0.5})
    assert tie.kind == "indicative" and tie.better is None
    assert tie.line() == "indicative (one seed): A = B on metric (one seed, Δ 0.000)"


def test_unpaired_seeds_are_left_out_and_reported() -> None:
    a = {0: 0.6, 1: 0.6, 2: 0.6, 3: 0.6, 4: 0.6, 7: 0.0}
    b = {0: 0.5, 1: 0.5, 2: 0.5, 3: 0.5, 4: 0.49, 9: 1.0}
    verdict = compare(a, b)
    assert verdict.seeds == (0, 1, 2, 3, 4) and verdict.unpaired == (7, 9)
    assert verdict.kind == "held"
    assert verdict.line().endswith("; unpaired seed(s) 7, 9 left out")
    none = compare({0: 1.0}, {1: 1.0})
    assert none.kind == "no paired seeds" and none.unpaired == (0, 1)
    assert none.line().startswith("no paired seeds: A vs B")


def test_lower_is_better_names_the_lower_value_better() -> None:
    a = {seed: 3.0 + 0.01 * seed for seed in range(5)}
    b = {seed: 5.0 for seed in range(5)}
    verdict = compare(a, b, a="constellation", b="npairs", metric="DB", higher_is_better=False)
    assert verdict.kind == "held" and verdict.better == "constellation"
    assert verdict.line().startswith("held: constellation < npairs on DB")
    assert verdict.line().endswith(", lower is better)")


def test_records_and_run_folders(tmp_path) -> None:
    records = [
        {"label": label, "seed": seed, "metrics": {"mcr": value, "per_class": {"x": {"r": value}}}}
        for label, base in (("CE+BST (DM)", 0.6), ("CE (DM)", 0.5))
        for seed, value in enumerate([base + 0.01 * s for s in range(5)])
    ]
    assert record_values(records, "CE (DM)", "mcr") == pytest.approx(
        {0: 0.5, 1: 0.51, 2: 0.52, 3: 0.53, 4: 0.54}
    )
    lines = verdict_lines(
        records,
        [("CE+BST (DM)", "CE (DM)"), ("CE+BST (DM)", "not run")],
        [("mcr", "MCR"), (lambda m: m["per_class"]["x"]["r"], "recall x")],
    )
    assert lines == [
        "held: CE+BST (DM) > CE (DM) on MCR (5 seeds, mean Δ 0.100 ± 0.000)",
        "held: CE+BST (DM) > CE (DM) on recall x (5 seeds, mean Δ 0.100 ± 0.000)",
    ]
    assert "≥ 5 paired seeds" in verdict_section(lines) and verdict_section([]) == ""
    assert folder_name("CE+BST (DM)") == "CE+BST__DM_"
    for record in records:
        run = tmp_path / folder_name(record["label"]) / f"seed{record['seed']}"
        atomic_write_json(run / "metrics.json", record["metrics"])
    (tmp_path / "CE__DM_" / "seed5").mkdir()  # an unfinished run: no metrics.json yet
    assert seed_values(tmp_path, "CE (DM)", "mcr") == record_values(records, "CE (DM)", "mcr")
    assert seed_values(tmp_path, "CE+BST__DM_", "mcr") == record_values(
        records, "CE+BST (DM)", "mcr"
    )
    assert seed_values(tmp_path, "missing", "mcr") == {}


def test_summary_verdict_decides_only_what_means_and_stds_can() -> None:
    # Table 4 of the Deep kNN paper on HAM10000: kNN BAC of weighted CE 0.507 ± 0.036 against
    # deep kNN 0.490 ± 0.002: the differences' std is at least 0.034 > 0.017
    assert summary_verdict(
        (0.507, 0.036), (0.490, 0.002), 3, a_label="weighted-ce", b_label="deepknn"
    ).startswith("same within noise: weighted-ce ≈ deepknn on metric (3 seeds")
    # SupCon against CE, accuracy: 0.602 ± 0.004 against 0.778 ± 0.001: every seed the same way
    line = summary_verdict((0.602, 0.004), (0.778, 0.001), 3, a_label="supcon", b_label="ce")
    assert line == (
        "indicative (3 seeds): ce > supcon on metric (3 seeds, from means ± std, mean Δ 0.176)"
    )
    assert summary_verdict((0.70, 0.01), (0.60, 0.01), 10).startswith("held: A > B")
    assert summary_verdict((0.854, 0.026), (0.834, 0.007), 3).startswith("undetermined")
    assert "held is possible" in summary_verdict((0.46, 0.03), (0.40, 0.04), 10)
    assert summary_verdict((0.5, 0.0), (0.4, 0.0), 1).startswith("indicative (one seed): A > B")


def test_summary_verdict_names_the_better_side_first_when_lower_is_better() -> None:
    # Davies-Bouldin of the frozen features (6.7 ± 0.0) against a trained embedding (4.0 ± 0.4)
    line = summary_verdict(
        (6.688, 0.0),
        (4.042, 0.425),
        10,
        a_label="frozen",
        b_label="trained",
        higher_is_better=False,
    )
    assert line.startswith("held: trained < frozen on metric (10 seeds")
    assert line.endswith("lower is better)")
    assert summary_verdict(
        (2.0, 0.0), (3.0, 0.0), 1, a_label="x", b_label="y", higher_is_better=False
    ).startswith("indicative (one seed): x < y")
