"""Seeded mutations of a run directory's files, each followed by ``medknn predict`` in-process.

Started by ``test_hardening.py`` in a child process, so that a native crash or a hang ends this
process (the test then fails, naming the case) instead of the test suite. Writes one JSON line
per case: the file, the mutation, the exit code, the seconds and whether a traceback escaped.

    python tests/fuzz_predict.py RUN IMAGE CASES SEED OUT.jsonl
"""

from __future__ import annotations

import faulthandler
import json
import random
import shutil
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from medknn.cli import app

CASE_LIMIT = 30.0  # seconds: a predict that takes longer counts as a hang (the process ends)


def mutate(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """One damage a file can suffer: cut short, bytes changed (anywhere, or in the header,
    where the lengths and counts are), bytes inserted, a block zeroed, or other bytes."""
    kind = rng.choice(["truncate", "flip", "flip_header", "insert", "zero", "replace"])
    size = len(data)
    if kind == "truncate":
        return data[: rng.randrange(size + 1)], kind
    if kind in ("flip", "flip_header"):
        buffer = bytearray(data)
        span = min(size, 64) if kind == "flip_header" else size
        for _ in range(rng.randint(1, 8) if span else 0):
            buffer[rng.randrange(span)] = rng.randrange(256)
        return bytes(buffer), kind
    if kind == "insert":
        at = rng.randrange(size + 1)
        return data[:at] + rng.randbytes(rng.randint(1, 32)) + data[at:], kind
    if kind == "zero":
        at = rng.randrange(size + 1)
        return data[:at] + bytes(min(rng.randint(1, 256), size - at)) + data[at + 256 :], kind
    return rng.randbytes(rng.randint(0, 64)), kind


def main(run: Path, image: Path, cases: int, seed: int, out: Path) -> None:
    rng = random.Random(seed)
    runner = CliRunner()
    manifest = run / "manifest.json"
    aside = run.parent / "manifest.json.aside"
    files = sorted(p for p in run.rglob("*") if p.is_file() and p.suffix != ".tmp")
    with open(out, "w", encoding="utf-8") as log:
        for case in range(cases):
            # Every third case is a run from before manifests: the readers' own checks (and the
            # probe of the faiss file in a child process) must hold then.
            legacy = case % 3 == 2
            if legacy:
                shutil.move(manifest, aside)
            target = rng.choice([f for f in files if not (legacy and f == manifest)])
            original = target.read_bytes()
            damaged, kind = mutate(original, rng)
            target.write_bytes(damaged)
            faulthandler.dump_traceback_later(CASE_LIMIT, exit=True)
            started = time.perf_counter()
            result = runner.invoke(app, ["predict", str(run), str(image), "--json"])
            seconds = time.perf_counter() - started
            faulthandler.cancel_dump_traceback_later()
            target.write_bytes(original)
            if legacy:
                shutil.move(aside, manifest)
            escaped = result.exception is not None and not isinstance(result.exception, SystemExit)
            record = {
                "case": case,
                "file": str(target.relative_to(run)),
                "mutation": kind,
                "changed": damaged != original,
                "legacy": legacy,
                "exit_code": result.exit_code,
                "seconds": round(seconds, 3),
                "traceback": escaped or "Traceback" in result.output,
                "message": (result.stderr.strip().splitlines() or [""])[-1][:300],
            }
            log.write(json.dumps(record) + "\n")
            log.flush()


if __name__ == "__main__":
    run_arg, image_arg, cases_arg, seed_arg, out_arg = sys.argv[1:6]
    main(Path(run_arg), Path(image_arg), int(cases_arg), int(seed_arg), Path(out_arg))
