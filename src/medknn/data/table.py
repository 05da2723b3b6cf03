"""An image table: ids, labels and a reader, independent of where the images live."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image, ImageOps

from medknn.data.dicom import DicomOptions, decode_dicom, is_dicom_path
from medknn.errors import DataError

# Modes that hold one grey channel; everything else is converted to RGB.
_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}


@runtime_checkable
class ImageReader(Protocol):
    """Reads image ``i`` of a table. Implementations must be picklable (DataLoader workers)."""

    def __len__(self) -> int: ...

    def open(self, i: int, *, draft_size: tuple[int, int] | None = None) -> Image.Image:
        """Image ``i`` as a PIL image in mode L or RGB; ``draft_size`` is a decoding hint."""
        ...

    def read(self, i: int) -> np.ndarray:
        """Image ``i`` as uint8 H×W×C with C = 1 (grey) or 3 (RGB)."""
        ...

    def subset(self, indices: np.ndarray) -> ImageReader: ...

    def fingerprint(self) -> str:
        """A hash that changes when the underlying pixels may have changed (cache key)."""
        ...


def _as_hwc(image: Image.Image) -> np.ndarray:
    array = np.asarray(image, dtype=np.uint8)
    return array[:, :, None] if array.ndim == 2 else array


def to_l_or_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("L", "RGB"):
        return image
    if image.mode in _GRAY_MODES:
        if image.mode.startswith("I") or image.mode == "F":
            # 16-bit / float grey (e.g. some X-ray PNGs): scale the used range to 0..255.
            array = np.asarray(image, dtype=np.float64)
            low, high = float(array.min()), float(array.max())
            scaled = (array - low) / (high - low) * 255.0 if high > low else np.zeros_like(array)
            return Image.fromarray(scaled.round().astype(np.uint8), mode="L")
        return image.convert("L")
    return image.convert("RGB")


@dataclass(frozen=True)
class FileImageReader:
    """Reads image files with PIL, EXIF orientation applied: mode L if grey, else RGB. DICOM
    files (``.dcm``, or any file that starts like DICOM) are decoded with ``dicom``'s options."""

    root: Path
    paths: tuple[str, ...]  # relative to root
    dicom: DicomOptions = DicomOptions()

    def __len__(self) -> int:
        return len(self.paths)

    def path(self, i: int) -> Path:
        return self.root / self.paths[i]

    def open(self, i: int, *, draft_size: tuple[int, int] | None = None) -> Image.Image:
        if is_dicom_path(self.path(i)):
            # Named by its relative path: the case id, never a tag of the file.
            return decode_dicom(self.path(i), self.dicom, name=self.paths[i])
        with Image.open(self.path(i)) as image:
            if draft_size is not None and image.format == "JPEG":
                # JPEG can decode at 1/2, 1/4, 1/8 scale for free; PIL keeps it >= draft_size.
                image.draft(image.mode, draft_size)
            image = ImageOps.exif_transpose(image)
            image.load()
            return to_l_or_rgb(image)

    def read(self, i: int) -> np.ndarray:
        return _as_hwc(self.open(i))

    def subset(self, indices: np.ndarray) -> FileImageReader:
        return replace(self, paths=tuple(self.paths[int(i)] for i in indices))

    def fingerprint(self) -> str:
        digest = hashlib.sha256(str(self.root.resolve()).encode())
        if not self.dicom.is_default:  # default options keep the caches made before DICOM
            digest.update(f"dicom {self.dicom.window} {self.dicom.frame}\n".encode())
        for relative in self.paths:
            try:
                stat = os.stat(self.root / relative)
                digest.update(f"{relative}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
            except OSError:
                digest.update(f"{relative}\0missing\n".encode())
        return digest.hexdigest()


@dataclass(frozen=True)
class ArrayImageReader:
    """Reads images from an in-memory uint8 array N×H×W or N×H×W×C (MedMNIST npz)."""

    images: np.ndarray
    index: np.ndarray | None = None  # positions into ``images``; None means all, in order

    def __post_init__(self) -> None:
        if self.images.dtype != np.uint8 or self.images.ndim not in (3, 4):
            raise DataError(
                f"image array must be uint8 N×H×W or N×H×W×C, got {self.images.dtype} "
                f"with shape {self.images.shape}"
            )

    def __len__(self) -> int:
        return len(self.images) if self.index is None else len(self.index)

    def read(self, i: int) -> np.ndarray:
        position = i if self.index is None else int(self.index[i])
        array = self.images[position]
        return array[:, :, None] if array.ndim == 2 else array

    def open(self, i: int, *, draft_size: tuple[int, int] | None = None) -> Image.Image:
        array = self.read(i)
        return Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)

    def subset(self, indices: np.ndarray) -> ArrayImageReader:
        indices = np.asarray(indices, dtype=np.int64)
        return replace(self, index=indices if self.index is None else self.index[indices])

    def fingerprint(self) -> str:
        digest = hashlib.sha256(np.ascontiguousarray(self.images).tobytes())
        if self.index is not None:
            digest.update(np.ascontiguousarray(self.index).tobytes())
        return digest.hexdigest()


@dataclass
class ImageTable:
    """Samples of one dataset: unique ids, integer labels, a reader, optional groups and split."""

    ids: list[str]  # unique per sample: path relative to the source root, or "train/17" for npz
    labels: np.ndarray  # int64 (N,), index into class_names
    class_names: list[str]
    reader: ImageReader
    groups: np.ndarray | None = None  # (N,) str; one group never spans two splits
    official_split: np.ndarray | None = None  # (N,) str in {"train", "val", "test"}
    name: str = ""
    source: str = ""
    # ids dropped from the source (e.g. unreadable images) → reason; kept for the run's records.
    dropped: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        n = len(self.ids)
        if len(self.labels) != n or len(self.reader) != n:
            raise DataError(
                f"table {self.name or self.source!r}: {n} ids, {len(self.labels)} labels and "
                f"{len(self.reader)} images must have the same length"
            )
        if len(set(self.ids)) != n:
            raise DataError(f"table {self.name or self.source!r}: sample ids are not unique")
        if n and (self.labels.min() < 0 or self.labels.max() >= len(self.class_names)):
            raise DataError(
                f"table {self.name or self.source!r}: labels must lie in "
                f"0..{len(self.class_names) - 1}"
            )
        for attribute in ("groups", "official_split"):
            values = getattr(self, attribute)
            if values is not None:
                values = np.asarray(values, dtype=str)
                if len(values) != n:
                    raise DataError(f"table {self.name!r}: {attribute} has {len(values)} != {n}")
                setattr(self, attribute, values)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def class_counts(self, indices: np.ndarray | None = None) -> np.ndarray:
        """Samples per class, over all rows or over ``indices``."""
        labels = (
            self.labels if indices is None else self.labels[np.asarray(indices, dtype=np.int64)]
        )
        return np.bincount(labels, minlength=self.num_classes)

    def select(self, keep: np.ndarray) -> ImageTable:
        """The rows in ``keep`` (a boolean mask or integer indices), in order."""
        keep = np.asarray(keep)
        if keep.dtype == bool and len(keep) != len(self):
            raise DataError(f"select: mask has {len(keep)} entries, the table has {len(self)} rows")
        indices = np.flatnonzero(keep) if keep.dtype == bool else keep.astype(np.int64)
        return replace(
            self,
            ids=[self.ids[i] for i in indices],
            labels=self.labels[indices],
            reader=self.reader.subset(indices),
            groups=None if self.groups is None else self.groups[indices],
            official_split=None if self.official_split is None else self.official_split[indices],
            dropped=dict(self.dropped),
        )
