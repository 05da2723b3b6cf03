"""Named datasets and the data root; ``load_dataset`` also takes a folder, CSV or npz path."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from medknn.data.download import download_file
from medknn.data.sources import load_csv_manifest, load_image_folder, load_medmnist_npz
from medknn.data.table import ImageTable
from medknn.errors import ConfigError, DataError, did_you_mean

DATA_ENV_VAR = "MEDKNN_DATA"
MEDMNIST_URL = "https://zenodo.org/records/10519652/files/{name}.npz?download=1"


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset known by name: where it lives under the data root and how to load it."""

    name: str
    kind: Literal["csv", "npz"]
    path: str  # relative to the data root
    description: str
    options: Mapping[str, Any] = field(default_factory=dict)  # passed to the source loader
    url: str | None = None  # None: cannot be downloaded
    md5: str | None = None


# md5 sums from MedMNIST's own medmnist/info.py (v3.0.2, Zenodo record 10519652, 28 px files).
DATASETS: dict[str, DatasetInfo] = {
    "ham10000": DatasetInfo(
        name="ham10000",
        kind="csv",
        path="ham10000/metadata.csv",
        description="HAM10000 dermoscopy, 7 classes (dx), 10,015 images of 7,470 lesions",
        options={
            "image_column": "image_id",
            "path_template": "images/{image_id}.jpg",
            "label_column": "dx",
            "group_column": "lesion_id",
        },
    ),
    "pneumoniamnist": DatasetInfo(
        name="pneumoniamnist",
        kind="npz",
        path="medmnist/pneumoniamnist.npz",
        description="PneumoniaMNIST chest X-ray 28 px, normal / pneumonia, official split",
        options={"class_names": ["normal", "pneumonia"]},
        url=MEDMNIST_URL.format(name="pneumoniamnist"),
        md5="28209eda62fecd6e6a2d98b1501bb15f",
    ),
    "breastmnist": DatasetInfo(
        name="breastmnist",
        kind="npz",
        path="medmnist/breastmnist.npz",
        description="BreastMNIST ultrasound 28 px, malignant / normal+benign, official split",
        options={"class_names": ["malignant", "normal+benign"]},
        url=MEDMNIST_URL.format(name="breastmnist"),
        md5="750601b1f35ba3300ea97c75c52ff8f6",
    ),
}


def list_datasets() -> list[str]:
    """The registered dataset names (details in ``DATASETS``)."""
    return sorted(DATASETS)


def _candidate_roots() -> list[Path]:
    project_root = Path(__file__).resolve().parents[3]  # src/medknn/data/catalog.py → project
    return [project_root.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]


def resolve_data_root(*, create: bool = False) -> Path:
    """``$MEDKNN_DATA``, else ``<project>/../shared/data``, else ``./../shared/data``.

    With ``create=True`` a missing ``$MEDKNN_DATA`` folder is created (to download into).
    """
    from_env = os.environ.get(DATA_ENV_VAR)
    if from_env:
        root = Path(from_env).expanduser()
        if create:
            root.mkdir(parents=True, exist_ok=True)
        if not root.is_dir():
            raise DataError(
                f"{DATA_ENV_VAR}={from_env} is not a folder; point it at your data folder"
            )
        return root
    candidates = _candidate_roots()
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise DataError(
        f"no data folder found (looked in {', '.join(map(str, candidates))}); "
        f"set {DATA_ENV_VAR}=/path/to/data"
    )


def _check_options(
    loader: Callable[..., ImageTable], options: Mapping[str, Any], what: str
) -> None:
    accepted = [
        name
        for name, parameter in inspect.signature(loader).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    for option in options:
        if option not in accepted:
            raise ConfigError(
                f"option {option!r} does not apply to {what}; valid options: {', '.join(accepted)}"
            )


def _load(
    loader: Callable[..., ImageTable], path: Path, options: Mapping[str, Any], what: str
) -> ImageTable:
    _check_options(loader, options, what)
    return loader(path, **options)


def _load_registered(
    info: DatasetInfo, data_root: Path | None, download: bool, options: Mapping[str, Any]
) -> ImageTable:
    root = (
        Path(data_root).expanduser()
        if data_root is not None
        else resolve_data_root(create=download)
    )
    path = root / info.path
    if not path.exists():
        if download and info.url is not None:
            download_file(info.url, path, md5=info.md5)
        else:
            how = "pass --download (download=True) or " if info.url is not None else ""
            raise DataError(
                f"dataset {info.name!r} not found at {path}; {how}set {DATA_ENV_VAR} to the "
                f"folder that holds {info.path}"
            )
    loader = load_csv_manifest if info.kind == "csv" else load_medmnist_npz
    table = _load(loader, path, {**info.options, **options}, f"dataset {info.name!r}")
    table.name = info.name
    return table


def load_dataset(
    spec: str | os.PathLike,
    *,
    data_root: str | os.PathLike | None = None,
    download: bool = False,
    **source_options: Any,
) -> ImageTable:
    """A registered name, an image folder, a ``.csv`` manifest or a MedMNIST-layout ``.npz``.

    ``source_options`` go to the loader (``load_image_folder``, ``load_csv_manifest`` or
    ``load_medmnist_npz``) and override a registered dataset's defaults.
    """
    spec = str(spec)
    if spec in DATASETS:
        root = None if data_root is None else Path(data_root)
        return _load_registered(DATASETS[spec], root, download, source_options)
    path = Path(spec).expanduser()
    suffix = path.suffix.lower()
    if path.is_dir():
        return _load(load_image_folder, path, source_options, "an image folder")
    if suffix == ".csv":
        return _load(load_csv_manifest, path, source_options, "a CSV manifest")
    if suffix == ".npz":
        known = DATASETS.get(path.stem)
        if known is not None and "class_names" in known.options:
            source_options = {"class_names": known.options["class_names"], **source_options}
        return _load(load_medmnist_npz, path, source_options, "an npz file")
    if path.exists():
        raise DataError(f"{path} is not a folder, a .csv or an .npz file")
    if os.sep in spec or "/" in spec or suffix:
        raise DataError(f"dataset path {path} does not exist")
    raise ConfigError(
        f"unknown dataset {spec!r}. {did_you_mean(spec, DATASETS)} "
        "Or give a path to an image folder (one subfolder per class), a .csv manifest or "
        "an .npz file."
    )
