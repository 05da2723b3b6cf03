"""DICOM pixel data as an 8-bit image: modality LUT, VOI LUT or window, MONOCHROME1 inverted.

Only pixels leave this module: no tag value (patient name, ID, dates) is ever put in a returned
value, an error message or a warning, so nothing identifying reaches a run directory or a log.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np
from PIL import Image

from medknn.errors import ConfigError, DataError, ImageTooLargeError

if TYPE_CHECKING:  # pydicom itself is imported when a DICOM file is read
    from pydicom import Dataset

DICOM_EXTENSIONS = (".dcm", ".dicom")
# What PIL reads; a file with any other suffix (or none) is DICOM if it starts like one.
RASTER_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
# The two percentiles of the "auto" window when a file carries no window of its own: robust to a
# few extreme pixels (metal, padding values) that a min–max window would let dominate.
AUTO_PERCENTILES = (0.5, 99.5)
_DECODERS_HINT = (
    "install the optional DICOM decoders: pip install 'medknn[dicom]' (pylibjpeg, "
    "pylibjpeg-libjpeg, pylibjpeg-openjpeg)"
)


@dataclass(frozen=True)
class DicomOptions:
    """How DICOM pixels become 8-bit: ``window`` = "auto" (the file's VOI LUT or window, else a
    percentile window), "none" (the image's min..max) or "C,W" (centre, width in modality units,
    e.g. Hounsfield units for CT); ``frame`` picks one frame of a multi-frame file."""

    window: str = "auto"
    frame: int | None = None

    def __post_init__(self) -> None:
        parse_window(self.window)
        if self.frame is not None and (not isinstance(self.frame, int) or self.frame < 0):
            raise ConfigError(f"dicom_frame={self.frame!r} must be a frame number >= 0")

    @property
    def is_default(self) -> bool:
        return self == DicomOptions()


def dicom_options(data_options: Mapping[str, Any]) -> DicomOptions:
    """The DICOM options among a run's ``data_options`` (the defaults when absent), so that new
    images are decoded the way the training images were."""
    return DicomOptions(
        window=data_options.get("dicom_window", "auto"), frame=data_options.get("dicom_frame")
    )


def parse_window(window: str) -> tuple[float, float] | str:
    """ "auto" / "none", or the (centre, width) of "C,W"; ConfigError otherwise."""
    text = str(window).strip().lower()
    if text in ("auto", "none"):
        return text
    try:
        centre, width = (float(part) for part in text.split(","))
    except ValueError:
        raise ConfigError(
            f"dicom_window={window!r}: use auto, none, or centre,width such as 40,400"
        ) from None
    if not width > 0:
        raise ConfigError(f"dicom_window={window!r}: the width must be positive")
    return centre, width


def has_dicom_preamble(path: str | os.PathLike) -> bool:
    """True if the file carries the DICOM Part 10 marker "DICM" after its 128-byte preamble."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return head[128:132] == b"DICM"


def is_dicom_path(path: str | os.PathLike) -> bool:
    """A .dcm/.dicom name, or a file with another (or no) suffix that starts like DICOM."""
    suffix = Path(path).suffix.lower()
    if suffix in DICOM_EXTENSIONS:
        return True
    return suffix not in RASTER_EXTENSIONS and has_dicom_preamble(path)


def _read_dataset(source: str | os.PathLike | BinaryIO, name: str) -> Dataset:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        with warnings.catch_warnings():
            # pydicom's warnings quote tag values, which may identify the patient.
            warnings.simplefilter("ignore")
            dataset = pydicom.dcmread(source)
    except InvalidDicomError:
        raise DataError(
            f"{name} is not a DICOM file (no 'DICM' marker after the 128-byte preamble); "
            "give a DICOM Part 10 file or a PNG/JPEG image"
        ) from None
    except (OSError, EOFError, ValueError, KeyError, TypeError) as error:
        raise DataError(
            f"cannot read DICOM file {name} ({type(error).__name__}); is it truncated or damaged?"
        ) from None
    if "PixelData" not in dataset:
        raise DataError(f"DICOM file {name} holds no image (no pixel data)")
    return dataset


def _pixel_array(dataset: Dataset, name: str) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return dataset.pixel_array
    except (RuntimeError, NotImplementedError) as error:
        syntax = dataset.file_meta.get("TransferSyntaxUID")
        syntax_name = getattr(syntax, "name", str(syntax))
        if syntax is not None and getattr(syntax, "is_compressed", False):
            raise DataError(
                f"cannot decode {name}: its pixel data is compressed as {syntax_name} and no "
                f"installed decoder reads it; {_DECODERS_HINT}"
            ) from None
        raise DataError(f"cannot decode the pixel data of {name}: {error}") from None
    except (ValueError, EOFError, OSError):
        raise DataError(
            f"cannot decode the pixel data of {name}: it is shorter than its header says "
            "(truncated or damaged file)"
        ) from None


def _linear_window(values: np.ndarray, centre: float, width: float, function: str) -> np.ndarray:
    """0..1 by the DICOM VOI functions (PS3.3 C.11.2.1.2); LINEAR is the default."""
    if function == "SIGMOID":
        return 1.0 / (1.0 + np.exp(-4.0 * (values - centre) / width))
    if function == "LINEAR_EXACT":
        return np.clip((values - centre) / width + 0.5, 0.0, 1.0)
    if width <= 1:  # the standard's LINEAR needs width >= 1; width 1 is a threshold at the centre
        return (values > centre - 0.5).astype(np.float64)
    return np.clip((values - (centre - 0.5)) / (width - 1.0) + 0.5, 0.0, 1.0)


def _first(value: object) -> float:
    from pydicom.multival import MultiValue

    # WindowCenter/Width may hold several windows; the first is the one a viewer opens with.
    return float(value[0]) if isinstance(value, MultiValue | list | tuple) else float(value)


def _grey_unit(
    pixels: np.ndarray, dataset: Dataset, window: tuple[float, float] | str
) -> np.ndarray:
    """Grey pixels → modality values (float64, so 16-bit signed data cannot overflow) → 0..1."""
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    values = np.asarray(apply_modality_lut(pixels, dataset), dtype=np.float64)
    function = str(dataset.get("VOILUTFunction", "LINEAR")).upper()
    if isinstance(window, tuple):
        return _linear_window(values, *window, function)
    if window == "auto" and "VOILUTSequence" in dataset:
        lut = dataset.VOILUTSequence[0]
        bits = int(lut.LUTDescriptor[2])
        # The VOI LUT indexes modality values (integers by then).
        modality = np.rint(values).astype(np.int64)
        mapped = apply_voi_lut(modality, dataset, index=0, prefer_lut=True)
        return np.clip(np.asarray(mapped, dtype=np.float64) / (2**bits - 1), 0.0, 1.0)
    if window == "auto" and "WindowCenter" in dataset and "WindowWidth" in dataset:
        centre, width = _first(dataset.WindowCenter), _first(dataset.WindowWidth)
        if width > 0:
            return _linear_window(values, centre, width, function)
    if window == "auto":
        low, high = np.percentile(values, AUTO_PERCENTILES)
    else:  # "none": the image's own range
        low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros_like(values)
    return np.clip((values - low) / (high - low), 0.0, 1.0)


def _colour_unit(pixels: np.ndarray, dataset: Dataset) -> np.ndarray:
    if str(dataset.get("PhotometricInterpretation", "")) == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        pixels = apply_color_lut(pixels, dataset)
        maximum = 255.0 if pixels.dtype == np.uint8 else 65535.0
    else:  # RGB (pydicom converts YBR to RGB when decoding)
        maximum = float(2 ** int(dataset.get("BitsStored", 8)) - 1)
    return np.clip(np.asarray(pixels, dtype=np.float64) / maximum, 0.0, 1.0)


def decode_dicom(
    source: str | os.PathLike | BinaryIO,
    options: DicomOptions = DicomOptions(),  # noqa: B008 (frozen, immutable)
    *,
    name: str | None = None,
    max_pixels: int | None = None,
) -> Image.Image:
    """A DICOM file (path or binary file object) as a PIL image in mode L (grey) or RGB.

    ``name`` is what error messages call the file (default: the path). ``max_pixels`` refuses
    larger frames before their pixel data is decoded.
    """
    name = name or str(source)
    window = parse_window(options.window)
    dataset = _read_dataset(source, name)
    rows, columns = int(dataset.get("Rows", 0) or 0), int(dataset.get("Columns", 0) or 0)
    if max_pixels is not None and rows * columns > max_pixels:
        raise ImageTooLargeError(
            f"DICOM image {name} is {columns}×{rows} pixels, more than the limit of {max_pixels}"
        )
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    if frames > 1 and options.frame is None:
        raise DataError(
            f"DICOM file {name} holds {frames} frames; medknn reads one 2-D image per file. "
            "Choose one with the data option dicom_frame (0-based), or export the frames as "
            "separate files"
        )
    if options.frame is not None and options.frame >= frames:
        raise DataError(f"DICOM file {name} has {frames} frame(s); dicom_frame={options.frame}")
    pixels = _pixel_array(dataset, name)
    if frames > 1:
        pixels = pixels[options.frame]
    samples = int(dataset.get("SamplesPerPixel", 1) or 1)
    photometric = str(dataset.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if samples == 3 or photometric == "PALETTE COLOR":
        unit = _colour_unit(pixels, dataset)
    else:
        unit = _grey_unit(pixels, dataset, window)
        if photometric == "MONOCHROME1":  # low values are white: flip to MONOCHROME2's sense
            unit = 1.0 - unit
    array = np.rint(unit * 255.0).astype(np.uint8)
    return Image.fromarray(array, mode="RGB" if array.ndim == 3 else "L")


def dicom_group(path: str | os.PathLike, tag: str) -> str:
    """A DICOM tag's value as a split group, hashed: equal values share a group while the value
    itself (e.g. a PatientID) is never stored or shown."""
    import pydicom
    from pydicom.datadict import tag_for_keyword

    if tag_for_keyword(tag) is None:
        raise ConfigError(
            f"{tag!r} is not a DICOM keyword (use e.g. PatientID or StudyInstanceUID)"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dataset = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=[tag])
    except Exception:  # any unreadable header; the message says which file, never its content
        raise DataError(f"cannot read the DICOM header of {path} for its {tag}") from None
    value = str(dataset.get(tag, "") or "")
    if not value:
        return f"(no {tag}) {path}"
    return "dicom-" + hashlib.sha256(value.encode()).hexdigest()[:16]
