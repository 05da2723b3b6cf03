"""Decode every image of a table once into a uint8 array, with an optional on-disk cache."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from rich.progress import track

from medknn.data.table import ImageTable
from medknn.errors import ConfigError, DataError
from medknn.io import atomic_write_json

CACHE_ENV_VAR = "MEDKNN_CACHE"
_CACHE_FORMAT = 1  # bump when decoding changes, so old cache files are not reused
# What a broken or unreadable image file can raise while PIL opens or decodes it.
_UNREADABLE = (OSError, ValueError, SyntaxError, Image.DecompressionBombError, DataError)


def default_cache_dir() -> Path:
    """``$MEDKNN_CACHE``, else ``~/.cache/medknn``."""
    return Path(os.environ.get(CACHE_ENV_VAR) or Path.home() / ".cache" / "medknn").expanduser()


def _cache_key(table: ImageTable, size: int) -> str:
    digest = hashlib.sha256(f"{_CACHE_FORMAT}\n{size}\n{table.source}\n".encode())
    digest.update(table.reader.fingerprint().encode())
    digest.update("\n".join(table.ids).encode())
    return digest.hexdigest()[:24]


def _save_npy_atomic(path: Path, array: np.ndarray) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.save(handle, array)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _load_cached(stem: Path, table: ImageTable) -> tuple[np.ndarray, dict[str, str]] | None:
    npy, meta = stem.with_suffix(".npy"), stem.with_suffix(".json")
    if not (npy.is_file() and meta.is_file()):
        return None
    try:
        dropped = json.loads(meta.read_text(encoding="utf-8"))["dropped"]
        images = np.load(npy, allow_pickle=False)
    except (OSError, ValueError, KeyError):
        return None  # a damaged cache entry is rebuilt, never trusted
    if images.dtype != np.uint8 or len(images) != len(table) - len(dropped):
        return None
    return images, dropped


def _store_cached(stem: Path, images: np.ndarray, dropped: dict[str, str]) -> None:
    try:
        stem.parent.mkdir(parents=True, exist_ok=True)
        # The .npy is written last: its presence means the entry is complete.
        atomic_write_json(stem.with_suffix(".json"), {"dropped": dropped, "shape": images.shape})
        _save_npy_atomic(stem.with_suffix(".npy"), images)
    except OSError as error:
        warnings.warn(f"could not write the image cache {stem}.npy: {error}", stacklevel=3)


def fit_square(image: Image.Image, size: int) -> np.ndarray:
    """uint8 size×size(×C): the shorter side resized to ``size``, the longer centre-cropped."""
    # ImageOps.fit = resize the shorter side to `size`, centre-crop the longer one.
    return np.asarray(ImageOps.fit(image, (size, size), Image.Resampling.BICUBIC), dtype=np.uint8)


def _decode_all(table: ImageTable, size: int, progress: bool) -> tuple[np.ndarray, dict[str, str]]:
    images = np.zeros((len(table), size, size, 3), dtype=np.uint8)
    gray = np.zeros(len(table), dtype=bool)
    failed: dict[str, str] = {}
    steps = track(
        range(len(table)),
        description=f"decoding {table.name or 'images'} at {size}px",
        disable=not progress,
        transient=True,
    )
    for i in steps:
        try:
            pixels = fit_square(table.reader.open(i, draft_size=(size, size)), size)
        except _UNREADABLE as error:
            failed[table.ids[i]] = f"{type(error).__name__}: {error}"
            continue
        gray[i] = pixels.ndim == 2
        images[i] = pixels[:, :, None] if gray[i] else pixels  # grey fills all three channels
    readable = np.array([sample_id not in failed for sample_id in table.ids], dtype=bool)
    images = images[readable] if failed else images
    if readable.any() and gray[readable].all():
        images = np.ascontiguousarray(images[..., :1])
    return images, failed


def decode_images(
    table: ImageTable,
    size: int,
    *,
    strict: bool = False,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    progress: bool = True,
) -> tuple[ImageTable, np.ndarray]:
    """All images as uint8 N×size×size×C, and the table without the unreadable ones.

    Each image's shorter side is resized to ``size`` and the longer side centre-cropped, so the
    edges of the long side are cut. C is 1 if every image is grey, else 3 (grey images repeated).
    Unreadable images are skipped with a warning and recorded in the returned table's
    ``dropped`` (id → reason); ``strict=True`` raises a DataError instead. Results are cached as
    .npy in ``cache_dir`` (default ``$MEDKNN_CACHE`` or ``~/.cache/medknn``) unless
    ``use_cache=False``; the key covers the source, ids, file sizes/mtimes and ``size``.
    """
    if not isinstance(size, int) or size < 1:
        raise ConfigError(f"image size {size!r} must be a positive integer (pixels)")
    if len(table) == 0:
        raise DataError(f"dataset {table.name!r} has no images")
    stem = None
    cached = None
    if use_cache:
        folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        stem = folder / f"{table.name or 'images'}-{size}px-{_cache_key(table, size)}"
        cached = _load_cached(stem, table)
    if cached is not None:
        images, failed = cached
    else:
        images, failed = _decode_all(table, size, progress)
    if failed:
        listing = "; ".join(
            f"{sample_id} ({reason})" for sample_id, reason in list(failed.items())[:10]
        )
        more = f" and {len(failed) - 10} more" if len(failed) > 10 else ""
        if strict or len(failed) == len(table):
            raise DataError(
                f"{len(failed)} image(s) of {table.name!r} cannot be read: {listing}{more}"
            )
        warnings.warn(
            f"skipping {len(failed)} unreadable image(s) of {table.name!r}: {listing}{more}",
            stacklevel=2,
        )
    if stem is not None and cached is None:
        _store_cached(stem, images, failed)
    kept = table.select(np.array([sample_id not in failed for sample_id in table.ids]))
    kept.dropped.update(failed)
    return kept, images
