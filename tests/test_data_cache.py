"""Decoding images once: resize + centre crop, channels, unreadable files, the .npy cache."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import medknn.data.cache as cache_module
from medknn.data import (
    CACHE_ENV_VAR,
    decode_images,
    default_cache_dir,
    load_dataset,
    load_image_folder,
    load_medmnist_npz,
)
from medknn.data.catalog import resolve_data_root
from medknn.errors import ConfigError, DataError


def _stripes(path: Path) -> None:
    """40×20 RGB: red left quarter, green middle half, blue right quarter."""
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)
    pixels[:, :10, 0] = pixels[:, 10:30, 1] = pixels[:, 30:, 2] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def _gray(path: Path, value: int = 77, size: tuple[int, int] = (16, 24)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", size, value).save(path)


@pytest.fixture
def mixed_folder(tmp_path: Path) -> Path:
    root = tmp_path / "imgs"
    _stripes(root / "a" / "stripes.png")
    _gray(root / "b" / "gray.png")
    return root


def test_shorter_side_resized_and_long_side_cropped(mixed_folder: Path) -> None:
    table, images = decode_images(load_image_folder(mixed_folder), 10, use_cache=False)
    assert images.shape == (2, 10, 10, 3) and images.dtype == np.uint8
    stripes = images[table.ids.index("a/stripes.png")]
    assert (stripes[..., 1] > 200).all() and (stripes[..., [0, 2]] < 60).all()  # only green kept
    gray = images[table.ids.index("b/gray.png")]
    assert (gray == 77).all()  # grey repeated into all three channels


def test_all_grey_images_keep_one_channel(tmp_path: Path) -> None:
    for name in ("x", "y"):
        _gray(tmp_path / "g" / name / f"{name}.png")
    _, images = decode_images(load_image_folder(tmp_path / "g"), 12, use_cache=False)
    assert images.shape == (2, 12, 12, 1)


def test_medmnist_arrays_are_upscaled(tmp_path: Path) -> None:
    arrays = {}
    for split, n in (("train", 4), ("val", 2), ("test", 2)):
        arrays[f"{split}_images"] = np.full((n, 28, 28), 200, dtype=np.uint8)
        arrays[f"{split}_labels"] = np.zeros((n, 1), dtype=np.uint8)
    np.savez(tmp_path / "m.npz", **arrays)
    table, images = decode_images(load_medmnist_npz(tmp_path / "m.npz"), 32, use_cache=False)
    assert images.shape == (8, 32, 32, 1) and (images == 200).all() and len(table) == 8


def test_unreadable_image_is_skipped_and_listed(mixed_folder: Path) -> None:
    (mixed_folder / "a" / "broken.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg")
    source = load_image_folder(mixed_folder)
    with pytest.warns(UserWarning, match=r"skipping 1 unreadable image.*a/broken\.jpg"):
        table, images = decode_images(source, 8, use_cache=False, progress=False)
    assert len(table) == len(images) == 2
    assert "a/broken.jpg" not in table.ids and list(table.dropped) == ["a/broken.jpg"]
    assert table.labels.tolist() == [0, 1]
    with pytest.raises(DataError, match=r"1 image\(s\) of 'imgs' cannot be read: a/broken\.jpg"):
        decode_images(source, 8, strict=True, use_cache=False)


def test_nothing_readable_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "d" / "a").mkdir(parents=True)
    (tmp_path / "d" / "a" / "x.png").write_bytes(b"garbage")
    with pytest.raises(DataError, match="cannot be read"):
        decode_images(load_image_folder(tmp_path / "d"), 8, use_cache=False)


def test_cache_is_reused_and_keyed_by_size_and_files(
    mixed_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (mixed_folder / "a" / "broken.png").write_bytes(b"garbage")
    cache_dir = tmp_path / "cache"
    source = load_image_folder(mixed_folder)
    with pytest.warns(UserWarning):
        first_table, first = decode_images(source, 9, cache_dir=cache_dir)
    assert len(list(cache_dir.glob("*.npy"))) == 1

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again instead of using the cache")

    with monkeypatch.context() as patch:
        patch.setattr(cache_module, "_decode_all", no_decoding)
        with pytest.warns(UserWarning, match="broken.png"):
            cached_table, cached = decode_images(source, 9, cache_dir=cache_dir)
    np.testing.assert_array_equal(cached, first)
    assert cached_table.ids == first_table.ids and cached_table.dropped == first_table.dropped

    with pytest.warns(UserWarning):
        decode_images(source, 10, cache_dir=cache_dir)  # another size: another entry
    later = time.time() + 10
    os.utime(mixed_folder / "b" / "gray.png", (later, later))  # a changed file: another entry
    with pytest.warns(UserWarning):
        decode_images(load_image_folder(mixed_folder), 9, cache_dir=cache_dir)
    assert len(list(cache_dir.glob("*.npy"))) == 3


def test_default_cache_dir_honours_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_ENV_VAR, str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"


def test_bad_size() -> None:
    with pytest.raises(ConfigError, match="image size 0"):
        decode_images(None, 0)  # type: ignore[arg-type]


def test_real_ham10000_subset_decodes() -> None:
    try:
        ham = load_dataset("ham10000", data_root=resolve_data_root())
    except DataError:
        pytest.skip("shared data not available")
    subset = ham.select(np.arange(0, len(ham), len(ham) // 200)[:200])
    table, images = decode_images(subset, 73, use_cache=False, progress=False)
    assert images.shape == (200, 73, 73, 3) and len(table) == 200
    assert 40 < images.mean() < 230 and images.std() > 5  # real pictures, not blank
