"""Screenshots of the `medknn serve` page for the docs: three test images uploaded, and the
test-split view, in headless Chromium at a laptop's 1280×900.

python benchmarks/serve_screenshot.py --run runs/serve-lite0-64
"""

from __future__ import annotations

import argparse
import shutil
import socket
import tempfile
from pathlib import Path

from bench_serve import start_server
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from medknn.serve import CaseService

FIGURES = Path(__file__).resolve().parents[1] / "docs" / "figures"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--uploads", type=int, default=3)
    args = parser.parse_args()
    service = CaseService.load(args.run)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = start_server(args.run, port)
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(flag)
    browser = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
    try:
        with tempfile.TemporaryDirectory() as folder:
            paths = []
            table = service.prepared.table
            for row in service.prepared.indices("test")[: args.uploads]:
                pixels = service.prepared.images[row]
                path = Path(folder) / f"test_{table.ids[row].replace('/', '_')}.png"
                Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels).save(path)
                paths.append(str(path))
            browser.get(f"http://127.0.0.1:{port}/")
            browser.find_element(By.ID, "files").send_keys("\n".join(paths))
            WebDriverWait(browser, 60).until(
                lambda b: len(b.find_elements(By.CSS_SELECTOR, "article.prediction")) == len(paths)
            )
            browser.save_screenshot(str(FIGURES / "serve_predict.png"))
        browser.get(f"http://127.0.0.1:{port}/#test")
        WebDriverWait(browser, 60).until(
            lambda b: b.find_elements(By.CSS_SELECTOR, "article.test-case")
        )
        browser.save_screenshot(str(FIGURES / "serve_test_cases.png"))
    finally:
        browser.quit()
        server.terminate()
        server.wait(timeout=30)
    print(f"wrote {FIGURES / 'serve_predict.png'} and {FIGURES / 'serve_test_cases.png'}")


if __name__ == "__main__":
    main()
