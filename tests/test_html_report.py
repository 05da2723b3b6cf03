"""HTML reports of a run and of a benchmark: every section and image is there, the numbers are
those of metrics.json, strings from the data are escaped, and headless Chromium renders the
pages offline with every image loaded (Chromium is installed by `make test`)."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import medknn
from medknn.benchmark import run_benchmark
from medknn.cli import app
from medknn.evaluation import PartOutputs, classification_metrics
from medknn.io import read_json
from medknn.reports import (
    RunReportInputs,
    choose_cases,
    summarize,
    write_benchmark_report,
    write_run_report,
)
from medknn.runs import RunDir

TRICKY_CLASS = "<b>mal</b> & co"  # must reach the page as text, never as markup
RUN_SECTIONS = {
    "summary",
    "training",
    "metrics",
    "per-class",
    "confusion",
    "roc",
    "embedding",
    "neighbours",
}
BENCHMARK_SECTIONS = {"metrics", "per-class", "wall-time", "runs"}
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these Chromium calls home, and on a closed network its connections are refused.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]
# Appended to a copy of a page: marks every <img> with whether it decoded.
IMAGE_CHECK = """<script>
window.addEventListener("load", () => {
  for (const img of document.images)
    img.dataset.loaded = img.complete && img.naturalWidth > 0 ? "yes" : "no";
  document.body.dataset.checked = "yes";
});
</script>"""


class _Page(HTMLParser):
    """Section ids, image sources and the text of every ``data-metric`` cell of a page."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.images: list[dict[str, str]] = []
        self.cells: dict[str, list[str]] = {}
        self.best: list[str] = []
        self._metric: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if "id" in values:
            self.ids.add(values["id"])
        if tag == "img":
            self.images.append(values)
        if tag == "td" and "data-metric" in values:
            self._metric = values["data-metric"]
            self.cells.setdefault(self._metric, []).append("")
            if "best" in values.get("class", "").split():
                self.best.append(self._metric)

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._metric = None

    def handle_data(self, data: str) -> None:
        if self._metric is not None:
            self.cells[self._metric][-1] += data.strip()


@pytest.fixture(scope="module")
def run_path(tiny_options: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 2-epoch deepknn run whose second class name holds HTML markup."""
    options = {
        **tiny_options,
        "method": "deepknn",
        "epochs": 2,
        "data_options": {"class_names": ["benign", TRICKY_CLASS, "normal"]},
    }
    out = tmp_path_factory.mktemp("report") / "run"
    medknn.train(options, out, progress=False)
    return out


@pytest.fixture(scope="module")
def run_page(run_path: Path) -> Path:
    return medknn.report(run_path, progress=False)


@pytest.fixture(scope="module")
def benchmark_dir(tiny_options: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "bench"
    run_benchmark(tiny_options, ["deepknn", "weighted-ce"], [0], out, progress=False)
    return out


def test_run_report_has_every_section_and_every_image(run_page: Path, run_path: Path) -> None:
    page = _Page(run_page.read_text(encoding="utf-8"))

    assert run_page == RunDir(run_path).report("test") / "index.html"
    assert page.ids >= RUN_SECTIONS
    sources = [img["src"] for img in page.images]
    for plot in ("class_counts.png", "training_curves.png", "test_roc.png"):
        assert plot in sources
    for source in sources:
        assert not source.startswith(("http:", "https:", "//")), source  # opens offline
        assert (run_page.parent / source).is_file(), f"<img src={source!r}> has no file"
    k_predict = medknn.load_run(run_path).knn.n_neighbors
    thumbnails = [s for s in sources if s.startswith("cases/")]
    assert len(thumbnails) == 6 * (1 + k_predict)  # 6 test images, each with its K_p neighbours


def test_run_report_numbers_are_those_of_metrics_json(run_page: Path, run_path: Path) -> None:
    metrics = read_json(RunDir(run_path).metrics)
    record = read_json(run_page.parent / "report.json")
    page = _Page(run_page.read_text(encoding="utf-8"))

    assert record["metrics"] == metrics
    assert record["history"] == read_json(RunDir(run_path).history)
    assert len(page.cells) >= 8
    for key, [shown] in page.cells.items():
        value = metrics[key]
        assert shown == ("n/a" if value is None else f"{value:.3f}"), key
    for case in record["cases"]:
        assert case["predicted_class"] in metrics["per_class"]
        distances = [n["distance"] for n in case["neighbours"]]
        assert distances == sorted(distances) and len(distances) > 0


def test_run_report_escapes_strings_from_the_data(run_page: Path) -> None:
    html = run_page.read_text(encoding="utf-8")

    assert TRICKY_CLASS not in html
    assert "&lt;b&gt;mal&lt;/b&gt; &amp; co" in html


def test_evaluate_with_report_writes_the_page_of_that_part(run_path: Path) -> None:
    metrics = medknn.evaluate(run_path, part="val", report=True, progress=False)

    page = Path(metrics["report"])
    assert page == RunDir(run_path).report("val") / "index.html"
    record = read_json(page.parent / "report.json")
    assert record["part"] == "val"
    assert record["metrics"]["n"] == metrics["n"] == 12
    assert "val split" in page.read_text(encoding="utf-8")


def test_report_command_prints_the_page(run_path: Path) -> None:
    result = CliRunner().invoke(app, ["report", str(run_path), "--quiet"])

    assert result.exit_code == 0, result.output
    assert "index.html" in result.output


def test_a_run_without_training_says_so(tmp_path: Path) -> None:
    names = ["a", "b"]
    labels = np.array([0, 0, 1, 1, 0, 1])
    proba = np.tile([[0.7, 0.3]], (6, 1))
    embeddings = np.random.default_rng(0).normal(size=(6, 4))
    outputs = PartOutputs(labels, proba.argmax(1), proba, embeddings, np.arange(6))
    inputs = RunReportInputs(
        title="kNN on frozen features",
        part="test",
        class_names=names,
        config={"method": "knn-imagenet"},
        data={"counts": {"train": {"a": 5, "b": 3}, "test": {"a": 3, "b": 3}}},
        history=[],
        metrics=classification_metrics(labels, outputs.predicted, proba=proba, class_names=names),
        outputs=outputs,
    )

    page = write_run_report(tmp_path / "report", inputs)

    html = page.read_text(encoding="utf-8")
    assert "no training epochs" in html
    assert not (tmp_path / "report" / "training_curves.png").exists()
    assert _Page(html).ids >= RUN_SECTIONS


def test_cases_mix_wrong_and_correct_predictions_rarest_class_first() -> None:
    labels = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2])
    predicted = np.array([0, 0, 1, 0, 1, 0, 2, 2, 0])
    train_counts = [50, 5, 20]  # class 1 is the rarest, then class 2

    chosen = choose_cases(labels, predicted, train_counts, count=6)

    wrong = labels[chosen] != predicted[chosen]
    assert wrong.tolist() == [True, False, True, False, True, False]
    assert labels[chosen].tolist() == [1, 1, 2, 2, 0, 0]
    assert len(set(chosen.tolist())) == 6
    assert len(choose_cases(labels, predicted, train_counts, count=100)) == len(labels)


def test_benchmark_page_marks_the_best_mean_of_each_column(tmp_path: Path) -> None:
    records = [
        _bench_record("a", 0, accuracy=0.8, davies_bouldin=2.0, wall=10.0),
        _bench_record("a", 1, accuracy=0.6, davies_bouldin=1.8, wall=14.0),
        _bench_record("b", 0, accuracy=0.9, davies_bouldin=1.2, wall=3.0),
    ]
    rows = summarize(records, ["accuracy", "davies_bouldin"])

    page = write_benchmark_report(tmp_path, rows, records, ["accuracy", "davies_bouldin"])

    parsed = _Page(page.read_text(encoding="utf-8"))
    assert parsed.cells["accuracy"] == ["0.700 ± 0.141", "0.900 ± 0.000"]
    # b has the higher accuracy and the lower (better) Davies-Bouldin index.
    assert sorted(parsed.best) == ["accuracy", "davies_bouldin"]
    assert parsed.cells["davies_bouldin"][1] == "1.200 ± 0.000"
    record = read_json(tmp_path / "report.json")
    assert record["best"] == {"accuracy": 0.9, "davies_bouldin": 1.2}
    assert record["wall_seconds"]["a"] == {
        "mean": 12.0,
        "std": pytest.approx(2.828, abs=1e-3),
        "total": 24.0,
    }
    assert record["per_class_recall"][0]["mean"]["x"] == pytest.approx(0.7)


def test_benchmark_writes_its_report_and_report_command_rebuilds_it(benchmark_dir: Path) -> None:
    page = benchmark_dir / "report" / "index.html"
    parsed = _Page(page.read_text(encoding="utf-8"))
    results = read_json(benchmark_dir / "results.json")

    assert parsed.ids >= BENCHMARK_SECTIONS
    assert len(parsed.cells["mcr"]) == 2  # one row per method
    for source in (img["src"] for img in parsed.images):
        assert (page.parent / source).is_file(), source
    record = read_json(page.parent / "report.json")
    assert record["rows"] == results["rows"]

    shutil.rmtree(benchmark_dir / "report")
    assert medknn.report(benchmark_dir) == page
    assert page.is_file()


def test_chromium_renders_both_pages_with_every_image(
    run_page: Path, benchmark_dir: Path, tmp_path: Path
) -> None:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.fail(
            "Chromium is not installed, so the HTML report cannot be checked in a browser: run "
            "`make test`, which installs Debian's chromium package (apt-get install chromium)."
        )
    for page in (run_page, benchmark_dir / "report" / "index.html"):
        checked = page.with_name("checked.html")
        checked.write_text(
            page.read_text(encoding="utf-8").replace("</body>", IMAGE_CHECK + "</body>"),
            encoding="utf-8",
        )
        dom = _chromium(binary, tmp_path, "--dump-dom", checked.as_uri())
        rendered = _Page(dom)
        assert 'data-checked="yes"' in dom, "the page never finished loading"
        assert "metrics" in rendered.ids and rendered.cells, "no metrics table in the DOM"
        not_loaded = [img["src"] for img in rendered.images if img.get("data-loaded") != "yes"]
        assert rendered.images and not not_loaded, f"images that did not load: {not_loaded}"

        screenshot = tmp_path / f"{page.parent.parent.name}.png"
        _chromium(
            binary, tmp_path, f"--screenshot={screenshot}", "--window-size=1200,1600", page.as_uri()
        )
        pixels = np.asarray(Image.open(screenshot).convert("L"), dtype=float)
        assert pixels.std() > 20, "the screenshot is blank"


def _chromium(binary: str, tmp_path: Path, *args: str) -> str:
    profile = tmp_path / f"profile{len(list(tmp_path.glob('profile*')))}"  # a new empty one
    result = subprocess.run(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def _bench_record(label: str, seed: int, *, wall: float, **metrics: float) -> dict:
    per_class = {"x": {"recall": metrics["accuracy"]}, "y": {"recall": 1 - metrics["accuracy"]}}
    return {
        "label": label,
        "seed": seed,
        "metrics": {**metrics, "per_class": per_class},
        "wall_seconds": wall,
        "run": None,
    }
