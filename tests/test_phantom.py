"""The geometric lumbar phantom: anatomy, grades, levels and options, checked by value."""

from __future__ import annotations

import itertools

import nibabel as nib
import numpy as np
import pytest

from t2quant.levels import LEVEL_INDEX, LEVELS
from t2quant.synth import make_spine_phantom
from t2quant.synth.protocol import Protocol
from t2quant.synth.tissues import DISC_GRADES, Tissue, level_t2_factor

SMALL = Protocol(in_plane_mm=1.0, n_slices=7, slice_thickness_mm=4.0, n_echoes=6)
MIXED = {"T11/T12": 1, "T12/L1": 2, "L1/L2": 3, "L2/L3": 4, "L3/L4": 5, "L4/L5": 2, "L5/S1": 1}


@pytest.fixture(scope="module")
def mixed():
    return make_spine_phantom(seed=3, grades=MIXED, protocol=SMALL)


def _centroid_world(ph, label):
    idx = np.argwhere(ph.discs == label).mean(axis=0)
    return ph.affine[:3, :3] @ idx + ph.affine[:3, 3]


def _disc_tissue_t2(ph, level, tissue, q=90):
    """A high percentile: the core of the region, away from its blended rim and band."""
    m = (ph.discs == LEVEL_INDEX[level]) & (ph.tissue == tissue)
    return float(np.percentile(ph.t2_ms[m], q))


def test_all_seven_levels_present_and_ordered_superior_to_inferior(mixed):
    assert mixed.levels_in_fov == LEVELS
    z = [_centroid_world(mixed, LEVEL_INDEX[lvl])[2] for lvl in LEVELS]
    assert all(a > b + 15 for a, b in itertools.pairwise(z))  # >= one body apart


def test_every_disc_lies_between_two_vertebral_bodies(mixed):
    for lvl in LEVELS:
        i, j, k = np.round(np.argwhere(mixed.discs == LEVEL_INDEX[lvl]).mean(axis=0)).astype(int)
        column = mixed.tissue[i, :, k]  # PIR: axis 1 runs superior -> inferior
        above, below = column[:j][::-1], column[j + 1 :]
        first_bone_above = next(t for t in above if t not in (Tissue.NUCLEUS, Tissue.ANNULUS))
        first_bone_below = next(t for t in below if t not in (Tissue.NUCLEUS, Tissue.ANNULUS))
        assert first_bone_above in (Tissue.ENDPLATE, Tissue.MARROW, Tissue.CORTEX)
        assert first_bone_below in (Tissue.ENDPLATE, Tissue.MARROW, Tissue.CORTEX)


def test_nucleus_t2_follows_grade_and_level(mixed):
    for lvl, grade in MIXED.items():
        if grade >= 4:
            continue  # the nucleus is not a distinct region any more
        expected = DISC_GRADES[grade].nucleus_t2_ms * level_t2_factor(lvl)
        got = _disc_tissue_t2(mixed, lvl, Tissue.NUCLEUS)
        assert got == pytest.approx(expected, rel=0.15), lvl
    whole = mixed.true_disc_t2_ms()
    assert whole["L5/S1"] > whole["T12/L1"] > whole["L1/L2"] > whole["L2/L3"] > whole["L3/L4"]


def test_nucleus_annulus_distinction_is_lost_from_grade_3(mixed):
    def contrast(lvl):
        nuc = mixed.t2_ms[(mixed.discs == LEVEL_INDEX[lvl]) & (mixed.tissue == Tissue.NUCLEUS)]
        ann = mixed.t2_ms[(mixed.discs == LEVEL_INDEX[lvl]) & (mixed.tissue == Tissue.ANNULUS)]
        return np.median(nuc) / np.median(ann)

    assert contrast("L5/S1") > 2.5  # grade 1
    assert contrast("T12/L1") > 1.8  # grade 2
    assert contrast("L1/L2") < 1.6  # grade 3
    assert contrast("L2/L3") < 1.3  # grade 4


def test_grade_2_has_a_dark_horizontal_band():
    ph = make_spine_phantom(seed=1, grades={"L3/L4": 2}, protocol=SMALL)
    mask = ph.discs == LEVEL_INDEX["L3/L4"]
    i, j, k = np.round(np.argwhere(mask & (ph.tissue == Tissue.NUCLEUS)).mean(0)).astype(int)
    column = ph.t2_ms[i, j - 3 : j + 4, k]
    assert column[3] < 0.85 * max(column[1], column[5])


def _mid_height_mm(ph, lvl):
    m = ph.discs == LEVEL_INDEX[lvl]
    i, _, k = np.round(np.argwhere(m).mean(0)).astype(int)
    return m[i, :, k].sum() * abs(ph.affine[2, 1])


def test_height_loss_at_grade_4_and_collapse_at_grade_5():
    healthy = make_spine_phantom(seed=5, grades=dict.fromkeys(LEVELS, 2), protocol=SMALL)
    worn = make_spine_phantom(seed=5, grades={"L3/L4": 4, "L4/L5": 5}, protocol=SMALL)
    assert _mid_height_mm(worn, "L3/L4") < 0.85 * _mid_height_mm(healthy, "L3/L4")
    assert _mid_height_mm(worn, "L4/L5") < 0.55 * _mid_height_mm(healthy, "L4/L5")


def test_inhomogeneity_grows_with_grade(mixed):
    from scipy.ndimage import binary_erosion

    core = binary_erosion(
        (mixed.discs == LEVEL_INDEX["L5/S1"]) & (mixed.tissue == Tissue.NUCLEUS), iterations=2
    )
    grade1 = mixed.t2_ms[core]
    grade5 = mixed.t2_ms[mixed.discs == LEVEL_INDEX["L3/L4"]]
    assert grade1.size > 20
    assert np.std(grade1) / np.mean(grade1) < 0.06  # homogeneous, bright (grade 1)
    assert np.std(grade5) / np.mean(grade5) > 0.10  # inhomogeneous, black (grade 5)


def test_tissue_map_holds_the_anatomy(mixed):
    present = set(np.unique(mixed.tissue))
    for t in (
        Tissue.CSF,
        Tissue.CORD,
        Tissue.MARROW,
        Tissue.ENDPLATE,
        Tissue.POSTERIOR_ELEMENTS,
        Tissue.MUSCLE,
        Tissue.FAT,
        Tissue.NUCLEUS,
        Tissue.ANNULUS,
        Tissue.BACKGROUND,
    ):
        assert t in present, t.name
    assert np.all(mixed.pd[mixed.tissue == Tissue.BACKGROUND] == 0)
    assert np.all(mixed.t2_ms[mixed.tissue == Tissue.CSF] > 1000)
    assert np.all(mixed.t2_ms[mixed.pd > 0] > 0)


def test_same_seed_same_phantom_other_seed_other_anatomy():
    a = make_spine_phantom(seed=11, protocol=SMALL)
    b = make_spine_phantom(seed=11, protocol=SMALL)
    c = make_spine_phantom(seed=12, protocol=SMALL)
    np.testing.assert_array_equal(a.tissue, b.tissue)
    np.testing.assert_array_equal(a.t2_ms, b.t2_ms)
    assert (a.discs != c.discs).mean() > 0.005
    ha = [_mid_height_mm(a, lvl) for lvl in LEVELS]
    hc = [_mid_height_mm(c, lvl) for lvl in LEVELS]
    assert ha != hc


def test_disc_t2_targets_and_offsets_are_exact(mixed):
    targets = {"L4/L5": 91.5, "L1/L2": 70.25}
    ph = make_spine_phantom(seed=3, grades=MIXED, protocol=SMALL, disc_t2_ms=targets)
    got = ph.true_disc_t2_ms()
    for lvl, t in targets.items():
        assert got[lvl] == pytest.approx(t, rel=1e-6)
        assert np.mean(ph.t2_ms[ph.discs == LEVEL_INDEX[lvl]]) == pytest.approx(t, rel=1e-6)
    shifted = make_spine_phantom(
        seed=3, grades=MIXED, protocol=SMALL, disc_t2_offset_ms={"L2/L3": 3.0}
    )
    assert shifted.true_disc_t2_ms()["L2/L3"] == pytest.approx(
        mixed.true_disc_t2_ms()["L2/L3"] + 3.0, rel=1e-6
    )
    assert shifted.true_disc_t2_ms()["L3/L4"] == pytest.approx(mixed.true_disc_t2_ms()["L3/L4"])


def test_missing_t11_t12_field_of_view():
    ph = make_spine_phantom(seed=2, protocol=SMALL, missing_t11_t12=True)
    assert "T11/T12" not in ph.levels_in_fov
    assert ph.levels_in_fov == LEVELS[1:]
    assert not (ph.discs == LEVEL_INDEX["T11/T12"]).any()
    assert np.isnan(ph.true_disc_t2_ms()["T11/T12"])


def test_sixth_lumbar_vertebra_adds_l5_l6_and_l6_s1():
    ph = make_spine_phantom(seed=4, protocol=SMALL, extra_lumbar=True)
    assert ph.levels_in_fov == (*LEVELS[:6], "L5/L6", "L6/S1")
    assert set(np.unique(ph.discs)) == {0, 1, 2, 3, 4, 5, 6, 8, 9}
    z = {lvl: _centroid_world(ph, LEVEL_INDEX[lvl])[2] for lvl in ph.levels_in_fov}
    assert z["L4/L5"] > z["L5/L6"] > z["L6/S1"]


@pytest.mark.parametrize(
    ("slab", "codes"), [("sagittal", ("P", "I", "R")), ("axial", ("P", "R", "I"))]
)
def test_slab_orientation_is_in_the_affine(slab, codes):
    ph = make_spine_phantom(seed=0, protocol=SMALL, slab=slab)
    assert nib.aff2axcodes(ph.affine) == codes


def test_oblique_slab_tilts_the_slice_axis():
    ph = make_spine_phantom(seed=0, protocol=SMALL, slab="oblique", oblique_deg=40.0)
    normal = ph.affine[:3, 2] / np.linalg.norm(ph.affine[:3, 2])
    assert np.degrees(np.arccos(abs(normal[0]))) == pytest.approx(40.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"grades": {"L4/L5": 6}}, "grade of L4/L5 must be 1..5"),
        ({"grades": {"L5/L6": 3}}, "not in this phantom"),
        ({"slab": "coronal"}, "slab must be one of"),
        ({"disc_t2_ms": {"L4/L5": -5.0}}, "must be positive"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_spine_phantom(seed=0, protocol=Protocol(in_plane_mm=3.0, n_slices=3), **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_echoes": 0}, "n_echoes must be an integer >= 1"),
        ({"esp_ms": 0.0}, "esp_ms must be positive"),
        ({"b1_range": (0.9, 1.2)}, "must not exceed 180"),
    ],
)
def test_bad_protocols_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Protocol(**kwargs)
