"""DICOM input on the real files shipped inside the pydicom wheel (never downloaded)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

import medknn
from medknn.data import DicomOptions, decode_dicom, load_dataset, read_image_bytes
from medknn.errors import ConfigError, DataError, ImageTooLargeError


def shipped(name: str) -> Path:
    path = get_testdata_file(name, download=False)  # only files inside the wheel
    if path is None:
        pytest.skip(f"{name} is not shipped with this pydicom")
    return Path(path)


def decoded(source: str | Path, window: str = "auto", frame: int | None = None) -> np.ndarray:
    return np.asarray(decode_dicom(source, DicomOptions(window, frame)), dtype=np.int64)


def reference_linear(values: np.ndarray, centre: float, width: float) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2.1 LINEAR window to 0..255, written out independently."""
    low, high = centre - 0.5 - (width - 1) / 2, centre - 0.5 + (width - 1) / 2
    out = ((values - (centre - 0.5)) / (width - 1) + 0.5) * 255
    out = np.where(values <= low, 0, np.where(values > high, 255, out))
    return np.rint(out).astype(np.int64)


def test_mr_window_from_the_file_matches_a_numpy_reference() -> None:
    dataset = pydicom.dcmread(shipped("MR_small.dcm"))
    assert (float(dataset.WindowCenter), float(dataset.WindowWidth)) == (600.0, 1600.0)
    expected = reference_linear(dataset.pixel_array.astype(np.float64), 600.0, 1600.0)
    assert np.abs(decoded(shipped("MR_small.dcm")) - expected).max() <= 1


def test_ct_rescale_to_hounsfield_then_an_explicit_window() -> None:
    dataset = pydicom.dcmread(shipped("CT_small.dcm"))
    hounsfield = dataset.pixel_array * float(dataset.RescaleSlope) + float(dataset.RescaleIntercept)
    expected = reference_linear(hounsfield, 40.0, 400.0)
    got = decoded(shipped("CT_small.dcm"), "40,400")
    assert np.abs(got - expected).max() <= 1
    assert got.min() == 0 and got.max() == 255  # the window clips both ends of this CT


def test_ct_without_a_window_gets_a_percentile_window() -> None:
    dataset = pydicom.dcmread(shipped("CT_small.dcm"))
    assert "WindowCenter" not in dataset
    values = dataset.pixel_array.astype(np.float64) - 1024.0
    low, high = np.percentile(values, [0.5, 99.5])
    expected = np.rint(np.clip((values - low) / (high - low), 0, 1) * 255)
    assert np.abs(decoded(shipped("CT_small.dcm")) - expected).max() <= 1
    full = decoded(shipped("CT_small.dcm"), "none")
    span = values.max() - values.min()
    assert np.abs(full - np.rint((values - values.min()) / span * 255)).max() <= 1


def test_byte_order_and_rle_compression_decode_to_the_same_pixels() -> None:
    plain = decoded(shipped("MR_small.dcm"))
    for name in ("MR_small_bigendian.dcm", "MR_small_RLE.dcm", "MR_small_implicit.dcm"):
        np.testing.assert_array_equal(decoded(shipped(name)), plain)


def test_monochrome1_is_inverted(tmp_path: Path) -> None:
    dataset = pydicom.dcmread(shipped("MR_small.dcm"))
    dataset.PhotometricInterpretation = "MONOCHROME1"
    dataset.save_as(tmp_path / "mono1.dcm")
    normal = decoded(shipped("MR_small.dcm"))
    np.testing.assert_array_equal(decoded(tmp_path / "mono1.dcm"), 255 - normal)


def test_signed_16_bit_extremes_map_to_the_ends_without_overflow(tmp_path: Path) -> None:
    dataset = pydicom.dcmread(shipped("MR_small.dcm"))  # signed 16-bit
    pixels = np.linspace(-32768, 32767, dataset.Rows * dataset.Columns).astype(np.int16)
    dataset.PixelData = pixels.reshape(dataset.Rows, dataset.Columns).tobytes()
    del dataset.WindowCenter, dataset.WindowWidth
    dataset.save_as(tmp_path / "extremes.dcm")
    got = decoded(tmp_path / "extremes.dcm", "none").ravel()
    assert got[0] == 0 and got[-1] == 255
    assert np.all(np.diff(got) >= 0)  # monotonic: no value wrapped around


def test_rgb_dicom_stays_colour() -> None:
    path = shipped("SC_rgb_rle.dcm")
    image = decode_dicom(path)
    assert image.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(image), pydicom.dcmread(path).pixel_array)


def test_multi_frame_is_refused_unless_a_frame_is_chosen() -> None:
    path = shipped("SC_rgb_rle_2frame.dcm")
    with pytest.raises(DataError, match="2 frames.*dicom_frame"):
        decode_dicom(path)
    second = np.asarray(decode_dicom(path, DicomOptions(frame=1)))
    np.testing.assert_array_equal(second, pydicom.dcmread(path).pixel_array[1])
    with pytest.raises(DataError, match="has 2 frame"):
        decode_dicom(path, DicomOptions(frame=2))


def test_compressed_syntax_without_a_decoder_names_the_package() -> None:
    pytest.importorskip("pydicom")
    try:
        import pylibjpeg  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("pylibjpeg is installed: JPEG-LS decodes")
    with pytest.raises(DataError, match=r"JPEG-LS.*pip install 'medknn\[dicom\]'.*pylibjpeg"):
        decode_dicom(shipped("MR_small_jpeg_ls_lossless.dcm"))


def test_truncated_and_fake_dicom_files_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="MR_truncated.dcm.*truncated"):
        decode_dicom(shipped("MR_truncated.dcm"), name="MR_truncated.dcm")
    fake = tmp_path / "scan.dcm"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(fake, format="PNG")
    with pytest.raises(DataError, match="scan.dcm is not a DICOM file"):
        decode_dicom(fake, name="scan.dcm")
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(shipped("CT_small.dcm").read_bytes()[:2000])  # header cut short
    with pytest.raises(DataError, match="cut.dcm"):
        decode_dicom(cut, name="cut.dcm")


def test_bad_window_option() -> None:
    with pytest.raises(ConfigError, match="centre,width"):
        DicomOptions("wide")
    with pytest.raises(ConfigError, match="width must be positive"):
        DicomOptions("40,0")


def test_uploaded_bytes_are_recognised_by_content_and_pixel_limited() -> None:
    data = shipped("MR_small.dcm").read_bytes()
    assert read_image_bytes(data, 32).shape == (32, 32, 1)
    with pytest.raises(ImageTooLargeError, match="more than the limit"):
        read_image_bytes(data, 32, max_pixels=1000)  # 64×64 = 4096 pixels
    with pytest.raises(DataError, match="not a PNG, JPEG or DICOM image"):
        read_image_bytes(b"not an image at all" * 20, 32)
    png = io.BytesIO()
    Image.fromarray(np.zeros((50, 40, 3), np.uint8)).save(png, format="PNG")
    assert read_image_bytes(png.getvalue(), 32).shape == (32, 32, 3)


# --- DICOM data sets: folders, manifests, training, privacy -------------------------------------

PATIENTS = [f"Doe^Jane{i:02d}" for i in range(12)]
PATIENT_IDS = [f"PID-7731-{i:02d}" for i in range(12)]


def write_dicom_folder(root: Path, per_class: int = 12) -> Path:
    """Three classes of MR images differing in brightness, with patient names and IDs set;
    every third file has no suffix (DICOM recognised by its preamble)."""
    rng = np.random.default_rng(0)
    template = pydicom.dcmread(shipped("MR_small.dcm"))
    base = template.pixel_array.astype(np.int32)
    for label, name in enumerate(["benign", "malignant", "normal"]):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            dataset = pydicom.dcmread(shipped("MR_small.dcm"))
            noise = rng.integers(-150, 150, base.shape)
            pixels = np.clip(base // 2 + 500 * label + noise, -32768, 32767).astype(np.int16)
            dataset.PixelData = pixels.tobytes()
            patient = (label * per_class + i) % len(PATIENTS)
            dataset.PatientName = PATIENTS[patient]
            dataset.PatientID = PATIENT_IDS[patient]
            suffix = "" if i % 3 == 0 else ".dcm"
            dataset.save_as(root / name / f"case{i:02d}{suffix}")
    return root


def test_a_folder_of_dicom_files_with_and_without_suffix(tmp_path: Path) -> None:
    table = load_dataset(write_dicom_folder(tmp_path / "mr", per_class=3))
    assert len(table) == 9 and "benign/case00" in table.ids  # no suffix, found by preamble
    assert table.reader.read(0).shape == (64, 64, 1)


def test_manifest_groups_from_a_dicom_tag_are_hashed(tmp_path: Path) -> None:
    root = write_dicom_folder(tmp_path / "mr", per_class=3)
    rows = [
        f"{p.relative_to(root).as_posix()},{p.parent.name}" for p in sorted(root.rglob("case*"))
    ]
    (root / "manifest.csv").write_text("path,label\n" + "\n".join(rows) + "\n")
    table = load_dataset(
        root / "manifest.csv",
        image_column="path",
        path_template=None,
        label_column="label",
        group_column="dicom:PatientID",
    )
    ids = pydicom.dcmread(root / table.ids[0]).PatientID
    assert len(set(table.groups)) == 9
    assert all(ids not in group for group in table.groups)
    with pytest.raises(ConfigError, match="not a DICOM keyword"):
        load_dataset(
            root / "manifest.csv",
            image_column="path",
            path_template=None,
            label_column="label",
            group_column="dicom:PatientNumber",
        )


@pytest.mark.slow
def test_a_dicom_run_writes_no_patient_name_or_id(
    tmp_path: Path, tiny_options: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_dicom_folder(tmp_path / "mr")
    options = {**tiny_options, "data": str(root), "data_options": {"dicom_window": "auto"}}
    run = medknn.train(options, tmp_path / "run", progress=False)
    predictions = medknn.predict(run, [root / "normal" / "case01.dcm"])
    assert predictions[0].neighbours and predictions[0].label in run.class_names
    medknn.report(run, progress=False)
    written = [p for p in (tmp_path / "run").rglob("*") if p.is_file()]
    assert any(p.name == "index.html" for p in written)
    secrets = [s.encode() for s in PATIENTS + PATIENT_IDS + ["CompressedSamples", "4MR1"]]
    for path in written:
        content = path.read_bytes()
        leaked = [s.decode() for s in secrets if s in content]
        assert not leaked, f"{path} contains {leaked}"
    output = capsys.readouterr()
    assert not any(s.decode() in output.out + output.err for s in secrets)


def test_a_voi_lut_sequence_is_applied(tmp_path: Path) -> None:
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    dataset = pydicom.dcmread(shipped("MR_small.dcm"))  # values 127..2145, no rescale
    lut = Dataset()
    lut.LUTDescriptor = [4096, 0, 12]
    # A reversed ramp: obviously not what the window would give.
    lut.add_new("LUTData", "US", list(range(4095, -1, -1)))
    dataset.VOILUTSequence = Sequence([lut])
    dataset.save_as(tmp_path / "voi.dcm")
    values = dataset.pixel_array.astype(np.float64)
    expected = np.rint((4095 - values) / 4095 * 255)
    assert np.abs(decoded(tmp_path / "voi.dcm") - expected).max() <= 1
    # An explicit window overrides the file's VOI LUT.
    assert (
        np.abs(decoded(tmp_path / "voi.dcm", "600,1600") - decoded(shipped("MR_small.dcm"))).max()
        <= 1
    )


def test_baseline_jpeg_dicom_decodes_to_rgb_without_optional_decoders() -> None:
    image = decode_dicom(shipped("SC_rgb_jpeg_dcmtk.dcm"))  # YBR_FULL JPEG, through Pillow
    reference = np.asarray(decode_dicom(shipped("SC_rgb_rle.dcm")), dtype=np.int64)
    assert image.mode == "RGB"
    assert np.abs(np.asarray(image, dtype=np.int64) - reference).mean() < 8  # lossy JPEG
