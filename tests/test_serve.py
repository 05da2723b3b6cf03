"""``medknn serve``'s JSON API and page through FastAPI's TestClient (no socket)."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from pydicom.data import get_testdata_file

from medknn.serve import CaseService, create_app, is_loopback

STATIC = Path(__file__).parents[1] / "src" / "medknn" / "serve" / "static"


@pytest.fixture(scope="module")
def client(serve_service: CaseService) -> TestClient:
    return TestClient(create_app(serve_service))


def png_upload(path: Path, name: str | None = None) -> tuple[str, tuple[str, bytes, str]]:
    return ("files", (name or path.name, path.read_bytes(), "image/png"))


def limited(service: CaseService, **limits: int) -> TestClient:
    # The same loaded run with other limits: a shallow copy shares the model and the data.
    other = object.__new__(CaseService)
    other.__dict__.update(service.__dict__)
    other.limits = replace(service.limits, **limits)
    return TestClient(create_app(other))


def test_health_info_and_openapi(client: TestClient, serve_service: CaseService) -> None:
    assert client.get("/api/health").json() == {"status": "ok", "token_required": False}
    info = client.get("/api/info").json()
    assert info["classes"] == serve_service.trained.class_names
    assert info["neighbours"] == serve_service.trained.knn.n_neighbors == 3
    assert "/api/predict" in client.get("/openapi.json").json()["paths"]


def test_predict_png_returns_class_probabilities_and_neighbour_thumbnails(
    client: TestClient, serve_service: CaseService, png_files: list[Path]
) -> None:
    response = client.post("/api/predict", files=[png_upload(p) for p in png_files])
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert [p["name"] for p in predictions] == [p.name for p in png_files]
    expected = serve_service.trained.predict_files(png_files)  # the same run, from the files
    for got, want in zip(predictions, expected, strict=True):
        assert got["label"] == want.label
        assert got["probabilities"] == pytest.approx(want.probabilities, abs=1e-5)
        assert [n["id"] for n in got["neighbours"]] == [n.id for n in want.neighbours]
        assert len(got["neighbours"]) == 3 and "thumbnail" not in got["neighbours"][0]
        assert got["query_image"].startswith("data:image/png;base64,")
        thumbnail = client.get(got["neighbours"][0]["thumbnail_url"])
        assert thumbnail.status_code == 200 and thumbnail.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(thumbnail.content)).size == (32, 32)  # the decoded size
    inline = client.post("/api/predict?inline=true", files=[png_upload(png_files[0])]).json()
    assert inline["predictions"][0]["neighbours"][0]["thumbnail"].startswith("data:image/png")


def test_predict_dicom_recognised_by_content_not_name(client: TestClient) -> None:
    data = Path(get_testdata_file("MR_small.dcm", download=False)).read_bytes()
    for name in ("scan.dcm", "scan.png", "IM0001"):
        response = client.post("/api/predict", files=[("files", (name, data, "image/png"))])
        assert response.status_code == 200, response.text
        assert response.json()["predictions"][0]["name"] == name


def test_unreadable_uploads_get_422_naming_the_file(
    client: TestClient, png_files: list[Path]
) -> None:
    cases = {
        "notes.png": b"these are not pixels " * 50,
        "half.png": png_files[0].read_bytes()[:60],
        "empty.png": b"",
        "cut.dcm": Path(get_testdata_file("MR_truncated.dcm", download=False)).read_bytes(),
    }
    for name, data in cases.items():
        response = client.post("/api/predict", files=[("files", (name, data, "image/png"))])
        assert response.status_code == 422, (name, response.text)
        assert name in response.json()["detail"]
    assert client.post("/api/predict").status_code == 422  # no file at all


def test_size_and_pixel_limits_give_413(serve_service: CaseService, png_files: list[Path]) -> None:
    small = limited(serve_service, max_request_bytes=2000)
    big = np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(big).save(buffer, format="PNG")
    response = small.post("/api/predict", files=[("files", ("big.png", buffer.getvalue()))])
    assert response.status_code == 413 and "exceeds the limit" in response.json()["detail"]
    few_pixels = limited(serve_service, max_pixels=500)  # the PNGs are 32×32 = 1024
    response = few_pixels.post("/api/predict", files=[png_upload(png_files[0])])
    assert response.status_code == 413 and "more than the limit of 500" in response.text
    one_file = limited(serve_service, max_files=1)
    response = one_file.post("/api/predict", files=[png_upload(p) for p in png_files])
    assert response.status_code == 413 and "at most 1" in response.text


def test_token_is_required_when_set(serve_service: CaseService, png_files: list[Path]) -> None:
    client = TestClient(create_app(serve_service, token="s3cret-token"))
    assert client.get("/api/health").json()["token_required"] is True
    assert client.get("/").status_code == 200  # the page holds no data; it asks for the token
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-token"}):
        assert client.get("/api/info", headers=headers).status_code == 401
        response = client.post("/api/predict", files=[png_upload(png_files[0])], headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
    good = {"Authorization": "Bearer s3cret-token"}
    assert client.get("/api/info", headers=good).status_code == 200
    response = client.post("/api/predict", files=[png_upload(png_files[0])], headers=good)
    assert response.status_code == 200


def test_case_images_only_by_id_of_a_training_or_test_case(
    client: TestClient, serve_service: CaseService, tiny_npz: Path
) -> None:
    ids = serve_service.prepared.table.ids
    train_id = ids[int(serve_service.prepared.indices("train")[0])]
    val_id = ids[int(serve_service.prepared.indices("val")[0])]
    assert client.get("/api/cases/image", params={"id": train_id}).status_code == 200
    large = client.get("/api/cases/image", params={"id": train_id, "size": 256})
    assert Image.open(io.BytesIO(large.content)).size == (256, 256)
    for bad in (val_id, "../../../etc/passwd", "/etc/passwd", str(tiny_npz), "train/../test/0"):
        response = client.get("/api/cases/image", params={"id": bad})
        assert response.status_code == 404, bad
    for path in ("/static/../service.py", "/static/%2e%2e/service.py", "/static/..%2fapp.py"):
        assert client.get(path).status_code == 404, path
    assert client.get("/api/cases/image", params={"id": train_id, "size": 9999}).status_code == 422


def test_test_split_browsing(client: TestClient, serve_service: CaseService) -> None:
    test = serve_service.test
    assert test is not None
    page = client.get("/api/test-cases", params={"limit": 5, "inline": True}).json()
    assert page["total"] == len(test.labels) == 12 and len(page["cases"]) == 5
    case = page["cases"][0]
    assert case["correct"] == (case["label"] == case["true_label"])
    assert len(case["neighbours"]) == 3 and case["image"].startswith("data:image/png")
    assert client.get(case["image_url"]).status_code == 200
    wrong = client.get("/api/test-cases", params={"wrong_only": True, "limit": 100}).json()
    assert wrong["total"] == int((test.labels != test.predicted).sum())
    assert not any(c["correct"] for c in wrong["cases"])
    rest = client.get("/api/test-cases", params={"offset": 10}).json()
    assert len(rest["cases"]) == 2


def test_page_is_offline_and_sent_with_a_content_security_policy(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200 and 'id="files"' in response.text
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    for asset in ("app.js", "style.css"):
        assert client.get(f"/static/{asset}").status_code == 200
    for path in STATIC.iterdir():  # nothing fetched from another host: works offline
        assert not re.search(r"(https?:)?//[a-z]", path.read_text(encoding="utf-8")), path
    script = (STATIC / "app.js").read_text(encoding="utf-8")
    # Text goes in through textContent only: no HTML is ever parsed from server data.
    assert not re.search(r"\.(inner|outer)HTML\s*=|insertAdjacentHTML|document\.write", script)


def test_only_loopback_counts_as_local() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")


def test_a_single_runs_answers_keep_their_shape(client: TestClient, png_files: list[Path]) -> None:
    """Ensembles add members and agreement; a single run's answers stay as clients know them."""
    info = client.get("/api/info").json()
    assert set(info) == {
        "run", "method", "backbone", "image_size", "classes", "neighbours",
        "training_cases", "test_cases", "limits",
    }  # fmt: skip
    (prediction,) = client.post("/api/predict", files=[png_upload(png_files[0])]).json()[
        "predictions"
    ]
    assert set(prediction) == {
        "name", "label", "probability", "probabilities", "query_image", "neighbours",
    }  # fmt: skip
    assert set(prediction["neighbours"][0]) == {"id", "label", "distance", "thumbnail_url"}
    (case,) = client.get("/api/test-cases", params={"limit": 1}).json()["cases"]
    assert set(case) == {
        "id", "true_label", "label", "probability", "correct", "image_url", "neighbours",
    }  # fmt: skip
