"""Decode one image file exactly as the cache decodes a data set, for prediction on new images."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from medknn.data.cache import fit_square
from medknn.data.table import FileImageReader
from medknn.errors import DataError


def read_image_file(path: str | os.PathLike, size: int) -> np.ndarray:
    """uint8 size×size×C: shorter side resized to ``size``, long side centre-cropped."""
    path = Path(path)
    reader = FileImageReader(path.parent, (path.name,))
    try:
        image = reader.open(0, draft_size=(size, size))
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as error:
        raise DataError(f"Cannot read image {path}: {error}. Is it an image file?") from None
    pixels = fit_square(image, size)
    return pixels[:, :, None] if pixels.ndim == 2 else pixels
