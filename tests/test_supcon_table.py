"""benchmarks/supcon_table.py: the temperature of each SupCon run and the Table 3 plot."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import load_benchmark_script

from medknn.runs import TrainConfig


@pytest.fixture(scope="module")
def supcon_table() -> ModuleType:
    return load_benchmark_script("supcon_table")


def fake_run(
    root: Path, method: str, options: dict[str, Any], tiny_options: dict[str, Any]
) -> dict[str, Any]:
    """A record as a benchmark writes it, with just the stage-1 config on disk."""
    run = root / f"{method}-{options.get('temperature', 'default')}"
    (run / "stage1").mkdir(parents=True)
    config = TrainConfig.from_dict({**tiny_options, "method": method, "method_options": options})
    (run / "stage1" / "config.yaml").write_text(config.to_yaml())
    metrics = {"f1_majority": 0.9, "f1_middle": 0.5, "f1_minority": 0.3}
    return {"label": run.name, "method": method, "run": str(run), "metrics": metrics}


def test_temperature_comes_from_stage_one_with_the_default_filled_in(
    supcon_table: ModuleType, tmp_path: Path, tiny_options: dict[str, Any]
) -> None:
    set_low = fake_run(tmp_path, "supcon", {"temperature": 0.05}, tiny_options)
    default = fake_run(tmp_path, "supcon+resample", {}, tiny_options)
    assert supcon_table.temperature_of(set_low) == 0.05
    assert supcon_table.temperature_of(default) == 0.1
    assert supcon_table.temperature_of({"method": "ce", "run": "unused"}) is None


def test_the_temperature_plot_needs_two_temperatures(
    supcon_table: ModuleType, tmp_path: Path, tiny_options: dict[str, Any]
) -> None:
    one = [fake_run(tmp_path / "a", "supcon", {}, tiny_options)]
    assert supcon_table.plot_temperature(one, tmp_path / "one.png") is None
    two = one + [fake_run(tmp_path / "b", "supcon", {"temperature": 0.5}, tiny_options)]
    path = supcon_table.plot_temperature(two, tmp_path / "two.png")
    assert path is not None and path.read_bytes().startswith(b"\x89PNG")


def test_verdicts_cover_the_pages_comparisons_and_the_temperatures(
    supcon_table: ModuleType,
) -> None:
    labels = ["tau 0.01", "tau 0.1", "tau 0.01 + resample", "tau 0.1 + resample", "ce"]
    assert supcon_table.temperature_comparisons(labels) == [
        ("tau 0.01", "tau 0.1"),
        ("tau 0.01 + resample", "tau 0.1 + resample"),
    ]
    # macro F1 of ce+resample against ce on 5 seeds, one way and well apart: held
    records = [
        {"label": label, "seed": seed, "metrics": {"macro_f1": base + 0.002 * seed}}
        for label, base in (("ce", 0.53), ("ce+resample", 0.55), ("tau 0.01", 0.38))
        for seed in range(5)
    ]
    records.append({"label": "tau 0.1", "seed": 0, "metrics": {"macro_f1": 0.39}})
    assert supcon_table.verdicts(records) == [
        "held: ce+resample > ce on macro F1 (5 seeds, mean Δ 0.020 ± 0.000)",
        "indicative (one seed): tau 0.1 > tau 0.01 on macro F1 (one seed, Δ 0.010); "
        "unpaired seed(s) 1, 2, 3, 4 left out",
    ]
