"""Loaders that turn a folder, a CSV manifest or a MedMNIST npz into an ImageTable."""

from __future__ import annotations

import csv
import os
import string
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from medknn.data.dicom import (
    DICOM_EXTENSIONS,
    RASTER_EXTENSIONS,
    DicomOptions,
    dicom_group,
    has_dicom_preamble,
)
from medknn.data.table import ArrayImageReader, FileImageReader, ImageTable
from medknn.errors import DataError

IMAGE_EXTENSIONS = RASTER_EXTENSIONS + DICOM_EXTENSIONS
# group_column="dicom:PatientID" takes each image's group from that tag of its DICOM file.
DICOM_GROUP_PREFIX = "dicom:"
SPLIT_NAMES = ("train", "val", "test")
_SPLIT_ALIASES = {"training": "train", "valid": "val", "validation": "val", "testing": "test"}
_SHOWN = 5  # how many offending rows or files an error message lists


def _first_few(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    return shown + (f" (and {len(items) - _SHOWN} more)" if len(items) > _SHOWN else "")


def _is_image(path: Path, extensions: set[str]) -> bool:
    if not path.is_file() or path.name.startswith("."):
        return False
    # DICOM often comes without a suffix (e.g. IM000123): recognised by its "DICM" marker.
    return path.suffix.lower() in extensions or (path.suffix == "" and has_dicom_preamble(path))


def load_image_folder(
    root: str | os.PathLike,
    *,
    extensions: Iterable[str] = IMAGE_EXTENSIONS,
    dicom_window: str = "auto",
    dicom_frame: int | None = None,
) -> ImageTable:
    """One subfolder per class (``root/<class>/**/<image>``); classes = sorted folder names.

    DICOM files are read with ``dicom_window`` (auto / none / "C,W") and ``dicom_frame``
    (see :class:`~medknn.data.dicom.DicomOptions`)."""
    dicom = DicomOptions(dicom_window, dicom_frame)
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist or is not a folder")
    extensions = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not class_dirs:
        raise DataError(
            f"no class folders in {root}: put the images of each class in their own subfolder, "
            f"e.g. {root}/benign/img1.png and {root}/malignant/img2.png"
        )
    paths: list[str] = []
    labels: list[int] = []
    for label, class_dir in enumerate(class_dirs):
        files = sorted(
            p.relative_to(root).as_posix() for p in class_dir.rglob("*") if _is_image(p, extensions)
        )
        if not files:
            raise DataError(
                f"class folder {class_dir} holds no image ({', '.join(sorted(extensions))}): "
                "remove the folder or add images to it"
            )
        paths += files
        labels += [label] * len(files)
    return ImageTable(
        ids=paths,
        labels=np.array(labels, dtype=np.int64),
        class_names=[d.name for d in class_dirs],
        reader=FileImageReader(root, tuple(paths), dicom),
        name=root.name,
        source=str(root),
    )


def _read_csv(csv_path: Path) -> tuple[list[str], list[dict[str, str]]]:
    if not csv_path.is_file():
        raise DataError(f"CSV manifest {csv_path} does not exist")
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            rows = [
                {k: (v or "").strip() for k, v in row.items() if k is not None} for row in reader
            ]
            columns = list(reader.fieldnames or [])
    except (UnicodeDecodeError, csv.Error) as error:
        raise DataError(
            f"CSV manifest {csv_path} is not a UTF-8 text CSV ({type(error).__name__} near byte "
            f"{getattr(error, 'start', '?')}); save it as CSV (UTF-8) with a header row."
        ) from None
    if not columns:
        raise DataError(f"CSV manifest {csv_path} is empty: it needs a header row")
    return columns, rows


def _require_columns(csv_path: Path, columns: list[str], needed: dict[str, str | None]) -> None:
    for option, column in needed.items():
        if column is not None and column not in columns:
            raise DataError(
                f"CSV manifest {csv_path} has no column {column!r} ({option}); "
                f"columns present: {', '.join(columns)}"
            )


def _rows_with_empty(csv_path: Path, rows: list[dict[str, str]], column: str) -> None:
    # Line numbers as an editor shows them: the header is line 1.
    empty = [str(i + 2) for i, row in enumerate(rows) if not row[column]]
    if empty:
        raise DataError(
            f"CSV manifest {csv_path}: column {column!r} is empty on {len(empty)} row(s), "
            f"lines {_first_few(empty)}; fill them in or remove those rows"
        )


def _image_paths(
    csv_path: Path,
    rows: list[dict[str, str]],
    columns: list[str],
    image_column: str,
    template: str | None,
) -> list[str]:
    if template is None:
        return [row[image_column] for row in rows]
    fields = {f for _, f, _, _ in string.Formatter().parse(template) if f}
    _require_columns(csv_path, columns, {f"path_template {template!r}": f for f in sorted(fields)})
    return [template.format_map(row) for row in rows]


def _refuse_outside(csv_path: Path, root: Path, paths: list[str]) -> None:
    inside = root.resolve()
    outside = [
        f"line {i + 2}: {p!r}"
        for i, p in enumerate(paths)
        if inside not in (inside / p).resolve().parents
    ]
    if outside:
        raise DataError(
            f"CSV manifest {csv_path}: {len(outside)} image path(s) lead outside {root}: "
            f"{_first_few(outside)}. Give paths inside the manifest's folder."
        )


def _split_values(csv_path: Path, rows: list[dict[str, str]], column: str) -> np.ndarray:
    values = [_SPLIT_ALIASES.get(row[column].lower(), row[column].lower()) for row in rows]
    bad = [
        f"line {i + 2}: {rows[i][column]!r}" for i, v in enumerate(values) if v not in SPLIT_NAMES
    ]
    if bad:
        raise DataError(
            f"CSV manifest {csv_path}: column {column!r} must hold train/val/test; "
            f"found {_first_few(bad)}"
        )
    return np.array(values, dtype=str)


def load_csv_manifest(
    csv_path: str | os.PathLike,
    *,
    image_column: str = "image_id",
    path_template: str | None = "images/{image_id}.jpg",
    label_column: str = "dx",
    group_column: str | None = "lesion_id",
    root: str | os.PathLike | None = None,
    split_column: str | None = None,
    dicom_window: str = "auto",
    dicom_frame: int | None = None,
    confined: bool = False,
) -> ImageTable:
    """A CSV with one row per image.

    ``path_template`` is formatted with the row's columns (``{image_id}`` → that cell); with
    ``path_template=None`` the ``image_column`` holds the path. Paths are relative to ``root``
    (default: the CSV's folder). ``group_column`` (pass None if there is none) keeps e.g. all
    images of one lesion or patient on one side of a split; an empty group cell makes the image
    its own group; ``group_column="dicom:PatientID"`` takes the group from that tag of each
    DICOM file instead (stored hashed, never as the ID itself). ``split_column`` (train/val/test)
    becomes the table's official split. DICOM files are read with ``dicom_window`` and
    ``dicom_frame`` (see :class:`~medknn.data.dicom.DicomOptions`).
    A path may leave ``root`` (``../``, absolute) as on any local command line; with
    ``confined=True`` (for a service reading manifests on others' behalf) that is refused.
    """
    dicom = DicomOptions(dicom_window, dicom_frame)
    group_tag = None
    if group_column is not None and group_column.startswith(DICOM_GROUP_PREFIX):
        group_tag, group_column = group_column.removeprefix(DICOM_GROUP_PREFIX), None
    csv_path = Path(csv_path).expanduser()
    root = csv_path.parent if root is None else Path(root).expanduser()
    columns, rows = _read_csv(csv_path)
    _require_columns(
        csv_path,
        columns,
        {
            "image_column": image_column,
            "label_column": label_column,
            "group_column": group_column,
            "split_column": split_column,
        },
    )
    if not rows:
        raise DataError(f"CSV manifest {csv_path} has a header but no rows")
    for column in (image_column, label_column):
        _rows_with_empty(csv_path, rows, column)

    paths = _image_paths(csv_path, rows, columns, image_column, path_template)
    if confined:
        _refuse_outside(csv_path, root, paths)
    ids = [Path(os.path.relpath(root / p, root)).as_posix() for p in paths]
    seen: set[str] = set()
    duplicates = [i for i in ids if i in seen or seen.add(i)]
    if duplicates:
        raise DataError(f"CSV manifest {csv_path} lists images twice: {_first_few(duplicates)}")
    missing = [str(root / p) for p in paths if not (root / p).is_file()]
    if missing:
        raise DataError(
            f"CSV manifest {csv_path}: {len(missing)} image file(s) do not exist: "
            f"{_first_few(missing)}. Check root= (now {root}) and path_template= "
            f"(now {path_template!r})"
        )

    class_names, labels = np.unique([row[label_column] for row in rows], return_inverse=True)
    groups = None
    if group_tag is not None:
        groups = np.array([dicom_group(root / p, group_tag) for p in paths])
    elif group_column is not None:
        # An empty group cell means "not linked to any other image": its own group.
        groups = np.array(
            [row[group_column] or f"(none) {i}" for i, row in zip(ids, rows, strict=True)]
        )
    return ImageTable(
        ids=ids,
        labels=labels.astype(np.int64),
        class_names=[str(c) for c in class_names],
        reader=FileImageReader(root, tuple(paths), dicom),
        groups=groups,
        official_split=None
        if split_column is None
        else _split_values(csv_path, rows, split_column),
        name=csv_path.parent.name,
        source=str(csv_path),
    )


def load_medmnist_npz(
    path: str | os.PathLike, *, class_names: Sequence[str] | None = None
) -> ImageTable:
    """A MedMNIST-layout npz (``{train,val,test}_{images,labels}``), splits concatenated.

    The classes are named by ``class_names`` (the data option), else by a ``class_names`` array
    of text in the file, else ``0``, ``1``, ... by index."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"npz file {path} does not exist")
    if not zipfile.is_zipfile(path):
        # np.load would take any other file for a pickle and say it "contains pickled data".
        raise DataError(
            f"cannot read {path}: it is not an npz archive (an .npz is a zip of arrays, e.g. "
            "from numpy.savez); check the file."
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise DataError(f"cannot read {path} as an npz archive: {error}") from None
    needed = [f"{split}_{kind}" for split in SPLIT_NAMES for kind in ("images", "labels")]
    missing = [key for key in needed if key not in arrays]
    if missing:
        raise DataError(
            f"npz file {path} lacks the MedMNIST keys {', '.join(missing)}; "
            f"keys present: {', '.join(sorted(arrays)) or 'none'}"
        )
    labels = []
    for split in SPLIT_NAMES:
        raw = arrays[f"{split}_labels"]
        # An empty split (no val set) has no columns to infer: treat it as single-label.
        split_labels = raw.reshape(len(raw), -1) if len(raw) else raw.reshape(0, 1)
        if split_labels.shape[1] != 1:
            raise DataError(
                f"npz file {path}: {split}_labels has {split_labels.shape[1]} columns; only "
                "single-label (multi-class) data is supported"
            )
        if len(split_labels) != len(arrays[f"{split}_images"]):
            raise DataError(f"npz file {path}: {split}_images and {split}_labels differ in length")
        negative = np.flatnonzero(split_labels[:, 0] < 0)
        if negative.size:
            row = int(negative[0])
            raise DataError(
                f"npz file {path}: {split}_labels row {row} is {int(split_labels[row, 0])} "
                f"({negative.size} negative label(s)); labels are class indices 0..C-1"
            )
        labels.append(split_labels[:, 0].astype(np.int64))
    dtypes = {str(arrays[f"{split}_images"].dtype) for split in SPLIT_NAMES}
    if dtypes != {"uint8"}:
        raise DataError(f"npz file {path}: images must be uint8 (0..255), found {sorted(dtypes)}")
    shapes = {arrays[f"{split}_images"].shape[1:] for split in SPLIT_NAMES}
    if len(shapes) != 1:
        raise DataError(f"npz file {path}: the splits' images differ in shape: {sorted(shapes)}")
    all_labels = np.concatenate(labels)
    if class_names is None and "class_names" in arrays:
        stored = arrays["class_names"]
        if stored.ndim != 1 or stored.dtype.kind not in "US" or not stored.size:
            raise DataError(
                f"npz file {path}: class_names must be a 1-D array of text (one name per class "
                f"index), found shape {stored.shape} of {stored.dtype}"
            )
        class_names = [str(name) for name in stored.astype(str)]
    if class_names is None:
        class_names = [str(c) for c in range(int(all_labels.max(initial=0)) + 1)]
    elif all_labels.size and all_labels.max() >= len(class_names):
        raise DataError(
            f"npz file {path} has label {all_labels.max()} but only {len(class_names)} class "
            f"names were given: {list(class_names)}; name every class index (data option "
            "class_names, or a class_names array in the file)"
        )
    sizes = [len(split_labels) for split_labels in labels]
    return ImageTable(
        ids=[f"{split}/{i}" for split, n in zip(SPLIT_NAMES, sizes, strict=True) for i in range(n)],
        labels=all_labels,
        class_names=list(class_names),
        reader=ArrayImageReader(
            np.concatenate([arrays[f"{split}_images"] for split in SPLIT_NAMES])
        ),
        official_split=np.repeat(np.array(SPLIT_NAMES), sizes),
        name=path.stem,
        source=str(path),
    )
