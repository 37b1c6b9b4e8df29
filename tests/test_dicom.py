"""DICOM input: synthetic MESE series written with pydicom, read back by both backends."""

from __future__ import annotations

import re
import shutil
import stat
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from t2quant.io import dicom as dicom_mod
from t2quant.io.dicom import DicomEchoes, find_dcm2niix, load_dicom_echoes
from t2quant.synth.dicom import write_mese_dicom

SHAPE = (24, 20, 5)
TE_MS = 12.0 * np.arange(1, 7)  # 12, 24, ..., 72 ms
VOXEL_MM = (0.8, 0.9, 4.0)
BACKENDS = ("dcm2niix", "pydicom")

needs_dcm2niix = pytest.mark.skipif(find_dcm2niix() is None, reason="dcm2niix not installed")


def axcodes_affine(codes: str, voxel_mm=VOXEL_MM, offset=(12.5, -31.0, 47.25)) -> np.ndarray:
    """RAS+ affine whose array axes point toward ``codes`` (nibabel axis codes)."""
    ornt = nib.orientations.axcodes2ornt(codes)
    affine = np.eye(4)
    affine[:3, :3] = 0.0
    for axis, (world, sign) in enumerate(ornt):
        affine[int(world), axis] = sign * voxel_mm[axis]
    affine[:3, 3] = offset
    assert nib.aff2axcodes(affine) == tuple(codes)
    return affine


def oblique_affine(deg: float = 20.0) -> np.ndarray:
    """The sagittal PIR slab tilted by ``deg`` about the anterior-posterior axis."""
    a = np.deg2rad(deg)
    rot = np.array([[np.cos(a), 0.0, np.sin(a)], [0.0, 1.0, 0.0], [-np.sin(a), 0.0, np.cos(a)]])
    affine = axcodes_affine("PIR")
    affine[:3, :] = rot @ affine[:3, :]
    return affine


def make_echoes(shape=SHAPE, te_ms=TE_MS, seed: int = 0) -> np.ndarray:
    """Integer-valued mono-exponential decays (T2 varies by voxel) plus a random texture."""
    rng = np.random.default_rng(seed)
    pd = rng.uniform(500.0, 3000.0, size=shape)
    t2 = rng.uniform(30.0, 150.0, size=shape)
    signal = pd[..., None] * np.exp(-np.asarray(te_ms) / t2[..., None])
    return np.rint(signal)


def write(folder: Path, affine: np.ndarray, **kwargs) -> tuple[np.ndarray, list[Path]]:
    te = kwargs.pop("te_ms", TE_MS)
    data = kwargs.pop("data", None)
    if data is None:
        data = make_echoes(te_ms=te)
    files = write_mese_dicom(data, te, affine, folder, **kwargs)
    return data, files


def edit(path: Path, change) -> None:
    ds = pydicom.dcmread(path)
    change(ds)
    ds.save_as(path)


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("codes", ["PIR", "LPS"])  # sagittal lumbar slab; standard axial
def test_round_trip(tmp_path, codes, backend):
    if backend == "dcm2niix" and find_dcm2niix() is None:
        pytest.skip("dcm2niix not installed")
    affine = axcodes_affine(codes)
    data, files = write(tmp_path, affine, series_description=f"T2MAP {codes}")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no silent fallback from dcm2niix
        got = load_dicom_echoes(tmp_path, backend=backend)
    assert isinstance(got, DicomEchoes)
    assert got.data.dtype == np.float32 and got.data.shape == (*SHAPE, 6)
    np.testing.assert_array_equal(got.data, data.astype(np.float32))
    assert got.te_ms.dtype == np.float64
    np.testing.assert_array_equal(got.te_ms, TE_MS)
    assert got.affine.dtype == np.float64 and got.affine.shape == (4, 4)
    np.testing.assert_allclose(got.affine, affine, atol=1e-3)
    assert nib.aff2axcodes(got.affine) == tuple(codes)
    assert got.series_description == f"T2MAP {codes}"
    assert sorted(got.files) == sorted(str(p) for p in files)
    # files are listed echo by echo, slice by slice
    assert got.files[0].endswith("_E01_Z001.dcm") and got.files[-1].endswith("_E06_Z005.dcm")


def test_sagittal_dicom_tags(tmp_path):
    data, files = write(tmp_path, axcodes_affine("PIR"), rescale=None)
    ds = pydicom.dcmread(files[0])
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.4"
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    # columns toward posterior (LPS +y), rows toward inferior (LPS -z): normal toward right
    np.testing.assert_allclose([float(v) for v in ds.ImageOrientationPatient], [0, 1, 0, 0, 0, -1])
    np.testing.assert_allclose([float(v) for v in ds.PixelSpacing], [0.9, 0.8])  # row, column
    assert float(ds.SliceThickness) == pytest.approx(4.0)
    # RAS (12.5, -31, 47.25) is LPS (-12.5, 31, 47.25)
    np.testing.assert_allclose([float(v) for v in ds.ImagePositionPatient], [-12.5, 31.0, 47.25])
    assert (ds.Rows, ds.Columns) == (20, 24)
    assert float(ds.EchoTime) == 12.0 and int(ds.EchoNumbers) == 1
    assert float(ds.RepetitionTime) == 2000.0
    assert ds.pixel_array.dtype == np.uint16
    np.testing.assert_array_equal(ds.pixel_array, data[:, :, 0, 0].T)
    last = pydicom.dcmread(files[-1])
    assert float(last.EchoTime) == 72.0 and int(last.EchoNumbers) == 6
    # slice 5 is 4 * 4 mm to the right: LPS x decreases
    np.testing.assert_allclose([float(v) for v in last.ImagePositionPatient], [-28.5, 31.0, 47.25])
    uids = {pydicom.dcmread(p).SOPInstanceUID for p in files}
    assert len(uids) == len(files) == 30
    assert len({pydicom.dcmread(p).SeriesInstanceUID for p in files}) == 1


def test_writer_is_deterministic(tmp_path):
    _, a = write(tmp_path / "a", axcodes_affine("PIR"))
    _, b = write(tmp_path / "b", axcodes_affine("PIR"))
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]


@pytest.mark.parametrize("backend", BACKENDS)
def test_rescale_and_oblique_round_trip(tmp_path, backend):
    if backend == "dcm2niix" and find_dcm2niix() is None:
        pytest.skip("dcm2niix not installed")
    affine = oblique_affine(20.0)
    data = make_echoes() * 0.5 - 10.0  # half-integers, some negative
    write(tmp_path, affine, data=data, rescale=(0.5, -10.0))
    got = load_dicom_echoes(tmp_path, backend=backend)
    np.testing.assert_allclose(got.data, data, atol=1e-4)
    np.testing.assert_allclose(got.affine, affine, atol=1e-3)


@pytest.mark.parametrize("codes", ["PRI", "IPR"])
def test_negative_determinant_reads_back_slice_reversed(tmp_path, codes):
    """Readers sort slices along row x column cosines: same voxels, slice axis reversed."""
    affine = axcodes_affine(codes)
    assert np.linalg.det(affine[:3, :3]) < 0
    data, _ = write(tmp_path, affine)
    got = load_dicom_echoes(tmp_path, backend="pydicom")
    np.testing.assert_array_equal(got.data, data[:, :, ::-1])
    assert np.linalg.det(got.affine[:3, :3]) > 0
    # every voxel is at the same world position as before
    k = np.arange(SHAPE[2])
    before = affine[:3, :3] @ np.stack([0 * k, 0 * k, k]) + affine[:3, 3:]
    after = got.affine[:3, :3] @ np.stack([0 * k, 0 * k, k[::-1]]) + got.affine[:3, 3:]
    np.testing.assert_allclose(after, before, atol=1e-3)


@needs_dcm2niix
@pytest.mark.parametrize("affine", [axcodes_affine("PIR"), oblique_affine(35.0)])
def test_backends_agree(tmp_path, affine):
    write(tmp_path, affine)
    a = load_dicom_echoes(tmp_path, backend="dcm2niix")
    b = load_dicom_echoes(tmp_path, backend="pydicom")
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(a.te_ms, b.te_ms)
    np.testing.assert_allclose(a.affine, b.affine, atol=1e-3)
    assert a.files == b.files and a.series_description == b.series_description


def test_single_slice_per_echo(tmp_path):
    affine = axcodes_affine("PIR")
    data = make_echoes(shape=(24, 20, 1))
    write(tmp_path, affine, data=data)
    got = load_dicom_echoes(tmp_path, backend="pydicom")
    np.testing.assert_array_equal(got.data, data)
    np.testing.assert_allclose(got.affine, affine, atol=1e-3)


def test_ignores_non_dicom_files_and_reads_subfolders(tmp_path):
    data, _ = write(tmp_path / "export" / "series1", axcodes_affine("PIR"))
    (tmp_path / "export" / "README.txt").write_text("exported from PACS\n")
    (tmp_path / "export" / ".DS_Store").write_bytes(b"\x00\x01")
    got = load_dicom_echoes(tmp_path / "export", backend="pydicom")
    np.testing.assert_array_equal(got.data, data)


def test_to_nifti(tmp_path):
    write(tmp_path, axcodes_affine("PIR"))
    got = load_dicom_echoes(tmp_path, backend="pydicom")
    img = got.to_nifti()
    assert img.shape == (*SHAPE, 6) and got.shape == (*SHAPE, 6)
    np.testing.assert_allclose(img.affine, got.affine, atol=1e-4)


# --------------------------------------------------------------------------- backend fallback


def test_auto_falls_back_when_dcm2niix_missing(tmp_path, monkeypatch):
    data, _ = write(tmp_path, axcodes_affine("PIR"))
    monkeypatch.setattr(dicom_mod, "find_dcm2niix", lambda: None)
    with pytest.warns(UserWarning, match=r"dcm2niix not found.*pydicom reader"):
        got = load_dicom_echoes(tmp_path)
    np.testing.assert_array_equal(got.data, data)
    with pytest.raises(FileNotFoundError, match="dcm2niix not found"):
        load_dicom_echoes(tmp_path, backend="dcm2niix")


def test_auto_falls_back_when_dcm2niix_fails(tmp_path, monkeypatch):
    data, _ = write(tmp_path / "dicom", axcodes_affine("PIR"))
    fake = tmp_path / "fake-dcm2niix"
    fake.write_text("#!/bin/sh\necho 'Error: broken converter' >&2\nexit 3\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(dicom_mod, "find_dcm2niix", lambda: str(fake))
    with pytest.warns(UserWarning, match=r"exited with code 3.*broken converter"):
        got = load_dicom_echoes(tmp_path / "dicom")
    np.testing.assert_array_equal(got.data, data)
    with pytest.raises(RuntimeError, match="exited with code 3"):
        load_dicom_echoes(tmp_path / "dicom", backend="dcm2niix")


def test_auto_falls_back_when_dcm2niix_writes_nothing(tmp_path, monkeypatch):
    data, _ = write(tmp_path / "dicom", axcodes_affine("PIR"))
    fake = tmp_path / "silent-dcm2niix"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(dicom_mod, "find_dcm2niix", lambda: str(fake))
    with pytest.warns(UserWarning, match="wrote 0 NIfTI files for 6 echoes"):
        got = load_dicom_echoes(tmp_path / "dicom")
    np.testing.assert_array_equal(got.data, data)


def test_unknown_backend(tmp_path):
    with pytest.raises(ValueError, match="backend must be"):
        load_dicom_echoes(tmp_path, backend="nibabel")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- errors


def test_missing_folder(tmp_path):
    missing = tmp_path / "no-such-series"
    with pytest.raises(FileNotFoundError, match=r"no-such-series.*does not exist"):
        load_dicom_echoes(missing)


def test_file_instead_of_folder(tmp_path):
    _, files = write(tmp_path, axcodes_affine("PIR"))
    with pytest.raises(ValueError, match=re.escape(files[0].name) + " is a file, not a folder"):
        load_dicom_echoes(files[0])


@pytest.mark.parametrize("content", [None, "not dicom\n"])
def test_folder_without_dicom(tmp_path, content):
    folder = tmp_path / "empty-series"
    folder.mkdir()
    if content is not None:
        (folder / "notes.txt").write_text(content)
    with pytest.raises(FileNotFoundError, match=r"no DICOM image files found in .*empty-series"):
        load_dicom_echoes(folder)


def test_two_series(tmp_path):
    write(tmp_path, axcodes_affine("PIR"), series_description="T2MAP_SAG", series_number=7)
    write(
        tmp_path,
        axcodes_affine("LPS"),
        series_description="T2_TSE_AX",
        series_number=8,
        te_ms=[12.0, 24.0],
    )
    uids = {
        pydicom.dcmread(p, stop_before_pixels=True).SeriesInstanceUID
        for p in tmp_path.glob("*.dcm")
    }
    assert len(uids) == 2
    with pytest.raises(ValueError, match="holds 2 DICOM series") as err:
        load_dicom_echoes(tmp_path)
    message = str(err.value)
    assert str(tmp_path) in message
    assert "T2MAP_SAG" in message and "T2_TSE_AX" in message
    assert all(uid in message for uid in uids)
    assert "folder that holds only the" in message


def test_single_echo(tmp_path):
    write(tmp_path, axcodes_affine("PIR"), te_ms=[80.0])
    with pytest.raises(ValueError, match=r"single echo \(TE 80 ms") as err:
        load_dicom_echoes(tmp_path)
    assert str(tmp_path) in str(err.value) and "two or more echo times" in str(err.value)


def test_missing_echo_time_names_file(tmp_path):
    _, files = write(tmp_path, axcodes_affine("PIR"))
    victim = files[13]
    edit(victim, lambda ds: delattr(ds, "EchoTime"))
    with pytest.raises(ValueError, match=re.escape(victim.name) + " has no EchoTime") as err:
        load_dicom_echoes(tmp_path)
    assert str(victim) in str(err.value)


def test_echoes_with_different_slice_counts(tmp_path):
    write(tmp_path, axcodes_affine("PIR"))
    (tmp_path / "MR_S001_E03_Z005.dcm").unlink()
    with pytest.raises(ValueError, match="TE 36 ms has 4 slices but TE 12 ms has 5") as err:
        load_dicom_echoes(tmp_path)
    assert str(tmp_path) in str(err.value)


def test_echoes_with_different_matrix_sizes(tmp_path):
    write(tmp_path, axcodes_affine("PIR"))

    def crop(ds):
        ds.PixelData = ds.pixel_array[:18].tobytes()
        ds.Rows = 18

    for path in tmp_path.glob("MR_S001_E02_*.dcm"):
        edit(path, crop)
    with pytest.raises(ValueError, match=r"18x24 .*is 20x24; every echo must have the same matrix"):
        load_dicom_echoes(tmp_path)


def test_repeated_echo_times(tmp_path):
    write(tmp_path, axcodes_affine("PIR"), te_ms=[12.0, 24.0, 24.0, 36.0])
    with pytest.raises(ValueError, match=r"echoes \[2, 3\] .*EchoTime 24 ms") as err:
        load_dicom_echoes(tmp_path)
    assert str(tmp_path) in str(err.value) and "MR_S001_E02_Z001.dcm" in str(err.value)


def test_repeated_echo_times_without_echo_numbers(tmp_path):
    _, files = write(tmp_path, axcodes_affine("PIR"), te_ms=[12.0, 24.0, 24.0])
    for path in files:
        edit(path, lambda ds: delattr(ds, "EchoNumbers"))
    with pytest.raises(ValueError, match=r"same slice position.*repeated echo time"):
        load_dicom_echoes(tmp_path)


def test_duplicated_file(tmp_path):
    _, files = write(tmp_path, axcodes_affine("PIR"))
    shutil.copy(files[2], tmp_path / "copy_of_slice.dcm")
    with pytest.raises(ValueError, match=r"copy_of_slice\.dcm.*same slice position"):
        load_dicom_echoes(tmp_path)


def test_missing_slice_in_every_echo(tmp_path):
    write(tmp_path, axcodes_affine("PIR"))
    for path in tmp_path.glob("MR_S001_E*_Z003.dcm"):
        path.unlink()
    with pytest.raises(ValueError, match=r"not evenly spaced.*missing slices"):
        load_dicom_echoes(tmp_path)


def test_multi_frame_file_is_refused(tmp_path):
    _, files = write(tmp_path, axcodes_affine("PIR"))
    edit(files[0], lambda ds: setattr(ds, "NumberOfFrames", 2))
    with pytest.raises(ValueError, match=re.escape(files[0].name) + " is a multi-frame"):
        load_dicom_echoes(tmp_path)


def test_mixed_orientation(tmp_path):
    _, files = write(tmp_path, axcodes_affine("PIR"))
    edit(files[-1], lambda ds: setattr(ds, "ImageOrientationPatient", [1, 0, 0, 0, 1, 0]))
    with pytest.raises(
        ValueError, match=re.escape(files[-1].name) + " has ImageOrientationPatient"
    ):
        load_dicom_echoes(tmp_path)


# --------------------------------------------------------------------------- writer errors


def test_writer_rejects_bad_input(tmp_path):
    data = make_echoes()
    with pytest.raises(ValueError, match="te_ms has 5 values"):
        write_mese_dicom(data, TE_MS[:5], axcodes_affine("PIR"), tmp_path)
    with pytest.raises(ValueError, match=r"shape \(X, Y, Z, n_echoes\)"):
        write_mese_dicom(data[..., 0], TE_MS, axcodes_affine("PIR"), tmp_path)
    with pytest.raises(ValueError, match="outside uint16"):
        write_mese_dicom(data - 100.0, TE_MS, axcodes_affine("PIR"), tmp_path)
    sheared = axcodes_affine("PIR")
    sheared[:3, 1] += 0.2 * sheared[:3, 0]
    with pytest.raises(ValueError, match="not perpendicular"):
        write_mese_dicom(data, TE_MS, sheared, tmp_path)
    assert not list(tmp_path.iterdir())
