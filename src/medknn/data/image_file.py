"""Decode one image file exactly as the cache decodes a data set, for prediction on new images."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from medknn.data.cache import fit_square
from medknn.data.dicom import DicomOptions, decode_dicom
from medknn.data.table import FileImageReader, to_l_or_rgb
from medknn.errors import DataError, ImageTooLargeError

_DEFAULT_DICOM = DicomOptions()


def _hwc(pixels: np.ndarray) -> np.ndarray:
    return pixels[:, :, None] if pixels.ndim == 2 else pixels


def read_image_file(
    path: str | os.PathLike, size: int, *, dicom: DicomOptions = _DEFAULT_DICOM
) -> np.ndarray:
    """uint8 size×size×C: shorter side resized to ``size``, long side centre-cropped."""
    path = Path(path)
    reader = FileImageReader(path.parent, (path.name,), dicom)
    try:
        image = reader.open(0, draft_size=(size, size))
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as error:
        raise DataError(f"Cannot read image {path}: {error}. Is it an image file?") from None
    return _hwc(fit_square(image, size))


def read_image_bytes(
    data: bytes,
    size: int,
    *,
    name: str = "the upload",
    dicom: DicomOptions = _DEFAULT_DICOM,
    max_pixels: int | None = None,
) -> np.ndarray:
    """An uploaded image (PNG, JPEG, ... or DICOM), recognised by its content, never its name;
    uint8 size×size×C as :func:`read_image_file`. ``max_pixels`` refuses larger images before
    their pixels are decoded (DataError)."""
    if data[128:132] == b"DICM":
        image = decode_dicom(io.BytesIO(data), dicom, name=name, max_pixels=max_pixels)
        return _hwc(fit_square(image, size))
    try:
        with Image.open(io.BytesIO(data)) as opened:
            width, height = opened.size
            if max_pixels is not None and width * height > max_pixels:
                raise ImageTooLargeError(
                    f"{name} is {width}×{height} pixels, more than the limit of {max_pixels}"
                )
            if opened.format == "JPEG":
                opened.draft(opened.mode, (size, size))
            image = ImageOps.exif_transpose(opened)
            image.load()
    except UnidentifiedImageError:
        raise DataError(f"{name} is not a PNG, JPEG or DICOM image (or is damaged)") from None
    except (OSError, Image.DecompressionBombError, SyntaxError) as error:
        raise DataError(
            f"cannot read {name} as an image ({type(error).__name__}: {error}); "
            "send a PNG, JPEG or DICOM file"
        ) from None
    return _hwc(fit_square(to_l_or_rgb(image), size))
