"""Loaders, the dataset catalog and downloads: small fixtures in tmp_path plus the shared data."""

from __future__ import annotations

import csv
import functools
import hashlib
import http.server
import pickle
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medknn.data import (
    DATA_ENV_VAR,
    DATASETS,
    ImageTable,
    download_file,
    list_datasets,
    load_csv_manifest,
    load_dataset,
    load_image_folder,
    load_medmnist_npz,
    resolve_data_root,
)
from medknn.errors import ConfigError, DataError


def _shared_root() -> Path:
    try:
        return resolve_data_root()
    except DataError:
        pytest.skip("shared data not available")


def _write_image(path: Path, mode: str = "RGB", size: tuple[int, int] = (12, 8)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(str(path)))
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode=mode).save(path)


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _write_npz(path: Path, sizes=(6, 2, 3), **overrides) -> Path:
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in zip(("train", "val", "test"), sizes, strict=True):
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % 2).astype(np.uint8)[:, None]
    arrays.update(overrides)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "folder"
    for name in ("b.png", "a.jpg", "sub/c.png"):
        _write_image(root / "malignant" / name)
    _write_image(root / "benign" / "x.png", mode="L")
    (root / "benign" / "notes.txt").write_text("not an image")
    return root


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    for image_id in ("i1", "i2", "i3", "i4"):
        _write_image(tmp_path / "images" / f"{image_id}.jpg")
    rows = [["L1", "i1", "mel"], ["L1", "i2", "mel"], ["L2", "i3", "nv"], ["", "i4", "nv"]]
    return _write_csv(tmp_path / "meta.csv", ["lesion_id", "image_id", "dx"], rows)


# --- image folder ---------------------------------------------------------------------------


def test_image_folder_classes_ids_and_reading(folder: Path) -> None:
    table = load_image_folder(folder)
    assert table.class_names == ["benign", "malignant"]
    assert table.ids == [
        "benign/x.png",
        "malignant/a.jpg",
        "malignant/b.png",
        "malignant/sub/c.png",
    ]
    assert table.labels.tolist() == [0, 1, 1, 1]
    assert table.class_counts().tolist() == [1, 3]
    assert table.reader.read(0).shape == (8, 12, 1)  # grey file stays one channel
    assert table.reader.read(1).shape == (8, 12, 3)
    assert table.groups is None and table.official_split is None


def test_image_folder_reader_is_picklable_and_select_subsets(folder: Path) -> None:
    table = load_image_folder(folder)
    clone = pickle.loads(pickle.dumps(table))
    np.testing.assert_array_equal(clone.reader.read(2), table.reader.read(2))
    subset = table.select(np.array([False, True, False, True]))
    assert subset.ids == ["malignant/a.jpg", "malignant/sub/c.png"]
    np.testing.assert_array_equal(subset.reader.read(1), table.reader.read(3))
    assert subset.class_counts().tolist() == [0, 2]


def test_image_folder_applies_exif_orientation(tmp_path: Path) -> None:
    path = tmp_path / "data" / "a" / "rotated.jpg"
    path.parent.mkdir(parents=True)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    Image.new("RGB", (40, 20), "red").save(path, exif=exif)
    assert load_image_folder(tmp_path / "data").reader.read(0).shape == (40, 20, 3)


def test_image_folder_empty_class_folder_is_named(folder: Path) -> None:
    (folder / "empty_class").mkdir()
    with pytest.raises(DataError, match=r"empty_class.*remove the folder or add images"):
        load_image_folder(folder)


def test_image_folder_without_class_folders(tmp_path: Path) -> None:
    _write_image(tmp_path / "loose.png")
    with pytest.raises(DataError, match="no class folders"):
        load_image_folder(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        load_image_folder(tmp_path / "missing")


# --- CSV manifest ---------------------------------------------------------------------------


def test_csv_manifest_loads_with_groups(manifest: Path) -> None:
    table = load_csv_manifest(manifest)
    assert table.ids == ["images/i1.jpg", "images/i2.jpg", "images/i3.jpg", "images/i4.jpg"]
    assert table.class_names == ["mel", "nv"]
    assert table.labels.tolist() == [0, 0, 1, 1]
    assert table.groups[0] == table.groups[1] == "L1"
    assert table.groups[3] not in table.groups[:3]  # empty group cell: its own group
    assert table.reader.read(2).shape == (8, 12, 3)


def test_csv_manifest_path_column_and_split_column(tmp_path: Path) -> None:
    _write_image(tmp_path / "imgs" / "a.png")
    _write_image(tmp_path / "imgs" / "b.png")
    csv_path = _write_csv(
        tmp_path / "m.csv",
        ["file", "label", "split"],
        [["imgs/a.png", "x", "train"], ["imgs/b.png", "y", "Validation"]],
    )
    table = load_csv_manifest(
        csv_path, image_column="file", path_template=None, label_column="label",
        group_column=None, split_column="split",
    )  # fmt: skip
    assert table.official_split.tolist() == ["train", "val"]
    assert table.ids == ["imgs/a.png", "imgs/b.png"]


def test_csv_manifest_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nothere\.csv does not exist"):
        load_csv_manifest(tmp_path / "nothere.csv")


def test_csv_manifest_missing_column_lists_present_columns(manifest: Path) -> None:
    with pytest.raises(DataError, match=r"no column 'diagnosis'.*lesion_id, image_id, dx"):
        load_csv_manifest(manifest, label_column="diagnosis")
    with pytest.raises(DataError, match=r"no column 'patient'"):
        load_csv_manifest(manifest, group_column="patient")


def test_csv_manifest_empty_label_names_rows(tmp_path: Path, manifest: Path) -> None:
    rows = list(csv.reader(manifest.read_text().splitlines()))
    rows[2][2] = ""
    rows[4][2] = " "
    _write_csv(manifest, rows[0], rows[1:])
    with pytest.raises(DataError, match=r"'dx' is empty on 2 row\(s\), lines 3, 5"):
        load_csv_manifest(manifest)


def test_csv_manifest_missing_images_listed_and_counted(tmp_path: Path) -> None:
    rows = [[f"L{i}", f"gone{i}", "nv"] for i in range(8)]
    csv_path = _write_csv(tmp_path / "meta.csv", ["lesion_id", "image_id", "dx"], rows)
    with pytest.raises(
        DataError, match=r"8 image file\(s\) do not exist: .*gone0\.jpg.*and 3 more"
    ):
        load_csv_manifest(csv_path)


def test_csv_manifest_bad_split_values(manifest: Path) -> None:
    with pytest.raises(DataError, match=r"'dx' must hold train/val/test; found line 2: 'mel'"):
        load_csv_manifest(manifest, split_column="dx")


def test_real_ham10000_metadata_loads_as_is() -> None:
    root = _shared_root()
    table = load_dataset("ham10000", data_root=root)
    assert len(table) == 10_015
    counts = dict(zip(table.class_names, table.class_counts().tolist(), strict=True))
    assert counts == {
        "nv": 6705, "mel": 1113, "bkl": 1099, "bcc": 514, "akiec": 327, "vasc": 142, "df": 115,
    }  # fmt: skip
    assert len(set(table.groups)) == 7470
    assert table.ids[0].startswith("images/ISIC_") and table.name == "ham10000"


# --- MedMNIST npz ---------------------------------------------------------------------------


def test_npz_concatenates_splits(tmp_path: Path) -> None:
    table = load_medmnist_npz(_write_npz(tmp_path / "tiny.npz"), class_names=["a", "b"])
    assert len(table) == 11
    assert table.ids[:2] == ["train/0", "train/1"] and table.ids[6] == "val/0"
    assert table.official_split.tolist().count("test") == 3
    assert table.reader.read(7).shape == (28, 28, 1)
    assert pickle.loads(pickle.dumps(table.reader)).read(3).shape == (28, 28, 1)


def test_npz_names_its_classes_from_the_file_or_the_data_option(tmp_path: Path) -> None:
    named = _write_npz(tmp_path / "named.npz", class_names=np.array(["benign", "malignant"]))
    assert load_medmnist_npz(named).class_names == ["benign", "malignant"]
    assert load_dataset(str(named)).class_names == ["benign", "malignant"]
    # the data option wins over the file's names
    assert load_dataset(str(named), class_names=["b", "m"]).class_names == ["b", "m"]
    assert load_medmnist_npz(_write_npz(tmp_path / "plain.npz")).class_names == ["0", "1"]
    short = _write_npz(tmp_path / "short.npz", class_names=np.array(["only"]))
    with pytest.raises(DataError, match="only 1 class names.*class_names array in the file"):
        load_medmnist_npz(short)
    numbers = _write_npz(tmp_path / "numbers.npz", class_names=np.array([0, 1]))
    with pytest.raises(DataError, match="class_names must be a 1-D array of text"):
        load_medmnist_npz(numbers)


def test_npz_missing_keys_and_bad_labels(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"lacks the MedMNIST keys val_labels.*keys present"):
        load_medmnist_npz(_write_npz(tmp_path / "a.npz", val_labels=None))
    multi = np.zeros((6, 3), dtype=np.uint8)
    with pytest.raises(DataError, match="train_labels has 3 columns"):
        load_medmnist_npz(_write_npz(tmp_path / "b.npz", train_labels=multi))
    with pytest.raises(DataError, match="only 1 class names"):
        load_medmnist_npz(_write_npz(tmp_path / "c.npz"), class_names=["only"])
    (tmp_path / "d.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="cannot read"):
        load_medmnist_npz(tmp_path / "d.npz")


@pytest.mark.parametrize(
    ("name", "sizes", "class_names"),
    [
        ("pneumoniamnist", (4708, 524, 624), ["normal", "pneumonia"]),
        ("breastmnist", (546, 78, 156), ["malignant", "normal+benign"]),
    ],
)
def test_real_medmnist_split_sizes(
    name: str, sizes: tuple[int, ...], class_names: list[str]
) -> None:
    table = load_dataset(name, data_root=_shared_root())
    assert table.class_names == class_names
    found = tuple(int((table.official_split == s).sum()) for s in ("train", "val", "test"))
    assert found == sizes


# --- catalog --------------------------------------------------------------------------------


def test_load_dataset_dispatches_on_path(folder: Path, manifest: Path, tmp_path: Path) -> None:
    assert load_dataset(folder).class_names == ["benign", "malignant"]
    assert load_dataset(str(manifest)).class_names == ["mel", "nv"]
    npz = _write_npz(tmp_path / "breastmnist.npz")
    assert load_dataset(npz).class_names == ["malignant", "normal+benign"]  # known stem
    with pytest.raises(ConfigError, match=r"'label_colum' does not apply.*label_column"):
        load_dataset(manifest, label_colum="dx")


def test_load_dataset_unknown_name_suggests() -> None:
    with pytest.raises(ConfigError, match=r"unknown dataset 'ham1000'.*Did you mean: ham10000"):
        load_dataset("ham1000")
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("no/such/folder")
    assert list_datasets() == ["breastmnist", "ham10000", "pneumoniamnist"]


def test_data_root_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_ENV_VAR, str(tmp_path))
    assert resolve_data_root() == tmp_path
    with pytest.raises(DataError, match=r"breastmnist.*--download.*MEDKNN_DATA"):
        load_dataset("breastmnist")
    with pytest.raises(DataError, match=r"ham10000.*MEDKNN_DATA"):
        load_dataset("ham10000")
    monkeypatch.setenv(DATA_ENV_VAR, str(tmp_path / "missing"))
    with pytest.raises(DataError, match="is not a folder"):
        resolve_data_root()


def test_registry_has_official_medmnist_md5() -> None:
    assert DATASETS["breastmnist"].md5 == "750601b1f35ba3300ea97c75c52ff8f6"
    assert DATASETS["pneumoniamnist"].url.startswith("https://zenodo.org/records/10519652/")


# --- download -------------------------------------------------------------------------------


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_download_file_url_with_md5(tmp_path: Path) -> None:
    source = tmp_path / "src.bin"
    source.write_bytes(b"x" * 3000)
    dest = download_file(
        source.as_uri(), tmp_path / "out" / "f.bin", md5=_md5(source), progress=False
    )
    assert dest.read_bytes() == source.read_bytes()


def test_download_wrong_md5_leaves_no_file(tmp_path: Path) -> None:
    source = tmp_path / "src.bin"
    source.write_bytes(b"payload")
    out = tmp_path / "out"
    with pytest.raises(DataError, match=r"md5 [0-9a-f]{32}, expected 0{32}"):
        download_file(source.as_uri(), out / "f.bin", md5="0" * 32, progress=False)
    assert list(out.iterdir()) == []


def test_download_missing_source(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot download"):
        download_file((tmp_path / "absent").as_uri(), tmp_path / "f.bin", md5=None, progress=False)
    assert not (tmp_path / "f.bin").exists()


def test_download_over_localhost_http(tmp_path: Path) -> None:
    served = tmp_path / "served"
    served.mkdir()
    (served / "data.npz").write_bytes(b"abc" * 1000)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/data.npz"
        dest = download_file(
            url, tmp_path / "got.npz", md5=_md5(served / "data.npz"), progress=False
        )
        assert dest.read_bytes() == (served / "data.npz").read_bytes()
    finally:
        server.shutdown()
        server.server_close()


def test_load_dataset_downloads_missing_medmnist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote = _write_npz(tmp_path / "remote.npz")
    local = replace(DATASETS["breastmnist"], url=remote.as_uri(), md5=_md5(remote))
    monkeypatch.setitem(DATASETS, "breastmnist", local)
    root = tmp_path / "root"
    monkeypatch.setenv(DATA_ENV_VAR, str(root))
    table = load_dataset("breastmnist", download=True)
    assert isinstance(table, ImageTable) and len(table) == 11
    assert (root / "medmnist" / "breastmnist.npz").is_file()


def test_data_root_order_and_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from medknn.data import catalog
    from medknn.data.catalog import (
        data_root_candidates,
        download_root,
        locate_dataset,
        source_checkout,
        user_data_dir,
    )

    monkeypatch.delenv(DATA_ENV_VAR, raising=False)
    monkeypatch.setenv("MEDKNN_SETTINGS", str(tmp_path / "settings.yaml"))
    monkeypatch.setenv("MEDKNN_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    whys = [why for why, _ in data_root_candidates()]
    assert whys[0] == "./data" and whys[-1] == "downloads"
    assert ("the source checkout" in whys) == (source_checkout() is not None)
    assert user_data_dir() == tmp_path / "cache" / "data"
    assert download_root() == tmp_path / "cache" / "data"  # never the shared checkout folder

    setting_root = tmp_path / "mine"
    (setting_root / "medmnist").mkdir(parents=True)
    (setting_root / "medmnist" / "breastmnist.npz").write_bytes(b"")
    (tmp_path / "settings.yaml").write_text(f"data_root: {setting_root}\n")
    assert resolve_data_root() == setting_root
    assert locate_dataset("breastmnist") == setting_root / "medmnist" / "breastmnist.npz"
    with pytest.raises(DataError, match=r"pneumoniamnist.*looked for .*mine.*data_root in"):
        load_dataset("pneumoniamnist")

    monkeypatch.setenv(DATA_ENV_VAR, str(tmp_path / "env"))  # the variable comes first
    (tmp_path / "env").mkdir()
    assert resolve_data_root() == tmp_path / "env"
    assert locate_dataset("breastmnist") is None

    monkeypatch.delenv(DATA_ENV_VAR)
    (tmp_path / "settings.yaml").unlink()
    (tmp_path / "data").mkdir()
    assert resolve_data_root() == tmp_path / "data"
    monkeypatch.setattr(catalog, "source_checkout", lambda: None)  # an installed package
    assert [why for why, _ in data_root_candidates()] == ["./data", "downloads"]
    with pytest.raises(DataError, match=r"looked for medmnist/breastmnist.npz under .*\./data"):
        load_dataset("breastmnist")
