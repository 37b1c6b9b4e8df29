"""``t2quant fit`` end to end: every input format, the written maps, and clear errors."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from t2quant.cli import main
from t2quant.io.echoes import load_input
from t2quant.synth.dicom import write_mese_dicom

TE = 12.0 * np.arange(1, 9)
SHAPE = (16, 12, 3)
# Sagittal slab: array axes toward posterior, inferior, right; 0.9 x 0.9 x 4 mm voxels.
AFFINE = np.array([[0, 0, 4.0, -4], [-0.9, 0, 0, 20], [0, -0.9, 0, 60], [0, 0, 0, 1]], dtype=float)


@pytest.fixture(scope="module")
def phantom():
    """True T2 map (ms) with a background border, and its noiseless echoes."""
    t2 = np.zeros(SHAPE)
    t2[3:13, 2:10] = np.linspace(40, 120, 10)[:, None, None]
    echoes = np.where(t2[..., None] > 0, 1500 * np.exp(-TE / np.maximum(t2, 1)[..., None]), 0)
    rng = np.random.default_rng(0)
    noisy = np.hypot(echoes + rng.normal(0, 3, echoes.shape), rng.normal(0, 3, echoes.shape))
    return t2, np.round(noisy).astype(np.uint16)


def write_bids_session(root: Path, echoes: np.ndarray, te_ms=TE) -> Path:
    anat = root / "sub-01" / "ses-01" / "anat"
    anat.mkdir(parents=True)
    for i, te in enumerate(te_ms):
        stem = anat / f"sub-01_ses-01_echo-{i + 1}_MESE"
        nib.save(nib.Nifti1Image(echoes[..., i], AFFINE), f"{stem}.nii.gz")
        Path(f"{stem}.json").write_text(json.dumps({"EchoTime": te / 1000}))
    return anat.parent


def run(*args) -> int:
    return main(["fit", *map(str, args)])


def check_maps(out: Path, stem: str, t2_true: np.ndarray, method: str = "monoexp") -> None:
    t2_ms = nib.load(out / f"{stem}_desc-{method}_T2ms.nii.gz")
    t2_s = nib.load(out / f"{stem}_desc-{method}_T2map.nii.gz")
    np.testing.assert_allclose(t2_ms.affine, AFFINE, atol=1e-6)  # float32 in the header
    tissue = t2_true > 0
    est = t2_ms.get_fdata()
    np.testing.assert_allclose(est[tissue], t2_true[tissue], rtol=0.03)
    assert np.all(np.isnan(est[~tissue]))  # background is outside the default mask
    np.testing.assert_allclose(t2_s.get_fdata()[tissue], est[tissue] / 1000, rtol=1e-6)
    side = json.loads((out / f"{stem}_desc-{method}_T2map.json").read_text())
    assert side["Units"] == "s"
    assert side["EstimationAlgorithm"] and side["EstimationReference"]
    assert len(side["Sources"]) >= 1
    failure = nib.load(out / f"{stem}_desc-{method}_failure.nii.gz").get_fdata()
    np.testing.assert_array_equal(failure[tissue], 0)
    np.testing.assert_array_equal(failure[~tissue], 1)


def test_fit_bids_session(tmp_path, phantom, capsys):
    t2, echoes = phantom
    session = write_bids_session(tmp_path / "bids", echoes)
    assert run(session, "-o", tmp_path / "out", "--method", "monoexp") == 0
    check_maps(tmp_path / "out", "sub-01_ses-01", t2)
    assert "sub-01_ses-01: monoexp fit of" in capsys.readouterr().out
    for part in ("S0map", "TB1map", "rsquared", "rmse", "T2sems", "offset"):
        assert (tmp_path / "out" / f"sub-01_ses-01_desc-monoexp_{part}.nii.gz").is_file()


def test_fit_4d_nifti_and_per_echo_files(tmp_path, phantom):
    t2, echoes = phantom
    four_d = tmp_path / "scan_MESE.nii.gz"
    nib.save(nib.Nifti1Image(echoes, AFFINE), four_d)
    assert run(four_d, "--te", *TE, "-o", tmp_path / "a", "--method", "monoexp") == 0
    check_maps(tmp_path / "a", "scan", t2)
    files = []
    for i in range(TE.size):
        files.append(tmp_path / f"e{i + 1}.nii.gz")
        nib.save(nib.Nifti1Image(echoes[..., i], AFFINE), files[-1])
    assert run(*files, "--te", *TE, "-o", tmp_path / "b", "--method", "monoexp") == 0
    check_maps(tmp_path / "b", "e1", t2)


def test_fit_dicom_series_matches_nifti(tmp_path, phantom):
    t2, echoes = phantom
    write_mese_dicom(echoes.astype(np.float32), TE, AFFINE, tmp_path / "dicom")
    me = load_input([tmp_path / "dicom"])
    np.testing.assert_allclose(me.te_ms, TE)
    np.testing.assert_allclose(me.affine, AFFINE, atol=1e-3)
    np.testing.assert_array_equal(me.data, echoes)
    assert run(tmp_path / "dicom", "-o", tmp_path / "out", "--method", "monoexp") == 0
    check_maps(tmp_path / "out", "dicom", t2)


def test_explicit_mask_and_epg_with_b1_map(tmp_path, phantom):
    t2, echoes = phantom
    session = write_bids_session(tmp_path / "bids", echoes)
    mask = np.zeros(SHAPE, np.uint8)
    mask[5:7, 4:6] = 1
    nib.save(nib.Nifti1Image(mask, AFFINE), tmp_path / "mask.nii.gz")
    nib.save(nib.Nifti1Image(np.ones(SHAPE, np.float32), AFFINE), tmp_path / "b1.nii.gz")
    args = ["--mask", tmp_path / "mask.nii.gz", "--b1-map", tmp_path / "b1.nii.gz"]
    assert run(session, "-o", tmp_path / "out", *args) == 0
    est = nib.load(tmp_path / "out" / "sub-01_ses-01_desc-epg_T2ms.nii.gz").get_fdata()
    assert np.isfinite(est[mask > 0]).all() and np.isnan(est[mask == 0]).all()
    np.testing.assert_allclose(est[mask > 0], t2[mask > 0], rtol=0.03)


def _expect_error(capsys, args, *fragments):
    assert run(*args) == 2
    err = capsys.readouterr().err
    assert err.startswith("t2quant fit: error:")
    for fragment in fragments:
        assert str(fragment) in err, err


def test_input_errors_name_the_file_and_the_fix(tmp_path, phantom, capsys):
    _, echoes = phantom
    out = tmp_path / "out"
    three_d = tmp_path / "t2w.nii.gz"
    nib.save(nib.Nifti1Image(echoes[..., 0], AFFINE), three_d)
    _expect_error(capsys, [three_d, "--te", 10, 20, "-o", out], three_d, "single echo", "4D")
    four_d = tmp_path / "x_MESE.nii.gz"
    nib.save(nib.Nifti1Image(echoes, AFFINE), four_d)
    _expect_error(capsys, [four_d, "-o", out], four_d, "needs --te")
    _expect_error(capsys, [four_d, "--te", *(TE / 1000), "-o", out], four_d, "seconds")
    _expect_error(capsys, [four_d, "--te", *(TE * 1000), "-o", out], "microseconds")
    _expect_error(capsys, [four_d, "--te", *TE[:-1], "-o", out], "7 echo times", "8 echoes")
    bad = TE.copy()
    bad[3] = bad[2]
    _expect_error(capsys, [four_d, "--te", *bad, "-o", out], four_d, "repeated")
    _expect_error(capsys, [three_d, "-o", out], three_d, "single echo")
    other = tmp_path / "small.nii.gz"
    nib.save(nib.Nifti1Image(echoes[:5, ..., 1], AFFINE), other)
    _expect_error(capsys, [three_d, other, "--te", 10, 20, "-o", out], other, "shape")
    _expect_error(capsys, [tmp_path / "nope.nii.gz", "-o", out], "nope.nii.gz", "no such")


def test_truncated_nifti_and_missing_sidecar_echo_time(tmp_path, phantom, capsys):
    _, echoes = phantom
    session = write_bids_session(tmp_path / "bids", echoes)
    anat = session / "anat"
    (anat / "sub-01_ses-01_echo-3_MESE.json").write_text(json.dumps({"RepetitionTime": 2}))
    _expect_error(capsys, [session, "-o", tmp_path / "o"], "echo-3_MESE.json", "EchoTime")
    (anat / "sub-01_ses-01_echo-3_MESE.json").write_text(json.dumps({"EchoTime": 36}))
    _expect_error(capsys, [session, "-o", tmp_path / "o"], "echo-3_MESE.json", "seconds")
    (anat / "sub-01_ses-01_echo-3_MESE.json").write_text(json.dumps({"EchoTime": 0.036}))
    victim = anat / "sub-01_ses-01_echo-2_MESE.nii.gz"
    raw = gzip.decompress(victim.read_bytes())
    victim.write_bytes(gzip.compress(raw[: len(raw) // 2]))
    _expect_error(capsys, [session, "-o", tmp_path / "o"], victim, "truncated")
    (anat / "sub-01_ses-01_echo-2_MESE.nii.gz").unlink()
    _expect_error(capsys, [session, "-o", tmp_path / "o"], "an echo is missing")
