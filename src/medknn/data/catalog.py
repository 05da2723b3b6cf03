"""Named datasets and the data root; ``load_dataset`` also takes a folder, CSV or npz path."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from medknn.data.download import download_file
from medknn.data.sources import load_csv_manifest, load_image_folder, load_medmnist_npz
from medknn.data.table import ImageTable
from medknn.errors import ConfigError, DataError, did_you_mean

DATA_ENV_VAR = "MEDKNN_DATA"
SETTINGS_ENV_VAR = "MEDKNN_SETTINGS"
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


def settings_file() -> Path:
    """The user's medknn settings: ``$MEDKNN_SETTINGS``, else
    ``$XDG_CONFIG_HOME/medknn/settings.yaml`` (``~/.config/medknn/settings.yaml``)."""
    if os.environ.get(SETTINGS_ENV_VAR):
        return Path(os.environ[SETTINGS_ENV_VAR]).expanduser()
    config_home = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(config_home).expanduser() / "medknn" / "settings.yaml"


def _setting_data_root() -> Path | None:
    """The ``data_root`` of the settings file, or None (no file, no such setting)."""
    path = settings_file()
    if not path.is_file():
        return None
    try:
        settings = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError, OSError) as error:
        raise ConfigError(f"{path} is not readable YAML ({error}); fix or remove it.") from None
    value = settings.get("data_root") if isinstance(settings, dict) else None
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{path}: data_root must be a folder path, got {value!r}.")
    return Path(value).expanduser() if value else None


def source_checkout() -> Path | None:
    """The project folder when medknn runs from a source checkout (``src/medknn`` beside a
    ``pyproject.toml``), None for an installed package."""
    project = Path(__file__).resolve().parents[3]  # src/medknn/data/catalog.py → project
    is_checkout = (project / "pyproject.toml").is_file() and (project / "src" / "medknn").is_dir()
    return project if is_checkout else None


def user_data_dir() -> Path:
    """Where data sets are downloaded when no data root is set: the user cache's ``data``."""
    from medknn.data.cache import default_cache_dir

    return default_cache_dir() / "data"


def data_root_candidates() -> list[tuple[str, Path]]:
    """Where data is looked for, in order, each with what put it there: ``$MEDKNN_DATA``, the
    settings file's ``data_root``, ``./data``, the checkout's ``../shared/data`` (only from a
    source checkout) and the user cache's downloads."""
    explicit = _explicit_root()
    candidates = [] if explicit is None else [explicit]
    if os.environ.get(DATA_ENV_VAR) and _setting_data_root() is not None:
        candidates.append((f"data_root in {settings_file()}", _setting_data_root()))
    candidates.append(("./data", Path.cwd() / "data"))
    checkout = source_checkout()
    if checkout is not None:
        candidates.append(("the source checkout", checkout.parent / "shared" / "data"))
    candidates.append(("downloads", user_data_dir()))
    return candidates


def _explicit_root() -> tuple[str, Path] | None:
    """``$MEDKNN_DATA`` or the ``data_root`` setting: a root the user named."""
    if os.environ.get(DATA_ENV_VAR):
        return DATA_ENV_VAR, Path(os.environ[DATA_ENV_VAR]).expanduser()
    setting = _setting_data_root()
    return None if setting is None else (f"data_root in {settings_file()}", setting)


def looked_in() -> str:
    return ", ".join(f"{path} ({why})" for why, path in data_root_candidates())


def resolve_data_root(*, create: bool = False) -> Path:
    """The root a user named (``$MEDKNN_DATA``, else the settings file's ``data_root``), else the
    first existing folder of ``./data``, the checkout's ``../shared/data`` and the downloads in
    the user cache (see :func:`data_root_candidates`).

    With ``create=True`` a missing named root (or, with none named, the downloads folder) is
    created, to download into.
    """
    explicit = _explicit_root()
    if explicit is not None:
        why, root = explicit
        if create:
            root.mkdir(parents=True, exist_ok=True)
        if not root.is_dir():
            raise DataError(f"{why}: {root} is not a folder; point it at your data folder")
        return root
    for _, candidate in data_root_candidates():
        if candidate.is_dir():
            return candidate
    if create:
        user_data_dir().mkdir(parents=True, exist_ok=True)
        return user_data_dir()
    raise DataError(
        f"no data folder found (looked in {looked_in()}); set {DATA_ENV_VAR}=/path/to/data, "
        f"or data_root in {settings_file()}"
    )


def download_root() -> Path:
    """Where a missing data set is downloaded: the root the user named, else the user cache's
    ``data`` folder (never a shared or checkout folder)."""
    explicit = _explicit_root()
    root = user_data_dir() if explicit is None else explicit[1]
    root.mkdir(parents=True, exist_ok=True)
    return root


def locate_dataset(name: str) -> Path | None:
    """The file of a registered data set in the first data root that holds it, or None."""
    info = DATASETS[name]
    explicit = _explicit_root()
    roots = [explicit] if explicit is not None else data_root_candidates()
    for _, root in roots:
        if (root / info.path).exists():
            return root / info.path
    return None


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
    if data_root is not None:
        path: Path | None = Path(data_root).expanduser() / info.path
        where = str(path)
    else:
        path = locate_dataset(info.name)
        explicit = _explicit_root()
        where = (
            f"{explicit[1] / info.path} ({explicit[0]})"
            if explicit is not None
            else f"{info.path} under {looked_in()}"
        )
    if path is None or not path.exists():
        if download and info.url is not None:
            path = path or download_root() / info.path
            download_file(info.url, path, md5=info.md5)
        else:
            how = "pass --download (download=True) or " if info.url is not None else ""
            raise DataError(
                f"dataset {info.name!r} not found (looked for {where}); {how}set "
                f"{DATA_ENV_VAR} to the folder that holds {info.path}"
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
