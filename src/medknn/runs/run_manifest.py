"""The manifest of a finished run: size and SHA-256 of every file that loading the run reads.

Written when a run finishes; checked before any reader (faiss's native one above all) touches a
file, so that a truncated, damaged or altered file is refused by name instead of crashing the
process. It guards against damage and careless edits, not against a sender who rewrites the
manifest too: docs/guide.md ("Trust model") says what that means for a run received from others.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from medknn.errors import DataError
from medknn.io import atomic_write_json
from medknn.runs.run_dir import RunDir

MANIFEST = "manifest.json"
_FORMAT = "medknn.manifest/1"
_CHUNK = 1 << 20


def manifest_path(run_dir: RunDir) -> Path:
    return run_dir.path / MANIFEST


def loading_files(run_dir: RunDir) -> list[Path]:
    """The files that loading and re-scoring the run read: config, data record, split, weights,
    decision rule and every file of ``knn/`` (not the ``.*.tmp`` files a kill leaves)."""
    files = [run_dir.config, run_dir.data, run_dir.split, run_dir.model, run_dir.decision]
    if run_dir.knn.is_dir():
        files += sorted(p for p in run_dir.knn.iterdir() if p.is_file() and p.name[0] != ".")
    return [p for p in files if p.is_file()]


def file_entry(path: Path) -> dict[str, int | str]:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return {"size": path.stat().st_size, "sha256": digest.hexdigest()}


def write_manifest(run_dir: RunDir) -> Path:
    """Record every loading file of the run (atomically: a reader sees the old or the new one)."""
    files = {p.relative_to(run_dir.path).as_posix(): file_entry(p) for p in loading_files(run_dir)}
    return atomic_write_json(manifest_path(run_dir), {"format": _FORMAT, "files": files})


def refresh_manifest(run_dir: RunDir, *paths: Path) -> None:
    """Update the entries of ``paths`` after medknn itself rewrote them (no manifest: nothing)."""
    manifest = read_manifest(run_dir)
    if manifest is None:
        return
    for path in paths:
        manifest[path.relative_to(run_dir.path).as_posix()] = file_entry(path)
    atomic_write_json(manifest_path(run_dir), {"format": _FORMAT, "files": manifest})


def remove_manifest(run_dir: RunDir) -> None:
    """A run being trained further is no longer the one the manifest describes."""
    manifest_path(run_dir).unlink(missing_ok=True)


def read_manifest(run_dir: RunDir) -> dict[str, dict] | None:
    """The manifest's entries, or None for a run written before manifests (still loadable)."""
    path = manifest_path(run_dir)
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        files = manifest["files"]
        ok = manifest.get("format") == _FORMAT and all(
            isinstance(name, str)
            and isinstance(entry, dict)
            and isinstance(entry.get("size"), int)
            and isinstance(entry.get("sha256"), str)
            for name, entry in files.items()
        )
    except (ValueError, TypeError, KeyError, AttributeError):
        ok = False
    if not ok:
        raise DataError(
            f"{path} is damaged (not a medknn manifest), so the run's files cannot be checked. "
            "Copy the run again from its source; if you trust its files as they are, "
            f"`medknn repair {run_dir.path}` writes a new manifest."
        )
    return files


@dataclass(frozen=True)
class ManifestCheck:
    """The outcome of checking a run against its manifest."""

    has_manifest: bool
    bad: dict[str, str]  # relative path → what is wrong (missing, size, content)

    def describe(self, run: Path) -> str:
        return "; ".join(f"{run / name}: {why}" for name, why in self.bad.items())


def check_manifest(run_dir: RunDir) -> ManifestCheck:
    """Compare every file the manifest lists with its recorded size, then its SHA-256 (the size
    first: a truncated multi-gigabyte file is refused without reading it)."""
    manifest = read_manifest(run_dir)
    if manifest is None:
        return ManifestCheck(False, {})
    bad: dict[str, str] = {}
    root = run_dir.path.resolve()
    for name, entry in manifest.items():
        path = (run_dir.path / name).resolve()
        if root not in path.parents:  # a hand-made manifest must not send us outside the run
            bad[name] = "outside the run directory"
        elif not path.is_file():
            bad[name] = "missing"
        elif path.stat().st_size != entry["size"]:
            bad[name] = f"{path.stat().st_size} bytes, the manifest says {entry['size']}"
        elif file_entry(path)["sha256"] != entry["sha256"]:
            bad[name] = "content differs from the manifest (SHA-256)"
    return ManifestCheck(True, bad)
