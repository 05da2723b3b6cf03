"""`medknn serve` under a bounded local load: latency percentiles and requests/s of /api/predict.

medknn train --config benchmarks/specs/serve_lite0_64.yaml --out runs/serve-lite0-64
python benchmarks/bench_serve.py --run runs/serve-lite0-64 --requests 500 --clients 4

The server runs as its own process (`python -m medknn serve`) bound to 127.0.0.1 only; the
clients are threads of this script, each with one keep-alive connection, each request one image
from the run's test split (a PNG upload, decoded and predicted with its nearest cases).
"""

from __future__ import annotations

import argparse
import io
import socket
import statistics
import subprocess
import sys
import threading
import time
from importlib.metadata import version
from pathlib import Path

import httpx
import numpy as np
from _report import markdown_table, write_report
from PIL import Image

from medknn.serve import CaseService

HOST = "127.0.0.1"  # never anything else: this script loads no one's server but its own


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a finished run directory")
    parser.add_argument("--requests", type=int, default=500, help="requests of the load test")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients")
    parser.add_argument("--single", type=int, default=100, help="requests of the 1-client test")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--no-write", action="store_true", help="print only")
    return parser.parse_args()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def test_images(run: Path, count: int = 32) -> list[bytes]:
    """PNG uploads made from the run's own test cases, as the model saw them."""
    service = CaseService.load(run)
    rows = service.prepared.indices("test")[:count]
    uploads = []
    for row in rows:
        pixels = service.prepared.images[row]
        buffer = io.BytesIO()
        Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels).save(buffer, "PNG")
        uploads.append(buffer.getvalue())
    return uploads


def start_server(run: Path, port: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "medknn", "serve", str(run), "--host", HOST]
    server = subprocess.Popen(
        [*command, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server stopped: {server.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://{HOST}:{port}/api/health", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("the server did not answer within 300 s")


def load(url: str, images: list[bytes], requests: int, clients: int) -> tuple[list[float], float]:
    """Latencies (s) of ``requests`` POSTs shared by ``clients`` threads, and the wall time."""
    latencies: list[float] = []
    errors: list[str] = []
    counter = iter(range(requests))
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(base_url=url, timeout=60) as session:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                files = {"files": (f"case{i}.png", images[i % len(images)], "image/png")}
                start = time.perf_counter()
                response = session.post("/api/predict", files=files)
                elapsed = time.perf_counter() - start
                with lock:
                    latencies.append(elapsed)
                    if response.status_code != 200:
                        errors.append(f"{response.status_code}: {response.text[:200]}")

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    if errors:
        raise SystemExit(f"{len(errors)} requests failed, e.g. {errors[0]}")
    return latencies, wall


def row(label: str, latencies: list[float], wall: float, clients: int) -> list[str]:
    ms = np.asarray(latencies) * 1000
    return [
        label,
        str(clients),
        str(len(latencies)),
        f"{np.percentile(ms, 50):.1f}",
        f"{np.percentile(ms, 95):.1f}",
        f"{np.percentile(ms, 99):.1f}",
        f"{statistics.fmean(ms):.1f}",
        f"{len(latencies) / wall:.1f}",
    ]


def main() -> None:
    args = parse_args()
    images = test_images(args.run)
    port = free_port()
    server = start_server(args.run, port)
    url = f"http://{HOST}:{port}"
    try:
        load(url, images, args.warmup, 1)
        single = load(url, images, args.single, 1)
        loaded = load(url, images, args.requests, args.clients)
        info = httpx.get(url + "/api/info").json()
    finally:
        server.terminate()
        server.wait(timeout=30)
    header = ["load", "clients", "requests", "p50 ms", "p95 ms", "p99 ms", "mean ms", "req/s"]
    table = markdown_table(
        header,
        [
            row("one client, sequential", *single, 1),
            row(f"{args.clients} concurrent clients", *loaded, args.clients),
        ],
    )
    notes = (
        f"`POST /api/predict` with one {info['image_size']} px {info['backbone']} image per "
        f"request (a PNG of a test case of run `{args.run.name}`, method {info['method']}, "
        f"{info['training_cases']} training cases, K_p = {info['neighbours']} neighbours with "
        "their thumbnail URLs in the answer), after "
        f"{args.warmup} warm-up requests. Server: `medknn serve` (uvicorn, one process, one "
        f"forward pass at a time) on {HOST}; clients: threads of this script with keep-alive "
        "connections on the same 2 cores, so client time is part of the figures. Target: p95 "
        "under 150 ms for one image on 2 cores. With several clients in flight a request also "
        "waits for those ahead of it, so its latency is about (clients × service time); "
        "requests/s is the throughput. The run: `medknn train --config "
        "benchmarks/specs/serve_lite0_64.yaml`."
    )
    if args.no_write:
        print(table + "\n\n" + notes)
        return
    write_report(
        "bench_serve",
        "medknn serve: latency and throughput of /api/predict",
        table,
        {
            "torch": version("torch"),
            "fastapi": version("fastapi"),
            "uvicorn": version("uvicorn"),
            "httpx": version("httpx"),
        },
        notes,
    )


if __name__ == "__main__":
    main()
