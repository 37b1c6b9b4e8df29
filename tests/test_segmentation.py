"""Disc segmentation and level naming: frame checks, synthetic phantoms with known truth, the
real T2w volume with manual masks, imports from other tools, and the command line."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from t2quant.cli import main
from t2quant.levels import INDEX_LEVEL, LEVEL_INDEX, LEVELS
from t2quant.segmentation import import_labels, segment_discs
from t2quant.segmentation.files import mese_fluid_image, mese_t2w_image
from t2quant.segmentation.frame import parse_axcodes, to_canonical
from t2quant.synth import DEMO, make_spine_phantom, simulate_t2w

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
REAL = SHARED / "real" / "menezes-reis-ivd-11"
SPINEPS = SHARED / "reference" / "spineps-format-sample"


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / max(1.0, float(a.sum() + b.sum()))


def truth_of(seg_mask: np.ndarray, truth: np.ndarray) -> str | None:
    """The true level under most of a segmented disc."""
    values = truth[seg_mask]
    values = values[values > 0]
    return INDEX_LEVEL[int(np.bincount(values).argmax())] if values.size else None


# --- the frame and its checks ----------------------------------------------------------


def _affine(codes: str, voxel=(1.0, 1.0, 1.0)) -> np.ndarray:
    from t2quant.synth.real_anatomy import axcodes_affine

    return axcodes_affine(codes, voxel, (8, 8, 8))


def test_canonical_frame_round_trips_any_orientation():
    rng = np.random.default_rng(0)
    data = rng.random((30, 40, 12)).astype(np.float32)
    for codes in ("IPR", "PIR", "ASL", "RAS"):
        voxel = (1.0, 1.0, 1.0)
        aff = _affine(codes, voxel)
        if codes in ("ASL", "RAS"):  # make left-right the thin axis for these layouts
            data_c = rng.random((12, 40, 30) if codes == "RAS" else (40, 30, 12))
            data_c = data_c.astype(np.float32)
        else:
            data_c = data
        frame = to_canonical(data_c, aff)
        np.testing.assert_array_equal(frame.back(frame.data), data_c)
    frame = to_canonical(data, np.eye(4), orientation="IPR")
    assert frame.data.shape == (40, 30, 12)
    np.testing.assert_array_equal(frame.data[:, :, 0].T, data[:, :, 0])


@pytest.mark.parametrize(
    ("shape", "codes", "plane"), [((60, 60, 10), "RAS", "axial"), ((60, 10, 60), "RAS", "coronal")]
)
def test_axial_and_coronal_slabs_are_refused(shape, codes, plane):
    data = np.random.default_rng(1).random(shape)
    with pytest.raises(ValueError, match=f"{plane} slab"):
        segment_discs(data, _affine(codes), name="scan.nii.gz")


def test_2d_empty_and_constant_images_are_refused():
    with pytest.raises(ValueError, match="3D sagittal volume"):
        segment_discs(np.ones((50, 50)), np.eye(4), name="x.nii")
    with pytest.raises(ValueError, match="empty or constant"):
        segment_discs(np.full((50, 60, 8), 7.0), np.eye(4), orientation="PIR", name="x.nii")
    with pytest.raises(ValueError, match="three nibabel axis codes"):
        parse_axcodes("IPP")


def test_an_image_without_a_canal_segments_nothing_and_says_so():
    noise = np.random.default_rng(2).random((60, 80, 9)).astype(np.float32)
    seg = segment_discs(noise, _affine("PIR"))
    assert not seg.labels.any()
    assert not any(r.found for r in seg.records)
    assert seg.flags and seg.warnings


# --- synthetic phantoms ----------------------------------------------------------------


def _phantom(seed: int, **kw):
    ph = make_spine_phantom(seed=seed, protocol=DEMO, **kw)
    return ph, simulate_t2w(ph, DEMO, seed=seed)


@pytest.mark.parametrize(
    ("seed", "grades"),
    [
        (3, None),
        (11, {"L4/L5": 5, "L5/S1": 5}),
        (12, {"L4/L5": 5, "L5/S1": 4, "L3/L4": 4}),
        (14, {"T11/T12": 1, "T12/L1": 1, "L1/L2": 3, "L2/L3": 4, "L3/L4": 4}),
    ],
)
def test_phantom_levels_are_named_right_with_close_masks(seed, grades):
    ph, t2w = _phantom(seed, grades=grades)
    seg = segment_discs(t2w, ph.affine)
    scores = []
    for lvl in LEVELS:
        found = seg.labels == LEVEL_INDEX[lvl]
        assert found.any(), lvl
        assert truth_of(found, ph.discs) == lvl
        scores.append(dice(found, ph.discs == LEVEL_INDEX[lvl]))
        assert scores[-1] >= 0.82, lvl
        assert seg.record(lvl).found and 0 < seg.record(lvl).confidence <= 1
        assert 2.0 < seg.record(lvl).height_mm < 16.0
    assert np.median(scores) >= 0.90


def test_missing_t11_t12_is_reported_not_renumbered():
    ph, t2w = _phantom(3, missing_t11_t12=True)
    seg = segment_discs(t2w, ph.affine)
    assert "missing_level" in seg.flags
    assert not seg.record("T11/T12").found
    assert "field of view" in seg.record("T11/T12").note
    for lvl in LEVELS[1:]:
        found = seg.labels == LEVEL_INDEX[lvl]
        if found.any():
            assert truth_of(found, ph.discs) == lvl


@pytest.mark.parametrize("seed", [3, 4])
def test_an_extra_lumbar_vertebra_never_passes_silently(seed):
    ph, t2w = _phantom(seed, extra_lumbar=True)
    seg = segment_discs(t2w, ph.affine)
    misnamed = [
        lvl
        for lvl in LEVELS
        if (seg.labels == LEVEL_INDEX[lvl]).any()
        and truth_of(seg.labels == LEVEL_INDEX[lvl], ph.discs) != lvl
    ]
    if misnamed:
        assert {"level_uncertain", "transitional_anatomy"} & set(seg.flags)


def test_a_field_of_view_without_the_sacrum_is_not_anchored():
    ph, t2w = _phantom(5)
    cut = ph.discs.shape[1] * 2 // 3  # axis 1 runs superior to inferior (PIR)
    seg = segment_discs(t2w[:, :cut], ph.affine)
    assert "no_sacrum" in seg.flags
    assert not seg.labels.any()
    assert any("sacrum" in w for w in seg.warnings)


def test_without_a_sacral_remnant_the_cord_end_can_anchor_the_count_with_a_flag():
    """The image ends 30 mm below L5/S1 with the canal still running: no remnant to anchor
    on, but with L5/S1 as the lowest disc the cord ends between T12/L1 and L2/L3."""
    grades = {"T11/T12": 1, "T12/L1": 2, "L1/L2": 1, "L2/L3": 1, "L3/L4": 1, "L4/L5": 3, "L5/S1": 1}
    ph, t2w = _phantom(46, grades=grades)
    seg = segment_discs(t2w, ph.affine)
    assert "level_uncertain" in seg.flags and "no_sacrum" not in seg.flags
    assert any("spinal cord then ends" in w for w in seg.warnings)
    for lvl in LEVELS:
        assert truth_of(seg.labels == LEVEL_INDEX[lvl], ph.discs) == lvl
        assert seg.record(lvl).confidence <= 0.6


# --- the real volume -------------------------------------------------------------------


@pytest.mark.skipif(not REAL.exists(), reason="needs ../shared/data/real")
def test_real_volume_levels_and_masks():
    """Menezes-Reis et al. 2016 (QIMS 6:402), subject 11: manual masks 1 = L5/S1 .. 5 = L1/L2."""
    img = nib.load(REAL / "T2w.nii.gz")
    manual = np.asanyarray(nib.load(REAL / "discs_manual.nii.gz").dataobj).astype(int)
    seg = segment_discs(np.asanyarray(img.dataobj), img.affine, orientation="IPR")
    for k, lvl in enumerate(["L5/S1", "L4/L5", "L3/L4", "L2/L3", "L1/L2"], start=1):
        found = seg.labels == LEVEL_INDEX[lvl]
        assert np.bincount(manual[found]).argmax() in (0, k)
        assert np.bincount(manual[found & (manual > 0)]).argmax() == k, lvl
        assert dice(found, manual == k) >= 0.75, lvl
    assert not seg.record("T11/T12").found


# --- imports ---------------------------------------------------------------------------


def test_imports_map_each_scheme_to_the_project_labels():
    mask = np.zeros((10, 10, 10), np.int32)
    for i, value in enumerate([118, 119, 120, 121, 122, 123, 124]):
        mask[i, 0, 0] = value
    seg = import_labels(mask, "spineps")
    assert [int(seg.labels[i, 0, 0]) for i in range(7)] == [1, 2, 3, 4, 5, 6, 7]
    mask_ts = np.zeros((10, 10, 10), np.int32)
    for i, value in enumerate([82, 91, 92, 93, 94, 95, 100]):
        mask_ts[i, 0, 0] = value
    assert [int(v) for v in import_labels(mask_ts, "totalspineseg").labels[:7, 0, 0]] == [
        1, 2, 3, 4, 5, 6, 7
    ]  # fmt: skip
    mask_sp = np.zeros((10, 10, 10), np.int32)
    mask_sp[:7, 0, 0] = [207, 206, 205, 204, 203, 202, 201]
    assert list(import_labels(mask_sp, "spider").labels[:7, 0, 0]) == [1, 2, 3, 4, 5, 6, 7]


def test_an_l6_in_a_spineps_mask_is_flagged_not_renamed():
    mask = np.zeros((10, 10, 10), np.int32)
    mask[0, 0, 0], mask[1, 0, 0], mask[2, 0, 0], mask[3, 0, 0] = 123, 124, 125, 25
    seg = import_labels(mask, "spineps")
    assert seg.labels[0, 0, 0] == LEVEL_INDEX["L4/L5"]
    assert seg.labels[1, 0, 0] == 0 and seg.labels[2, 0, 0] == 0
    assert "transitional_anatomy" in seg.flags


def test_a_mapping_tsv_and_a_grid_mismatch(tmp_path):
    table = tmp_path / "map.tsv"
    pd.DataFrame({"label": [3, 9, 4], "level": ["L4/L5", "ignore", "L5/S1"]}).to_csv(
        table, sep="\t", index=False
    )
    mask = np.zeros((6, 6, 6), np.int32)
    mask[0, 0, 0], mask[1, 0, 0], mask[2, 0, 0] = 3, 9, 4
    seg = import_labels(mask, table)
    assert list(seg.labels[:3, 0, 0]) == [6, 0, 7]
    assert "missing_level" in seg.flags
    with pytest.raises(ValueError, match="does not match the image grid"):
        import_labels(mask, table, image_shape=(6, 6, 7), name="manual.nii.gz")
    with pytest.raises(ValueError, match="affine differs"):
        import_labels(
            mask, table, mask_affine=np.eye(4), image_affine=2 * np.eye(4), image_shape=(6, 6, 6)
        )


@pytest.mark.skipif(not SPINEPS.exists(), reason="needs ../shared/data/reference")
def test_the_spineps_sample_is_read_and_its_cervical_discs_reported():
    """TPTBox sample_mri (Apache-2.0): a cervical crop; no lumbar level, two discs ignored."""
    img = nib.load(SPINEPS / "sub-mri_seg-vert_label-6_msk.nii.gz")
    seg = import_labels(np.asanyarray(img.dataobj).astype(int), "spineps", mask_affine=img.affine)
    assert not seg.labels.any()
    assert any("[105, 106]" in w for w in seg.warnings)
    assert "missing_level" in seg.flags


# --- files and the command line --------------------------------------------------------


def test_mese_image_uses_the_echoes_at_60_to_120_ms():
    data = np.arange(2 * 10, dtype=np.float32).reshape(2, 10)
    te = 11.0 * np.arange(1, 11)  # 66, 77, ..., 110 ms are echoes 6..10
    np.testing.assert_allclose(mese_t2w_image(data, te), data[:, 5:10].mean(axis=1))
    np.testing.assert_allclose(mese_t2w_image(data, np.arange(1, 11.0)), data[:, 9])


def test_mese_fluid_image_is_late_squared_over_early_and_ranks_fluid_first():
    te = 10.0 * np.arange(1, 13)  # 12 echoes: early = 20-40 ms, late = 90-120 ms
    s0 = np.array([0.35, 0.8, 0.9])  # CSF (T1-saturated), nucleus, fat
    t2 = np.array([1500.0, 120.0, 60.0])
    data = (s0[:, None] * np.exp(-te / t2[:, None])).astype(np.float32)
    late, early = data[:, 8:12].mean(axis=1), data[:, 1:4].mean(axis=1)
    np.testing.assert_allclose(mese_fluid_image(data, te), late**2 / early, rtol=1e-6)
    assert late[0] < late[1]  # at the late echoes the nucleus is brighter than the CSF ...
    fluid = mese_fluid_image(data, te)
    assert fluid[0] > 1.5 * fluid[1] > 1.5 * fluid[2]  # ... but not in the fluid image
    few = mese_fluid_image(data[:, :3], te[:3])  # fewer than 6 echoes: first and last
    np.testing.assert_allclose(few, data[:, 2] ** 2 / data[:, 0], rtol=1e-6)


def test_segment_command_writes_every_file_and_reimports_its_mask(tmp_path, capsys):
    ph, t2w = _phantom(3)
    src = tmp_path / "sub-01_T2w.nii.gz"
    nib.save(nib.Nifti1Image(t2w, ph.affine), src)
    assert main(["segment", str(src), "-o", str(tmp_path / "seg")]) == 0
    out = tmp_path / "seg"
    for suffix in ("_dseg.nii.gz", "_dseg.tsv", "_discs.tsv", "_discs.json", "_qc.png"):
        assert (out / f"sub-01{suffix}").stat().st_size > 0, suffix
    dseg = nib.load(out / "sub-01_dseg.nii.gz")
    np.testing.assert_array_equal(dseg.affine, nib.load(src).affine)
    labels = np.asanyarray(dseg.dataobj)
    assert set(np.unique(labels)) <= set(range(8))
    table = pd.read_csv(out / "sub-01_discs.tsv", sep="\t")
    assert list(table["level"]) == list(LEVELS)
    lookup = pd.read_csv(out / "sub-01_dseg.tsv", sep="\t")
    assert list(lookup.columns) == ["index", "name", "abbreviation", "color"]
    assert "7 of 7 levels" in capsys.readouterr().out
    # a corrected mask goes back in through the same path
    assert main(["segment", str(src), "-o", str(tmp_path / "again"),
                 "--labels-from", "project", str(out / "sub-01_dseg.nii.gz")]) == 0  # fmt: skip
    again = np.asanyarray(nib.load(tmp_path / "again" / "sub-01_dseg.nii.gz").dataobj)
    np.testing.assert_array_equal(again, labels)


def test_segment_command_names_the_file_on_bad_input(tmp_path, capsys):
    src = tmp_path / "axial.nii.gz"
    nib.save(nib.Nifti1Image(np.random.default_rng(3).random((60, 60, 8)), _affine("RAS")), src)
    assert main(["segment", str(src), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "axial.nii.gz" in err and "axial slab" in err


def test_nothing_found_still_writes_an_empty_segmentation(tmp_path):
    """An image where no canal is found gives empty labels, records and a QC picture."""
    from t2quant.segmentation.outputs import write_segmentation

    rng = np.random.default_rng(0)
    image = rng.normal(100, 5, (40, 50, 9)).astype(np.float32)
    affine = np.array([[0, 0, 4.0, 0], [-1.0, 0, 0, 0], [0, -1.0, 0, 0], [0, 0, 0, 1]])
    seg = segment_discs(image, affine)
    assert not seg.labels.any()
    assert "no_canal" in seg.flags
    paths = write_segmentation(seg, image, affine, tmp_path, "empty", source="noise")
    assert paths["qc"].stat().st_size > 0
