"""``medknn serve ENSEMBLE``: the ensemble's own prediction with every member's evidence, through
FastAPI's TestClient (no socket); members that do not share one split are refused."""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from pydicom.data import get_testdata_file

import medknn
from medknn.evaluation import PartOutputs
from medknn.io import atomic_write_json
from medknn.prediction import TrainedRun
from medknn.prediction.ensemble_run import EnsembleRun
from medknn.serve import CaseService, create_app
from medknn.serve.service import load_prepared


@pytest.fixture(scope="module")
def client(serve_ensemble_service: CaseService) -> TestClient:
    return TestClient(create_app(serve_ensemble_service))


def upload(path: Path) -> tuple[str, tuple[str, bytes, str]]:
    return ("files", (path.name, path.read_bytes(), "image/png"))


def test_info_names_the_ensemble_and_its_members(
    client: TestClient, serve_ensemble_dir: Path
) -> None:
    info = client.get("/api/info").json()
    assert info["ensemble"] is True and info["method"] == "ensemble"
    assert info["run"] == serve_ensemble_dir.name
    assert [m["run"] for m in info["members"]] == ["deepknn", "weighted-ce-32"]
    assert [m["image_size"] for m in info["members"]] == [28, 32]
    assert info["image_size"] is None  # the members differ
    assert info["neighbours"] == 3 and info["training_cases"] == 36 and info["test_cases"] == 12


def test_prediction_is_the_ensembles_with_every_members_evidence(
    client: TestClient, serve_ensemble_dir: Path, png_files: list[Path]
) -> None:
    response = client.post("/api/predict", files=[upload(p) for p in png_files])
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    # The same bytes through EnsembleRun, loaded on its own: what `medknn predict` answers.
    expected = EnsembleRun.load(serve_ensemble_dir).predict_files(png_files)
    assert [p["name"] for p in predictions] == [p.name for p in png_files]
    for got, want in zip(predictions, expected, strict=True):
        assert got["label"] == want.label
        assert got["probability"] == pytest.approx(want.probability, abs=1e-5)
        assert got["probabilities"] == pytest.approx(want.probabilities, abs=1e-5)
        assert got["agreement"] == want.agreement
        assert [n["id"] for n in got["neighbours"]] == [n.id for n in want.neighbours]
        assert [m["run"] for m in got["members"]] == ["deepknn", "weighted-ce-32"]
        for member, theirs in zip(got["members"], want.members, strict=True):
            assert member["label"] == theirs.label
            assert member["probability"] == pytest.approx(theirs.probability, abs=1e-5)
            assert [n["id"] for n in member["neighbours"]] == [n.id for n in theirs.neighbours]
            assert len(member["neighbours"]) == 3
            for neighbour in member["neighbours"]:  # every member's cases have thumbnails
                assert client.get(neighbour["thumbnail_url"]).status_code == 200
    inline = client.post("/api/predict?inline=true", files=[upload(png_files[0])]).json()
    member = inline["predictions"][0]["members"][1]
    assert member["neighbours"][0]["thumbnail"].startswith("data:image/png")


def test_an_upload_is_decoded_once_per_member_size(
    serve_ensemble_service: CaseService, png_files: list[Path]
) -> None:
    counted = object.__new__(CaseService)  # a shallow copy sharing the model and the data
    counted.__dict__.update(serve_ensemble_service.__dict__)
    sizes: Counter[int] = Counter()
    decode = serve_ensemble_service.decode

    def counting(name: str, data: bytes, size: int | None = None) -> np.ndarray:
        sizes[size] += 1
        return decode(name, data, size)

    counted.decode = counting  # type: ignore[method-assign]
    uploads = [(p.name, p.read_bytes()) for p in png_files]
    dicom = Path(get_testdata_file("MR_small.dcm", download=False)).read_bytes()
    predictions = counted.predict([*uploads, ("scan.dcm", dicom)], inline=False)
    assert len(predictions) == 3 and all(len(p["members"]) == 2 for p in predictions)
    assert sizes == {32: 3, 37: 3}  # resize sizes of 28 and 32 px, each upload once


def test_test_split_browser_shows_the_ensembles_saved_outputs(
    client: TestClient, serve_ensemble_service: CaseService, serve_ensemble_dir: Path
) -> None:
    saved = PartOutputs.load(serve_ensemble_dir / "test_outputs.npz")
    names = serve_ensemble_service.trained.class_names
    page = client.get("/api/test-cases", params={"limit": 100}).json()
    assert page["total"] == len(saved.labels) == 12
    assert [c["label"] for c in page["cases"]] == [names[i] for i in saved.predicted]
    members = serve_ensemble_service.members
    for i, case in enumerate(page["cases"]):
        assert [m["run"] for m in case["members"]] == ["deepknn", "weighted-ce-32"]
        for run, member in zip(members, case["members"], strict=True):
            own = PartOutputs.load(run.run_dir.outputs("test"))
            assert member["label"] == names[int(own.predicted[i])]
            assert len(member["neighbours"]) == 3
        agreeing = [m["label"] == case["label"] for m in case["members"]]
        assert case["agreement"] == pytest.approx(np.mean(agreeing))
        assert case["neighbours"] == case["members"][0]["neighbours"]
    wrong = client.get("/api/test-cases", params={"wrong_only": True, "limit": 100}).json()
    assert wrong["total"] == int((saved.labels != saved.predicted).sum())


def test_the_test_case_images_are_shared_by_all_members(
    serve_ensemble_service: CaseService,
) -> None:
    image = serve_ensemble_service.case_png(serve_ensemble_service.members[1].knn.ids_[0])
    assert Image.open(io.BytesIO(image)).size == (32, 32)  # the first member's decoded size


def test_members_of_other_splits_are_refused_with_the_reason(
    tmp_path: Path, runs_of_two_splits: list[TrainedRun]
) -> None:
    runs = runs_of_two_splits
    # An ensemble.json written by hand (medknn ensemble refuses these runs).
    atomic_write_json(
        tmp_path / "ens" / "ensemble.json",
        {"format": "medknn.Ensemble/1", "members": [str(r.path) for r in runs]},
    )
    with pytest.raises(medknn.ConfigError, match="another split"):
        CaseService.load(tmp_path / "ens")
    # The service checks the cases it shows itself, whatever built the ensemble.
    ensemble = EnsembleRun(tmp_path / "ens", runs)
    with pytest.raises(medknn.ConfigError, match=r"other train cases.*share the data"):
        CaseService(ensemble, load_prepared(runs[0]))
