"""Issue 20: damaged run directories, hostile names and bad input never crash medknn or print
a raw traceback; each is refused with one line that names the file or value (exit code 2)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from click.testing import Result
from PIL import Image
from rich.console import Console
from typer.testing import CliRunner

import medknn
import medknn.cli
from medknn.cli import app
from medknn.errors import RunLockedError
from medknn.io import read_json
from medknn.prediction import TrainedRun
from medknn.runs import RunDir, run_lock
from medknn.runs.run_manifest import check_manifest

Invoke = Callable[..., Result]
SRC = Path(medknn.__file__).parents[1]


@pytest.fixture
def invoke(monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """``invoke(*args)`` runs ``medknn ARGS`` in-process, with wide, unwrapped output."""
    monkeypatch.setattr(medknn.cli, "err_console", Console(width=10_000, stderr=True))
    monkeypatch.setattr(medknn.cli, "out_console", Console(width=10_000))
    runner = CliRunner()
    return lambda *args: runner.invoke(app, [str(a) for a in args])


def medknn_process(*args: Any, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m medknn ARGS`` in a child process: a native crash fails the test, not pytest."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_WAIT_POLICY": "PASSIVE"}
    return subprocess.run(
        [sys.executable, "-m", "medknn", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def assert_one_line_error(result: Result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


@pytest.fixture(scope="module")
def hnsw_run(tiny_options: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny run with an HNSW index (shared: copy it before changing it)."""
    out = tmp_path_factory.mktemp("runs") / "hnsw"
    medknn.train({**tiny_options, "knn_index": "hnsw"}, out, progress=False)
    return out


@pytest.fixture
def hnsw_copy(hnsw_run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(hnsw_run, tmp_path / "run"))


# --- 1. the manifest, the faiss file and repair -----------------------------------------------


def test_a_finished_run_records_its_loading_files(hnsw_run: Path) -> None:
    manifest = read_json(hnsw_run / "manifest.json")["files"]
    expected = {"config.yaml", "data.json", "split.json", "model.safetensors", "decision.json"}
    expected |= {"knn/knn.json", "knn/embeddings.safetensors", "knn/index.faiss"}
    assert set(manifest) == expected
    assert manifest["model.safetensors"]["size"] == (hnsw_run / "model.safetensors").stat().st_size
    assert check_manifest(RunDir(hnsw_run)).bad == {}


def test_an_altered_file_is_refused_by_name(invoke: Invoke, hnsw_copy: Path, png_files) -> None:
    model = hnsw_copy / "model.safetensors"
    data = bytearray(model.read_bytes())
    data[-10] ^= 0xFF
    model.write_bytes(bytes(data))
    result = invoke("predict", hnsw_copy, png_files[0])
    assert_one_line_error(result, str(model), "content differs from the manifest")
    (hnsw_copy / "data.json").write_text("{}")
    assert_one_line_error(invoke("predict", hnsw_copy, png_files[0]), "data.json")


def test_a_crafted_25_byte_hnsw_index_is_never_read(hnsw_copy: Path, png_files) -> None:
    index = hnsw_copy / "knn" / "index.faiss"
    crafted = index.read_bytes()[:25]  # the HNSW header, cut where faiss reads a length
    assert crafted[:4] == b"IHNf"
    index.write_bytes(crafted)
    done = medknn_process("predict", hnsw_copy, png_files[0], "--json")
    assert done.returncode == 0, done.stderr  # not -11 (segfault): rebuilt from the embeddings
    assert "index.faiss does not match the run's manifest" in done.stderr
    assert f"medknn repair {hnsw_copy}" in done.stderr
    assert json.loads(done.stdout)[0]["image"] == str(png_files[0])

    repaired = medknn_process("repair", hnsw_copy)
    assert repaired.returncode == 0, repaired.stderr
    assert "rebuilt" in repaired.stdout
    assert check_manifest(RunDir(hnsw_copy)).bad == {}
    TrainedRun.load(hnsw_copy)  # no warning now: the rebuilt index matches the manifest


def test_a_run_from_before_manifests_loads_and_its_bad_index_is_probed(
    hnsw_copy: Path, png_files
) -> None:
    (hnsw_copy / "manifest.json").unlink()
    TrainedRun.load(hnsw_copy).predict_files(png_files)  # older runs keep loading
    index = hnsw_copy / "knn" / "index.faiss"
    index.write_bytes(index.read_bytes()[:25])
    (hnsw_copy / "knn" / "embeddings.safetensors").unlink()  # as an older run has none
    done = medknn_process("predict", hnsw_copy, png_files[0])
    assert done.returncode == 2, done.stderr
    assert f"{index} is damaged" in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1  # one line, however long its paths


def test_fuzzed_run_directories_exit_0_or_2_in_bounded_time(
    hnsw_copy: Path, png_files, tmp_path: Path
) -> None:
    """120 seeded mutations of the run's files (one at a time, a third of them with the
    manifest removed): every predict exits 0 or 2, never a crash, hang or traceback."""
    cases, log = 120, tmp_path / "fuzz.jsonl"
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_WAIT_POLICY": "PASSIVE"}
    script = Path(__file__).with_name("fuzz_predict.py")
    done = subprocess.run(
        [sys.executable, str(script), hnsw_copy, png_files[0], str(cases), "20", log],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    records = [json.loads(line) for line in log.read_text().splitlines()]
    last = records[-1] if records else None
    assert done.returncode == 0, f"fuzz process died after {last}: {done.stderr[-2000:]}"
    assert len(records) == cases
    bad = [r for r in records if r["exit_code"] not in (0, 2) or r["traceback"]]
    assert bad == [], bad[:5]
    assert max(r["seconds"] for r in records) < 20
    refused = [r for r in records if r["exit_code"] == 2]
    assert all(r["message"].startswith("error:") for r in refused)
    # With the manifest, any change to a file that loading reads is refused, except the index,
    # which is rebuilt from the embeddings instead of being read.
    checked = [r for r in records if not r["legacy"] and r["changed"]]
    protected = {"config.yaml", "data.json", "split.json", "model.safetensors", "knn/knn.json"}
    protected.add("knn/embeddings.safetensors")
    assert all(r["exit_code"] == 2 for r in checked if r["file"] in protected)
    assert all(r["exit_code"] == 0 for r in checked if r["file"] == "knn/index.faiss")
    assert sum(r["file"] in protected for r in checked) > cases / 5


# --- 2. names are printed as they are ---------------------------------------------------------


# "x[/].png" is the file "].png" in the folder "x[": a closing tag to rich's markup.
NAMES = ["breast [left].png", "breast [right].png", "x[/].png", 'quote\'s "q" — é [b]ü.png']


def test_names_round_trip_through_the_table_and_json(
    invoke: Invoke, deepknn_run: Path, png_files, tmp_path: Path
) -> None:
    images = []
    (tmp_path / "x[").mkdir()
    for name in NAMES:
        shutil.copy(png_files[0], tmp_path / name)
        images.append(tmp_path / name)
    result = invoke("predict", deepknn_run, *images)
    assert result.exit_code == 0, result.output
    for image in images:
        assert f"{image}: " in result.stdout
    result = invoke("predict", deepknn_run, *images, "--json")
    assert [p["image"] for p in json.loads(result.stdout)] == [str(p) for p in images]
    missing = tmp_path / "missing x[/].png"
    assert_one_line_error(invoke("predict", deepknn_run, missing), str(missing))


def test_a_label_with_markup_trains_and_prints(
    invoke: Invoke, tmp_path: Path, make_image_folder: Callable, tiny_options: dict
) -> None:
    images = make_image_folder(tmp_path / "images", {"a": 8, "b": 8, "c": 8})
    names = {"a": "[/]", "b": "[bold]b[/bold]", "c": "c'\"é"}
    quoted = {c: '"' + name.replace('"', '""') + '"' for c, name in names.items()}  # CSV quoting
    rows = [f"{c}/{i}.png,{quoted[c]}" for c in "abc" for i in range(8)]
    csv = images / "labels.csv"
    csv.write_text("file,diagnosis\n" + "\n".join(rows) + "\n", encoding="utf-8")
    options = (
        "{image_column: file, path_template: null, label_column: diagnosis, group_column: null}"
    )
    tiny = ["--backbone", "mobilenetv3_small_050", "--no-pretrained", "--epochs", "1"]
    tiny += ["--set", "batch_size=12", "--set", "classes_per_batch=3", "--quiet"]
    tiny += ["--set", "max_batches_per_epoch=2", "--set", "embedding_dim=16"]
    result = invoke(
        "train", "--out", tmp_path / "run", "--data", csv, "--set", f"data_options={options}", *tiny
    )
    assert result.exit_code == 0, result.output
    for name in names.values():
        assert f"│ {name} " in result.stdout or f"┃ {name} " in result.stdout, result.stdout


# --- 3. 6. 9. bad values and inputs: one line each, never a traceback --------------------------


def _bad_invocations(tmp: Path, run: Path, image: Path) -> list[tuple[list[Any], str]]:
    """(arguments, a text the one-line error must contain)."""
    train = ["train", "--out", tmp / "new", "--quiet"]
    binary = tmp / "binary.csv"
    binary.write_bytes(bytes(range(256)) * 4)
    text_npz = tmp / "notes.npz"
    text_npz.write_text("just text", encoding="utf-8")
    negative = tmp / "negative.npz"
    arrays = {f"{p}_images": np.zeros((3, 28, 28), np.uint8) for p in ("train", "val", "test")}
    labels = {f"{p}_labels": np.array([[0], [1], [-1]], np.int64) for p in ("train", "val", "test")}
    np.savez(negative, **arrays, **labels)
    a_file = tmp / "a_file.txt"
    a_file.write_text("x", encoding="utf-8")
    specs = {
        "python_tag": "methods: [ce]\nbase: !!python/object/apply:os.system ['echo hi']\n",
        "int_seeds": "methods: [ce]\nseeds: 5\n",
        "str_methods": "methods: deepknn\n",
        "same_folder": "methods: [{method: ce, label: 'a b'}, {method: ce, label: 'a_b'}]\n",
    }
    spec_paths = {}
    for name, text in specs.items():
        spec_paths[name] = tmp / f"{name}.yaml"
        spec_paths[name].write_text(text, encoding="utf-8")
    bench = ["benchmark", "--out", tmp / "bench", "--quiet", "--spec"]
    one_class = tmp / "one_class"
    (one_class / "benign").mkdir(parents=True)
    for i in range(4):
        Image.fromarray(np.full((32, 32), 40 * i, np.uint8)).save(one_class / "benign" / f"{i}.png")
    return [
        ([*train, "--set", "lr=[0.1"], "not plain YAML"),
        ([*train, "--set", "lr=!!python/object/apply:os.system ['echo hi']"], "not plain YAML"),
        ([*train, "--set", "momentum=-0.5"], "momentum=-0.5"),
        ([*train, "--set", "weight_decay=-1"], "weight_decay=-1"),
        ([*train, "--set", "num_workers=-1"], "num_workers=-1"),
        ([*train, "--seed", "-1"], "seed=-1"),
        ([*train, "--set", "seed=100000000000000000000"], "seed=100000000000000000000"),
        ([*train, "--set", "lr_gamma=-1"], "lr_gamma=-1"),
        ([*train, "--lr", "inf"], "lr=inf"),
        ([*train, "--set", "max_batches_per_epoch=0"], "max_batches_per_epoch=0"),
        ([*train, "--set", "max_batches_per_epoch=-1"], "max_batches_per_epoch=-1"),
        ([*train, "--set", "device=tpu"], "device='tpu'"),
        ([*train, "--set", "device=cuda:7"], "cuda:7"),
        ([*train, "--data", binary], str(binary)),
        ([*train, "--data", text_npz], "not an npz archive"),
        ([*train, "--data", negative], "train_labels row 2 is -1"),
        ([*train, "--data", one_class], "holds one class ('benign')"),
        (["train", "--out", a_file, "--quiet"], f"--out {a_file} is a file"),
        ([*bench, spec_paths["python_tag"]], "not plain YAML"),
        ([*bench, spec_paths["int_seeds"]], "seeds must be a list"),
        ([*bench, spec_paths["str_methods"]], "methods must be a list"),
        ([*bench, spec_paths["same_folder"]], "both map to the folder name 'a_b'"),
        (["predict", run, tmp], "a folder, not an image file"),
        (["predict", tmp / "nowhere", image], "not a medknn run"),
        (["predict", a_file, image], "is a file, not a run directory"),
        (["predict", run, image, "--batch-size", "0"], "--batch-size 0"),
        (["evaluate", run, "--part", "everything"], "part='everything'"),
        (["repair", tmp / "nowhere"], "not a finished medknn run"),
    ]


def test_bad_invocations_get_one_line_and_no_traceback(
    invoke: Invoke, deepknn_run: Path, png_files, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    cases = _bad_invocations(tmp_path, deepknn_run, png_files[0])
    if not torch.cuda.is_available():
        cases.append((["train", "--out", tmp_path / "gpu", "--set", "device=cuda"], "no CUDA GPU"))
    tracebacks, one_line = 0, 0
    for args, needle in cases:
        result = invoke(*args)
        escaped = result.exception is not None and not isinstance(result.exception, SystemExit)
        tracebacks += escaped or "Traceback" in result.output
        assert_one_line_error(result, needle)
        one_line += 1
    assert not (tmp_path / "new").exists()  # nothing written by a refused command
    with capsys.disabled():
        print(
            f"\n{len(cases)} bad invocations: {one_line} one-line errors, {tracebacks} tracebacks"
        )
    assert tracebacks == 0


def test_damaged_run_files_are_one_line_errors(invoke: Invoke, hnsw_copy: Path, png_files) -> None:
    """Runs without a manifest (older ones, or one deleted) still name the damaged file."""
    (hnsw_copy / "manifest.json").unlink()
    cases = {
        "model.safetensors": b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage",
        "knn/knn.json": b'{"format": "medknn.KNNClassifier/2", "labels": "x"}',
        "knn/embeddings.safetensors": b"short",
        "data.json": b"[1, 2]",
    }
    for name, damage in cases.items():
        path = hnsw_copy / name
        original = path.read_bytes()
        path.write_bytes(damage)
        if name == "knn/embeddings.safetensors":
            result = invoke("repair", hnsw_copy)  # predict itself reads index.faiss
        else:
            result = invoke("predict", hnsw_copy, png_files[0])
        assert_one_line_error(result, str(path))
        path.write_bytes(original)


def test_a_damaged_checkpoint_says_how_to_go_on(
    invoke: Invoke, weighted_ce_run: Path, tmp_path: Path
) -> None:
    run = Path(shutil.copytree(weighted_ce_run, tmp_path / "run"))
    checkpoint = RunDir(run).last_checkpoint
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    config = yaml.safe_load(RunDir(run).config.read_text())
    config["epochs"] = 2  # resuming reads the checkpoint
    (tmp_path / "more.yaml").write_text(yaml.safe_dump(config))
    result = invoke("train", "--out", run, "--config", tmp_path / "more.yaml", "--quiet")
    assert_one_line_error(result, str(checkpoint), "Delete it and rerun the same command")


def test_a_full_disk_is_one_line(invoke: Invoke, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    import errno

    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x.json"))

    monkeypatch.setattr("medknn.api.train", full)
    result = invoke("train", "--out", tmp_path / "run", "--quiet")
    assert_one_line_error(result, "the disk is full", "Free some space and rerun")


# --- 4. the lock follows the real folder ------------------------------------------------------


def test_the_lock_holds_through_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    with run_lock(real), pytest.raises(RunLockedError), run_lock(link):
        pass


# --- 5. a failed first attempt does not block the corrected command ---------------------------


def test_the_corrected_command_starts_cleanly(
    invoke: Invoke, tmp_path: Path, make_image_folder: Callable, train_tiny: Callable
) -> None:
    out = tmp_path / "run"
    result = invoke("train", "--out", out, "--set", "momentum=-1", "--quiet")
    assert result.exit_code == 2 and not out.exists()
    # An attempt that never trained (killed before its first epoch was saved, or from an
    # older medknn) left a config and a split made from other data: the next one starts anew.
    data = make_image_folder(tmp_path / "images", {"a": 8, "b": 8, "c": 8})
    out.mkdir()
    (out / "config.yaml").write_text(yaml.safe_dump({"data": "elsewhere", "momentum": 0.5}))
    (out / "split.json").write_text('{"stale": true}')
    run = train_tiny(out, data=str(data), data_options={})
    assert run.class_names == ["a", "b", "c"]
    assert "stale" not in RunDir(out).split.read_text()


# --- 7. a finished run keeps its record --------------------------------------------------------


def test_fewer_epochs_on_a_finished_run_is_refused(
    invoke: Invoke, weighted_ce_run: Path, tmp_path: Path
) -> None:
    run = Path(shutil.copytree(weighted_ce_run, tmp_path / "run"))
    before = RunDir(run).config.read_bytes()
    config = yaml.safe_load(before)
    config["epochs"] = 0
    (tmp_path / "fewer.yaml").write_text(yaml.safe_dump(config))
    result = invoke("train", "--out", run, "--config", tmp_path / "fewer.yaml", "--quiet")
    assert_one_line_error(result, "finished run of 1 epochs", "--epochs 1")
    assert RunDir(run).config.read_bytes() == before


# --- 8. predict in batches --------------------------------------------------------------------


def test_predict_goes_batch_by_batch(
    deepknn_run: Path, png_files, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = TrainedRun.load(deepknn_run)
    files = [png_files[i % 2] for i in range(7)]
    whole = run.predict_files(files, batch_size=32)
    sizes: list[int] = []
    original = TrainedRun.predict_arrays

    def recording(self: TrainedRun, images: np.ndarray, sources: list[str]) -> list:
        sizes.append(len(images))
        return original(self, images, sources)

    monkeypatch.setattr(TrainedRun, "predict_arrays", recording)
    stream = run.iter_predict_files(files, batch_size=3)
    first = next(stream)
    assert sizes == [3]  # the first result comes before the other files are decoded
    batched = [first, *stream]
    assert sizes == [3, 3, 1]
    assert [p.label for p in batched] == [p.label for p in whole]
    for a, b in zip(batched, whole, strict=True):
        assert a.probability == pytest.approx(b.probability, abs=1e-5)


# --- 11. permissions ---------------------------------------------------------------------------


def test_safetensors_get_the_permissions_of_the_other_files(hnsw_run: Path) -> None:
    mode = (hnsw_run / "config.yaml").stat().st_mode & 0o777
    assert (hnsw_run / "model.safetensors").stat().st_mode & 0o777 == mode
    assert (hnsw_run / "knn" / "embeddings.safetensors").stat().st_mode & 0o777 == mode


def test_a_confined_csv_manifest_refuses_paths_outside_its_folder(
    tmp_path: Path, make_image_folder: Callable
) -> None:
    from medknn.data import load_csv_manifest
    from medknn.errors import DataError

    images = make_image_folder(tmp_path / "images", {"a": 2, "b": 2})
    outside = make_image_folder(tmp_path / "elsewhere", {"c": 1})
    rows = ["a/0.png,a", "b/0.png,b", f"{outside / 'c' / '0.png'},c", "../elsewhere/c/0.png,c"]
    csv = images / "labels.csv"
    csv.write_text("file,dx\n" + "\n".join(rows[:3]) + "\n", encoding="utf-8")
    options = {"image_column": "file", "path_template": None, "group_column": None}
    assert len(load_csv_manifest(csv, **options)) == 3  # a local command line follows them
    with pytest.raises(DataError, match="line 4: '/"):
        load_csv_manifest(csv, **options, confined=True)
    csv.write_text("file,dx\n" + "\n".join([*rows[:2], rows[3]]) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"line 4: '\.\./elsewhere/c/0\.png'"):
        load_csv_manifest(csv, **options, confined=True)


def test_evaluate_keeps_the_manifest_valid(hnsw_copy: Path) -> None:
    medknn.evaluate(hnsw_copy, progress=False)
    assert check_manifest(RunDir(hnsw_copy)).bad == {}
