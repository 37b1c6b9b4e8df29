"""Tests of the real-anatomy phantom (t2quant.synth.real_anatomy).

The real-data tests read the Menezes-Reis et al. (QIMS 2016, doi:10.21037/qims.2016.08.01)
lumbar T2w volume and manual disc masks from ../shared/data, outside the repository, and skip
when it is absent. The other tests use small synthetic volumes.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy.stats import spearmanr

from t2quant.levels import LEVEL_INDEX
from t2quant.synth import Protocol, simulate_mese
from t2quant.synth.real_anatomy import (
    DEFAULT_GRADES,
    MENEZES_REIS_LABELS,
    axcodes_affine,
    make_real_anatomy_phantom,
    segment_tissues,
)
from t2quant.synth.tissues import Tissue, disc_appearance, level_t2_factor

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "menezes-reis-ivd-11"
HAVE_DATA = (DATA / "T2w.nii.gz").is_file() and (DATA / "discs_manual.nii.gz").is_file()
PROTOCOL = Protocol(n_echoes=12, esp_ms=10.0)
BUILD_SECONDS: dict[str, float] = {}


# ----------------------------------------------------------------------------- axcodes


@pytest.mark.parametrize("codes", ["IPR", "RAS", "LPI", "PIR", "ASL", "sal"])
def test_axcodes_affine_round_trips_through_nibabel(codes):
    shape = (11, 9, 5)
    aff = axcodes_affine(codes, (1.0, 0.5, 4.0), shape)
    assert nib.aff2axcodes(aff) == tuple(codes.upper())
    assert np.allclose(np.abs(aff[:3, :3]).sum(axis=0), [1.0, 0.5, 4.0])
    centre = aff @ np.array([5.0, 4.0, 2.0, 1.0])
    assert np.allclose(centre[:3], 0.0)


def test_axcodes_affine_ipr_directions():
    aff = axcodes_affine("IPR", (1.0, 1.0, 1.0), (221, 221, 67))
    assert nib.aff2axcodes(aff) == ("I", "P", "R")
    assert np.array_equal(aff[:3, :3], [[0, 0, 1], [0, -1, 0], [-1, 0, 0]])


@pytest.mark.parametrize("codes", ["IPP", "LRS", "IPX", "IP", "IPRA", "SIA", 3, None])
def test_axcodes_affine_rejects_bad_codes(codes):
    with pytest.raises(ValueError, match="axcodes"):
        axcodes_affine(codes, (1, 1, 1), (4, 4, 4))


@pytest.mark.parametrize(
    ("vox", "shape"),
    [((1, 1), (4, 4, 4)), ((1, 0, 1), (4, 4, 4)), ((1, 1, 1), (4, 4)), ((1, 1, 1), (4, 0, 4))],
)
def test_axcodes_affine_rejects_bad_geometry(vox, shape):
    with pytest.raises(ValueError, match=r"voxel_mm|shape"):
        axcodes_affine("IPR", vox, shape)


# ----------------------------------------------------------------------------- input checks


def _small():
    t2w = np.full((8, 8, 8), 100.0)
    labels = np.zeros((8, 8, 8), np.uint8)
    labels[3:5, 2:6, 2:6] = 1
    return t2w, labels


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t, lab: (t[..., 0], lab), "3D"),
        (lambda t, lab: (t, lab[..., 0]), "3D"),
        (lambda t, lab: (t[:-1], lab), "differ"),
        (lambda t, lab: (np.where(lab == 1, np.nan, t), lab), "NaN"),
        (lambda t, lab: (t, lab * 0.5), "integer"),
    ],
)
def test_input_validation(change, message):
    t2w, labels = change(*_small())
    with pytest.raises(ValueError, match=message):
        make_real_anatomy_phantom(t2w, labels)


def test_unknown_labels_are_named():
    t2w, labels = _small()
    labels[0, 0, 0] = 9
    labels[7, 7, 7] = 7
    with pytest.raises(ValueError, match=r"labels \[7, 9\] not in label_levels"):
        make_real_anatomy_phantom(t2w, labels)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"label_levels": {1: "L7/S1"}}, "not a known disc level"),
        ({"label_levels": {1: "L5/S1", 2: "L5/S1"}}, "several labels"),
        ({"grades": {"T12/L1": 2}}, "not labelled"),
        ({"grades": {"L5/S1": 6}}, "1..5"),
        ({"disc_t2_ms": {"L5/S1": -3.0}}, "positive"),
        ({"disc_t2_ms": {"L4/L5": 80.0}}, "not labelled"),
        ({"axcodes": "IPA"}, "axcodes"),
        ({"voxel_mm": (1.0, -1.0, 1.0)}, "voxel_mm"),
    ],
)
def test_argument_validation(kwargs, message):
    t2w, labels = _small()
    with pytest.raises(ValueError, match=message):
        make_real_anatomy_phantom(t2w, labels, **kwargs)


# ----------------------------------------------------------------------------- synthetic volume


def _toy_volume(seed: int = 0):
    """A small sagittal 'spine' in IPR order: body anterior, air posterior, CSF tube behind a disc.

    Axis 0 superior->inferior (48), axis 1 anterior->posterior (56), axis 2 left-right (24).
    """
    rng = np.random.default_rng(seed)
    shape = (48, 56, 24)
    img = np.full(shape, 110.0)  # muscle-like
    img[:, :8] = 180.0  # intermediate soft tissue anteriorly
    img[:, 8:11] = 30.0  # dark: flow void / anterior ligament
    img[:, 12:24, 4:20] = 200.0  # vertebral column (marrow)
    img[:, 24, 4:20] = 30.0  # posterior longitudinal ligament (dark)
    img[:, 25:31, 8:16] = 700.0  # thecal sac (CSF)
    img[:, 31, 4:20] = 30.0  # dura / ligamentum flavum (dark)
    img[:, 32:35, 4:20] = 420.0  # epidural fat
    img[:, 38:41] = 450.0  # subcutaneous fat (skin line)
    labels = np.zeros(shape, np.uint8)
    for label, row in ((1, 34), (2, 14)):
        img[row - 5 : row + 6, 12:24, 4:20] = 30.0  # endplates (2 mm)
        img[row - 3 : row + 4, 12:24, 4:20] = 140.0  # annulus
        img[row - 2 : row + 3, 15:21, 8:16] = 320.0  # nucleus
        labels[row - 3 : row + 4, 12:24, 4:20] = label
    img[:, 41:] = 70.0  # air with a noise floor brighter than the dark tissue
    img = img * (1.0 + 0.05 * rng.standard_normal(shape))
    return np.abs(img), labels


def test_toy_volume_classes_and_discs():
    t2w, labels = _toy_volume()
    ph = make_real_anatomy_phantom(t2w, labels, label_levels={1: "L5/S1", 2: "L4/L5"})
    assert ph.levels_in_fov == ("L4/L5", "L5/S1")
    assert ph.grades == {"L4/L5": 2, "L5/S1": 2}
    # Air behind the skin is background, everything in front of it is tissue.
    assert np.all(ph.tissue[:, 42:] == Tissue.BACKGROUND)  # 41: partial volume with skin
    assert np.all(ph.pd[:, 42:] == 0)
    assert np.all(ph.tissue[:, :41] != Tissue.BACKGROUND)
    # CSF found in the tube behind the discs, and only there.
    csf = ph.tissue == Tissue.CSF
    assert csf[:, 26:30, 9:15].mean() > 0.95
    assert not csf[:, :24].any() and not csf[:, 32:].any()
    assert np.all(ph.t2_ms[csf] > 1000)
    # Fat, marrow, muscle-like and endplate classes where they were drawn.
    assert np.mean(ph.tissue[:, 32:35, 6:18] == Tissue.FAT) > 0.9
    # Dark band: ligament, endplate where it passes within 3 mm of a disc.
    assert np.all(np.isin(ph.tissue[:, 9], [Tissue.LIGAMENT, Tissue.ENDPLATE]))
    assert np.all(ph.tissue[:4, 9] == Tissue.LIGAMENT)
    assert np.mean(ph.tissue[2:8, 14:22, 6:18] == Tissue.MARROW) > 0.9
    assert np.mean(ph.tissue[:, 1:7, 2] == Tissue.MARROW) > 0.9  # 180 is "intermediate"
    assert np.mean(ph.tissue[:, 26:30, 1] == Tissue.MUSCLE) > 0.9
    assert np.mean(ph.tissue[29, 14:22, 6:18] == Tissue.ENDPLATE) > 0.9
    # Disc: bright centre is nucleus, dark rim annulus.
    assert np.all(ph.tissue[34, 16:20, 10:14] == Tissue.NUCLEUS)
    assert np.all(ph.tissue[31, 12:24, 6:18] == Tissue.ANNULUS)


def test_toy_volume_without_discs_posterior_space_has_no_csf_seed():
    t2w, labels = _toy_volume()
    ph = make_real_anatomy_phantom(t2w, np.zeros_like(labels))
    assert ph.levels_in_fov == ()
    assert ph.grades == {}
    assert ph.notes["csf_voxels"] == 0
    assert not (ph.tissue == Tissue.CSF).any()


# ----------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def real():
    if not HAVE_DATA:
        pytest.skip(
            f"real lumbar T2w data not found at {DATA} (../shared/data is kept outside the "
            "repository; see ../shared/data/real/menezes-reis-ivd-11/README.md)"
        )
    t2w = np.asarray(nib.load(DATA / "T2w.nii.gz").dataobj)
    labels = np.asarray(nib.load(DATA / "discs_manual.nii.gz").dataobj)
    return t2w, labels


@pytest.fixture(scope="module")
def phantom(real):
    t0 = time.perf_counter()
    ph = make_real_anatomy_phantom(*real)
    BUILD_SECONDS["default"] = time.perf_counter() - t0
    return ph


@pytest.fixture(scope="module")
def mese_b1_one(phantom):
    b1 = np.ones(phantom.t2_ms.shape, np.float32)
    return simulate_mese(phantom, PROTOCOL, snr=200, psf_fwhm_vox=None, seed=0, b1=b1)


def _crop(ph, sl):
    """A sub-volume of a phantom with its affine moved to the new first voxel."""
    start = np.array([s.start or 0 for s in sl], float)
    affine = ph.affine.copy()
    affine[:3, 3] = ph.affine[:3, :3] @ start + ph.affine[:3, 3]
    return replace(
        ph,
        affine=affine,
        **{k: getattr(ph, k)[sl] for k in ("tissue", "discs", "t2_ms", "t1_ms", "pd")},
    )


@pytest.mark.shared_data
def test_real_phantom_grid_levels_and_notes(real, phantom):
    t2w, _ = real
    assert phantom.t2_ms.shape == t2w.shape == (221, 221, 67)
    assert phantom.levels_in_fov == ("L1/L2", "L2/L3", "L3/L4", "L4/L5", "L5/S1")
    assert (
        phantom.grades
        == DEFAULT_GRADES
        == {"L1/L2": 1, "L2/L3": 1, "L3/L4": 1, "L4/L5": 2, "L5/S1": 2}
    )
    assert np.array_equal(phantom.affine, axcodes_affine("IPR", (1, 1, 1), t2w.shape))
    assert nib.aff2axcodes(phantom.affine) == ("I", "P", "R")
    assert phantom.anatomy is None
    assert "10.21037/qims.2016.08.01" in phantom.notes["source"]
    assert phantom.notes["unlabelled_levels"] == ("T11/T12", "T12/L1")
    assert BUILD_SECONDS["default"] < 15.0


@pytest.mark.shared_data
def test_real_disc_labels_map_to_project_indices(real, phantom):
    _, labels = real
    expected = {1: 7, 2: 6, 3: 5, 4: 4, 5: 3}
    for label, level in MENEZES_REIS_LABELS.items():
        assert LEVEL_INDEX[level] == expected[label]
        n = int((labels == label).sum())
        assert n > 4000
        assert int((phantom.discs == expected[label]).sum()) == n
        assert np.array_equal(phantom.discs == expected[label], labels == label)
    assert set(np.unique(phantom.discs)) == {0, 3, 4, 5, 6, 7}


@pytest.mark.shared_data
def test_real_disc_tissue_and_t2_follow_grade_model(phantom):
    in_disc = phantom.discs > 0
    disc_codes = np.isin(phantom.tissue, [Tissue.NUCLEUS, Tissue.ANNULUS])
    assert np.array_equal(disc_codes, in_disc)
    true = phantom.true_disc_t2_ms()
    for level, grade in phantom.grades.items():
        mask = phantom.discs == LEVEL_INDEX[level]
        t2 = phantom.t2_ms[mask].astype(np.float64)
        look = disc_appearance(grade)
        f = level_t2_factor(level)
        lo = min(look.annulus_anterior_t2_ms, look.annulus_posterior_t2_ms) * f
        hi = look.nucleus_t2_ms * f
        assert t2.min() >= lo * (1 - 1e-6)
        assert t2.max() <= hi * (1 + 1e-6)
        assert t2.max() == pytest.approx(hi, rel=1e-5)  # the brightest voxels are nucleus
        assert true[level] == pytest.approx(t2.mean(), rel=1e-6)
        nucleus = phantom.tissue[mask] == Tissue.NUCLEUS
        assert 0.1 < nucleus.mean() < 0.6
        # Nucleus = relative brightness w >= 0.5, so T2 >= the half-way blend, annulus below.
        ann = (look.annulus_anterior_t2_ms, look.annulus_posterior_t2_ms)
        assert t2[nucleus].min() >= f * 0.5 * (look.nucleus_t2_ms + min(ann)) * (1 - 1e-6)
        assert t2[~nucleus].max() <= f * 0.5 * (look.nucleus_t2_ms + max(ann)) * (1 + 1e-6)
    # Healthy grade-1 discs are longer than the grade-2 lower discs.
    assert min(true["L1/L2"], true["L2/L3"], true["L3/L4"]) > max(true["L4/L5"], true["L5/S1"])
    assert 90 < true["L3/L4"] < 150 and 60 < true["L5/S1"] < 110


@pytest.mark.shared_data
def test_real_disc_t2_targets_are_met_exactly(real, phantom):
    targets = {"L1/L2": 88.0, "L2/L3": 86.5, "L3/L4": 84.0, "L4/L5": 81.0, "L5/S1": 79.25}
    ph = make_real_anatomy_phantom(*real, disc_t2_ms=targets, grades={"L5/S1": 3})
    assert ph.grades["L5/S1"] == 3
    for level, target in targets.items():
        mask = ph.discs == LEVEL_INDEX[level]
        assert float(ph.t2_ms[mask].astype(np.float64).mean()) == pytest.approx(target, rel=1e-6)
        assert ph.true_disc_t2_ms()[level] == pytest.approx(target, rel=1e-6)
    # Only the discs change; the within-disc pattern is scaled, not replaced.
    outside = ph.discs == 0
    assert np.array_equal(ph.t2_ms[outside], phantom.t2_ms[outside])
    mask = ph.discs == LEVEL_INDEX["L3/L4"]
    ratio = ph.t2_ms[mask] / phantom.t2_ms[mask]
    assert np.ptp(ratio) < 1e-5 * ratio.mean()


@pytest.mark.shared_data
def test_real_csf_behind_the_discs(phantom):
    csf = (phantom.tissue == Tissue.CSF) & (phantom.t2_ms > 1000)
    assert 15_000 < csf.sum() < 60_000
    for level in phantom.levels_in_fov:
        idx = np.argwhere(phantom.discs == LEVEL_INDEX[level])
        rows = slice(idx[:, 0].min(), idx[:, 0].max() + 1)
        back = idx[:, 1].max()
        mid = round(float(idx[:, 2].mean()))
        # Within 25 mm behind the disc's posterior margin, in the central 10 mm.
        behind = csf[rows, back + 1 : back + 26, mid - 5 : mid + 6]
        assert behind.sum() > 100, level
        # ... and nowhere in front of the disc's anterior margin.
        assert not csf[rows, : idx[:, 1].min(), :].any(), level
    # The thecal sac is a long structure along the superior-inferior axis.
    rows_with_csf = np.nonzero(csf.any(axis=(1, 2)))[0]
    assert rows_with_csf.max() - rows_with_csf.min() > 180


@pytest.mark.shared_data
def test_real_background_and_positive_properties(phantom):
    bg = phantom.tissue == Tissue.BACKGROUND
    assert np.all(phantom.pd[bg] == 0)
    body = ~bg
    assert np.all(phantom.t1_ms[body] > 0)
    assert np.all(phantom.t2_ms[body] > 0)
    assert np.all(phantom.pd[body] > 0)
    assert np.all(phantom.pd <= 1.0)
    # Air lies behind the back (axis 1 posterior); the tissue in front of it is all body.
    assert bg[:, 170:, :].mean() > 0.999
    assert not bg[:, :140, :].any()
    present = {Tissue(int(c)) for c in np.unique(phantom.tissue)}
    assert {
        Tissue.MUSCLE,
        Tissue.MARROW,
        Tissue.FAT,
        Tissue.LIGAMENT,
        Tissue.ENDPLATE,
        Tissue.CSF,
        Tissue.NUCLEUS,
        Tissue.ANNULUS,
    } <= present


@pytest.mark.shared_data
def test_real_t2_is_monotone_in_t2w_brightness_within_a_class(real, phantom):
    t2w, labels = real
    _, light, _ = segment_tissues(t2w, labels, phantom.affine, (1, 1, 1))
    for code in (Tissue.MUSCLE, Tissue.MARROW, Tissue.FAT):
        m = phantom.tissue == code
        rho = spearmanr(light[m][::7], phantom.t2_ms[m][::7]).statistic
        assert rho > 0.999, code
        assert np.median(phantom.t2_ms[m]) == pytest.approx(
            {Tissue.MUSCLE: 35.0, Tissue.MARROW: 70.0, Tissue.FAT: 110.0}[code], rel=0.01
        )


@pytest.mark.shared_data
def test_real_mese_at_180_degrees_recovers_disc_t2(phantom, mese_b1_one):
    mese = mese_b1_one
    assert mese.echoes.shape == (*phantom.t2_ms.shape, 12)
    assert np.array_equal(mese.affine, phantom.affine)
    assert np.allclose(mese.te_ms, 10.0 * np.arange(1, 13))
    disc = phantom.discs > 0
    s = mese.echoes[disc].astype(np.float64)
    # no noise-dominated disc voxel (3 sigma: since issue 18 the annulus of a grade-3 disc is
    # darker, as on real slices, and its last echo, at 120 ms, sits near 3.7 sigma)
    assert s.min() > 3 * mese.noise_sigma
    te = mese.te_ms
    logs = np.log(s)
    tc = te - te.mean()
    slope = (logs - logs.mean(axis=1, keepdims=True)) @ tc / (tc @ tc)
    fitted = -1.0 / slope
    err = np.abs(fitted / phantom.t2_ms[disc] - 1.0)
    assert np.median(err) < 0.03
    # Per level, the median fit is within 3% of the true whole-disc mean.
    for level, true in phantom.true_disc_t2_ms().items():
        m = phantom.discs[disc] == LEVEL_INDEX[level]
        assert np.median(fitted[m]) == pytest.approx(
            np.median(phantom.t2_ms[phantom.discs == LEVEL_INDEX[level]]), rel=0.03
        ), (level, true)


@pytest.mark.shared_data
def test_real_mese_protocol_geometry_is_ignored_and_b1_lowers_first_echo(phantom, mese_b1_one):
    idx = np.argwhere(phantom.discs > 0)
    lo, hi = idx.min(axis=0), idx.max(axis=0) + 1
    sl = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    crop = _crop(phantom, sl)
    # The grid comes from the phantom: slab geometry fields of the protocol do not matter.
    other = Protocol(
        n_echoes=12,
        esp_ms=10.0,
        in_plane_mm=2.5,
        fov_ap_mm=100.0,
        fov_si_mm=120.0,
        slice_thickness_mm=6.0,
        n_slices=3,
    )
    a = simulate_mese(crop, PROTOCOL, snr=200, psf_fwhm_vox=None, seed=3)
    b = simulate_mese(crop, other, snr=200, psf_fwhm_vox=None, seed=3)
    assert a.echoes.shape == (*crop.t2_ms.shape, 12)
    assert np.array_equal(a.echoes, b.echoes)
    # Default B1 (smooth, 130..180 deg refocusing): stimulated-echo pathways lower echo 1.
    disc = crop.discs > 0
    assert a.b1.min() == pytest.approx(PROTOCOL.b1_range[0], rel=1e-5)
    first = a.echoes[..., 0][disc]
    first_180 = mese_b1_one.echoes[sl][..., 0][disc]
    ratio = first / first_180
    assert np.median(ratio) < 0.99
    low_b1 = a.b1[disc] < 0.9
    assert low_b1.sum() > 1000
    assert np.median(ratio[low_b1]) < 0.95
    assert np.mean(first[low_b1] < first_180[low_b1]) > 0.99


@pytest.mark.shared_data
@pytest.mark.parametrize("image", ["mese", "t2w"])
def test_real_phantom_is_segmented_named_or_flagged(phantom, image):
    """The segmenter on the mean of the MESE's 60-120 ms echoes, or on a T2w FSE. Every
    labelled disc is found (each true disc is covered by one segmented disc), and the names
    are right or the session is flagged: on these images the network takes S1 for a lumbar
    body and the count anchors on the S1/S2 remnant, one level low; the small "L5/S1" (and,
    on the MESE image, the cord-end check) flags it: never silently wrong."""
    from t2quant.segmentation import segment_discs
    from t2quant.segmentation.files import mese_t2w_image
    from t2quant.synth import CLINICAL, simulate_t2w

    if image == "mese":
        acq = simulate_mese(phantom, CLINICAL, seed=1)
        data = mese_t2w_image(acq.echoes, acq.te_ms)
    else:
        data = simulate_t2w(phantom, CLINICAL, seed=1)
    seg = segment_discs(data, phantom.affine)
    wrong, scores = [], []
    for lvl in ("L1/L2", "L2/L3", "L3/L4", "L4/L5", "L5/S1"):
        truth = phantom.discs == LEVEL_INDEX[lvl]
        found = seg.labels == LEVEL_INDEX[lvl]
        if found.any() and np.bincount(phantom.discs[found]).argmax() not in (0, LEVEL_INDEX[lvl]):
            wrong.append(lvl)
        best = np.bincount(seg.labels[truth], minlength=8)[1:].argmax() + 1  # the disc on it
        mask = seg.labels == best
        scores.append(2.0 * (mask & truth).sum() / (mask.sum() + truth.sum()))
    if wrong:
        assert "level_uncertain" in seg.flags, wrong
    assert min(scores) >= 0.6 and np.mean(scores) >= 0.7, scores
