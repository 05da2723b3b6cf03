"""``medknn serve`` in a real browser: uvicorn on a free local port, headless Chromium driven by
Selenium through Debian's chromedriver (``make test`` installs both)."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import uvicorn
from PIL import Image
from pydicom.data import get_testdata_file
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from medknn.serve import CaseService, create_app

# A file name that would become an element if the page ever parsed names as HTML.
HOSTILE_NAME = "<img src=x onerror=document.title='pwned'>.png"
ALL_IMAGES_LOADED = (
    "const images = [...document.querySelectorAll(arguments[0])];"
    "return images.length > 0 && images.every(i => i.complete && i.naturalWidth > 0);"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serving(service: CaseService) -> Iterator[str]:
    """uvicorn serving ``service`` on a free local port, in a thread; yields its URL."""
    port = free_port()
    config = uvicorn.Config(create_app(service), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def server_url(serve_service: CaseService) -> Iterator[str]:
    with serving(serve_service) as url:
        yield url


def chrome(window: tuple[int, int] = (1280, 900)) -> webdriver.Chrome:
    """Headless Chromium via Debian's chromedriver; pytest.fail with the fix when missing."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if binary is None or driver is None:
        pytest.fail(
            "Chromium and its driver are needed for the browser test: run `make test`, which "
            "installs Debian's chromium and chromium-driver packages (apt-get install chromium "
            "chromium-driver)."
        )
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--window-size={window[0]},{window[1]}",
    ):
        options.add_argument(flag)
    # An explicit driver path: Selenium Manager never runs, so nothing is downloaded.
    return webdriver.Chrome(options=options, service=Service(executable_path=driver))


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    driver = chrome()
    yield driver
    driver.quit()


def upload_files(tmp_path: Path, png_files: list[Path]) -> list[Path]:
    hostile = tmp_path / HOSTILE_NAME
    shutil.copy(png_files[1], hostile)
    dicom = tmp_path / "MR_small.dcm"
    shutil.copy(get_testdata_file("MR_small.dcm", download=False), dicom)
    return [png_files[0], hostile, dicom]


def wait_for(browser: webdriver.Chrome, css: str, count: int, timeout: float = 60) -> list:
    WebDriverWait(browser, timeout).until(
        lambda b: (
            len(b.find_elements(By.CSS_SELECTOR, css)) >= count
            or b.find_element(By.ID, "error").is_displayed()
        )
    )
    error = browser.find_element(By.ID, "error")
    assert not error.is_displayed(), f"the page shows an error: {error.text}"
    return browser.find_elements(By.CSS_SELECTOR, css)


def screenshot_is_not_blank(path: Path) -> None:
    pixels = np.asarray(Image.open(path).convert("L"), dtype=float)
    assert pixels.std() > 20, f"the screenshot {path} is blank"


def test_upload_shows_class_and_neighbour_thumbnails(
    browser: webdriver.Chrome,
    server_url: str,
    serve_service: CaseService,
    png_files: list[Path],
    tmp_path: Path,
) -> None:
    browser.get(server_url + "/")
    classes = serve_service.trained.class_names
    WebDriverWait(browser, 30).until(lambda b: "classes:" in b.find_element(By.ID, "run-info").text)
    files = upload_files(tmp_path, png_files)
    browser.find_element(By.ID, "files").send_keys("\n".join(str(p) for p in files))
    cards = wait_for(browser, "article.prediction", len(files))
    assert [c.find_element(By.CSS_SELECTOR, ".name").text for c in cards] == [p.name for p in files]
    expected = serve_service.trained.predict_files(files)
    for card, want in zip(cards, expected, strict=True):
        assert card.find_element(By.CSS_SELECTOR, ".predicted-label").text == want.label
        assert want.label in classes
        neighbours = card.find_elements(By.CSS_SELECTOR, "figure.neighbour")
        assert len(neighbours) == serve_service.trained.knn.n_neighbors
        shown = [n.get_attribute("data-label") for n in neighbours]
        assert shown == [n.class_name for n in want.neighbours]
        assert "d = " in neighbours[0].text
    assert browser.execute_script(ALL_IMAGES_LOADED, "article.prediction img")
    # The hostile file name is text on the page, never markup.
    assert browser.title.startswith("medknn")
    assert not browser.find_elements(By.CSS_SELECTOR, "img[src='x']")

    cards[0].find_element(By.CSS_SELECTOR, "figure.neighbour img").click()
    WebDriverWait(browser, 30).until(
        lambda b: b.execute_script(
            "const i = document.getElementById('viewer-image');"
            "return document.getElementById('viewer').open && i.complete && i.naturalWidth > 0;"
        )
    )
    assert browser.find_element(By.ID, "viewer-image").size["width"] >= 256
    screenshot = tmp_path / "enlarged.png"
    browser.save_screenshot(str(screenshot))
    screenshot_is_not_blank(screenshot)
    browser.find_element(By.ID, "viewer-close").click()


def test_test_split_view_lists_cases_with_neighbours(
    browser: webdriver.Chrome, server_url: str, serve_service: CaseService
) -> None:
    browser.get(server_url + "/#test")
    test = serve_service.test
    assert test is not None
    cards = wait_for(browser, "article.test-case", min(12, len(test.labels)))
    assert len(cards) == min(12, len(test.labels))
    marks = [c.find_element(By.CSS_SELECTOR, ".verdict span").text for c in cards]
    right = int((test.labels == test.predicted)[:12].sum())
    assert sum(m.startswith("✓") for m in marks) == right
    assert browser.execute_script(ALL_IMAGES_LOADED, "article.test-case img")
    assert len(cards[0].find_elements(By.CSS_SELECTOR, "figure.neighbour")) == 3


def test_an_ensemble_shows_its_class_and_one_evidence_row_per_member(
    browser: webdriver.Chrome,
    serve_ensemble_service: CaseService,
    png_files: list[Path],
) -> None:
    expected = serve_ensemble_service.trained.predict_files(png_files)
    names = [run.path.name for run in serve_ensemble_service.members]
    with serving(serve_ensemble_service) as url:
        browser.get(url + "/")
        WebDriverWait(browser, 30).until(
            lambda b: "ensemble of 2 runs" in b.find_element(By.ID, "run-info").text
        )
        browser.find_element(By.ID, "files").send_keys("\n".join(str(p) for p in png_files))
        cards = wait_for(browser, "article.prediction", len(png_files))
        for card, want in zip(cards, expected, strict=True):
            assert card.find_element(By.CSS_SELECTOR, ".predicted-label").text == want.label
            rows = card.find_elements(By.CSS_SELECTOR, "section.member")
            assert [r.find_element(By.CSS_SELECTOR, ".member-name").text for r in rows] == names
            for row, member in zip(rows, want.members, strict=True):
                assert row.find_element(By.CSS_SELECTOR, ".member-label").text == member.label
                shown = row.find_elements(By.CSS_SELECTOR, "figure.neighbour")
                labels = [n.get_attribute("data-label") for n in shown]
                assert labels == [n.class_name for n in member.neighbours]
        assert browser.execute_script(ALL_IMAGES_LOADED, "article.prediction img")
        browser.get(url + "/#test")
        cases = wait_for(browser, "article.test-case", 12)
        assert len(cases[0].find_elements(By.CSS_SELECTOR, "section.member")) == 2
        assert browser.execute_script(ALL_IMAGES_LOADED, "article.test-case img")
