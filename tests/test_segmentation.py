"""Disc segmentation and level naming (the learned engine): frame checks and bad input,
synthetic phantoms with known truth and special anatomy, single slices, the real T2w volume
with manual masks and a SPIDER slice (when ../shared is present), imports from other tools,
and the command line."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from t2quant.cli import main
from t2quant.levels import INDEX_LEVEL, LEVEL_INDEX, LEVELS
from t2quant.segmentation import import_labels, segment_discs
from t2quant.segmentation.files import mese_t2w_image
from t2quant.segmentation.frame import parse_axcodes, to_canonical
from t2quant.synth import DEMO, make_spine_phantom, simulate_t2w

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
REAL = SHARED / "real" / "menezes-reis-ivd-11"
SPIDER = SHARED / "real" / "spider-midsagittal-t2"
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


def test_empty_constant_and_shapeless_images_are_refused():
    with pytest.raises(ValueError, match="empty or constant"):
        segment_discs(np.ones((50, 50)), np.eye(4), name="x.nii")
    with pytest.raises(ValueError, match="empty or constant"):
        segment_discs(np.full((50, 60, 8), 7.0), np.eye(4), orientation="PIR", name="x.nii")
    with pytest.raises(ValueError, match="one 2D slice"):
        segment_discs(np.arange(50.0), np.eye(4), name="x.nii")
    with pytest.raises(ValueError, match="three nibabel axis codes"):
        parse_axcodes("IPP")


def test_a_single_axial_slice_is_refused():
    """A 2D image whose affine puts the slice across the body's long axis is axial."""
    data = np.random.default_rng(4).random((60, 60))
    with pytest.raises(ValueError, match="axial slab"):
        segment_discs(data, np.eye(4), name="slice.nii")


def test_a_one_slice_frame_round_trips():
    data = np.random.default_rng(5).random((1, 40, 50)).astype(np.float32)
    frame = to_canonical(data, _affine("RAS", (4.0, 0.7, 0.7)))
    assert frame.data.shape == (40, 50, 1)
    np.testing.assert_array_equal(frame.back(frame.data), data)


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


def test_a_disc_cut_by_the_top_of_the_field_of_view_is_flagged_not_dropped():
    """Cut the image through T12/L1: what is left of it is kept as seen (not stretched) and
    flagged partial_disc; the levels below stay right."""
    ph, t2w = _phantom(3)
    rows = np.flatnonzero((ph.discs == LEVEL_INDEX["T12/L1"]).any(axis=(0, 2)))
    cut = int(rows.mean())
    seg = segment_discs(t2w[:, cut:], ph.affine)
    truth = ph.discs[:, cut:]
    assert "partial_disc" in seg.flags and "missing_level" in seg.flags
    for lvl in LEVELS[2:]:
        assert truth_of(seg.labels == LEVEL_INDEX[lvl], truth) == lvl
    top = seg.record("T12/L1")
    if top.found:
        assert top.note.startswith("partial")
        assert (seg.labels == LEVEL_INDEX["T12/L1"]).sum() <= 1.2 * (truth == 2).sum()
    assert not seg.record("T11/T12").found


def test_an_l5_s1_much_smaller_than_the_discs_above_is_flagged_not_renamed():
    """A thin S1/S2 remnant taken for L5/S1 makes every name one level low: flag it."""
    from t2quant.segmentation.naming import Disc, _check_anchor_size, _Log

    def disc(area: float, name: str) -> Disc:
        return Disc(0, np.zeros(2), area, 1, 2, False, name=name)

    named = [disc(a, n) for a, n in zip([230, 180, 220, 190, 160, 280], LEVELS[1:], strict=True)]
    log = _Log()
    _check_anchor_size([*named[:-1], disc(45.0, "L5/S1")], log)
    assert log.flags == {"level_uncertain"} and "remnant" in log.warnings[0]
    log = _Log()
    _check_anchor_size(named, log)  # a normal L5/S1 (280 mm2)
    assert not log.flags and named[-1].name == "L5/S1"
    for d in named:
        d.depth_mm = 40.0
    collapsed = Disc(0, np.zeros(2), 90.0, 1, 2, False, name="L5/S1", depth_mm=38.0)
    log = _Log()
    _check_anchor_size([*named[:-1], collapsed], log)  # thin but full depth: a collapsed disc
    assert not log.flags
    remnant = Disc(0, np.zeros(2), 90.0, 1, 2, False, name="L5/S1", depth_mm=24.0)
    log = _Log()
    _check_anchor_size([*named[:-1], remnant], log)  # small and short: maybe the remnant
    assert log.flags == {"level_uncertain"}


def test_a_disc_that_does_not_part_its_bodies_is_found_by_its_place_in_the_column():
    """A thin dark disc leaves the bodies around it one bone region: the chain would step
    over it. It is taken back where the step is double and it lies in line; fragments,
    pieces out of line and pieces in ordinary steps are not."""
    from t2quant.segmentation.naming import Disc, _fill_gaps

    def disc(row: float, col: float = 100.0, depth: float = 40.0, label: int = 0) -> Disc:
        return Disc(label, np.array([row, col]), depth * 8, 1, 2, False, depth_mm=depth)

    l5, l4, l2, l1 = disc(200), disc(165), disc(95), disc(60)  # L3/L4 (130) missed
    hidden, fragment, aside = disc(130, label=7), disc(128, depth=12), disc(130, col=150)
    chain, found = _fill_gaps([l5, l4, l2, l1], [fragment, aside, hidden])
    assert chain == [l5, l4, hidden, l2, l1] and found == [hidden]
    chain, found = _fill_gaps([l5, l4, l2, l1], [fragment, aside])  # nothing fits: unchanged
    assert chain == [l5, l4, l2, l1] and not found
    inside = disc(182)  # a piece inside an ordinary step (e.g. a bright endplate band)
    assert _fill_gaps([l5, l4, disc(130), l2], [inside])[1] == []
    t12 = disc(26)  # one ordinary step above the top of the chain
    far = disc(-60)  # two steps above: not chained without the disc between
    chain, found = _fill_gaps([l5, l4, disc(130), l2, l1], [far, t12])
    assert chain[-1] is t12 and found == [t12]


def test_two_hidden_discs_in_one_long_step_are_taken_in_column_order():
    """Three vertebrae left one bone region hide two discs in one step: each is taken back
    one vertebra at a time (the nearest fitting piece first), not the biggest first, which
    stepped over the lower one and left it unnamed."""
    from t2quant.segmentation.naming import Disc, _fill_gaps

    def disc(row: float, area: float = 300.0, depth: float = 35.0) -> Disc:
        return Disc(0, np.array([row, 100.0]), area, 1, 2, False, depth_mm=depth)

    l5, l4, l1, t12 = disc(200), disc(170), disc(80), disc(50)  # L3/L4 and L2/L3 hidden
    l3, l2 = disc(140, area=120.0, depth=28.0), disc(110, area=200.0)
    chain, found = _fill_gaps([l5, l4, l1, t12], [l2, l3])
    assert chain == [l5, l4, l3, l2, l1, t12] and found == [l3, l2]


def test_a_disc_broken_in_two_side_by_side_pieces_is_found_whole():
    """The network can paint a thin disc as two short pieces, front and back: each alone is
    too short to count as a disc, joined they are one disc of the union's depth."""
    from t2quant.segmentation.naming import Disc, _fill_gaps, _join

    spacing = np.array([1.0, 1.0, 1.0])
    comps = np.zeros((120, 80), int)
    comps[60:64, 12:28] = 1  # front piece, 16 mm
    comps[62:66, 31:45] = 2  # back piece, 14 mm, 2 mm lower
    comps[20:24, 10:20] = 3  # a fragment elsewhere in the same bone
    pieces = [
        Disc(k, np.argwhere(comps == k).mean(0), float((comps == k).sum()), 5, 5, False,
             depth_mm=float(np.ptp(np.nonzero(comps == k)[1]) + 1))
        for k in (1, 2, 3)
    ]  # fmt: skip
    joined = _join(pieces, comps, spacing)
    whole = next(d for d in joined if d.label == 1)
    assert len(joined) == 2 and whole.merged == [2]
    assert whole.depth_mm == pytest.approx(33.0, abs=1.0)
    assert whole.area_mm2 == pytest.approx(64 + 56)

    def disc(row: float) -> Disc:
        return Disc(9, np.array([row, 27.0]), 300.0, 1, 2, False, depth_mm=36.0)

    low, up = disc(94), disc(32)  # a double step around the broken disc (row 62)
    assert _fill_gaps([disc(126), low, up, disc(0)], pieces)[1] == []  # alone: too short
    assert _fill_gaps([disc(126), low, up, disc(0)], joined)[1] == [whole]


def test_discs_above_the_chain_follow_a_curved_column():
    """Above the top of the chain a disc is taken one step at a time in line with the
    column's own axis (the last two steps), so a kyphotic thoracic column that leans back
    is followed; a piece off that axis is not taken."""
    from t2quant.segmentation.naming import Disc, _fill_gaps

    def disc(row: float, col: float) -> Disc:
        return Disc(0, np.array([row, col]), 200.0, 1, 2, False, depth_mm=35.0)

    column = [disc(172, 122), disc(148, 116), disc(122, 118), disc(97, 122), disc(74, 131)]
    t12, t11 = disc(52, 143), disc(31, 147)  # leaning back 29 and 11 degrees from vertical
    chain, found = _fill_gaps(column, [t11, t12])
    assert chain[-2:] == [t12, t11] and found == [t12, t11]
    off = disc(60, 112)  # a step of 24 mm turning forward 40 degrees from the column
    assert _fill_gaps(column, [off])[1] == []


def test_l5_s1_nearest_the_sacrum_on_a_body_resting_on_it_is_anchored_there():
    """When the network paints S1 partly as a lumbar body, no disc lies between a body and
    the sacrum class; the disc nearest the sacrum is L5/S1 (flagged), and when the body
    under it rests on the sacrum it is recorded as sitting on S1, as the S1 rule does."""
    from t2quant.segmentation.naming import SACRUM_ID, Disc, _anchor, _Log

    spacing = np.array([1.0, 1.0, 1.0])
    bones = np.zeros((200, 100), int)
    bones[100:130, 20:60] = 7  # L5
    bones[138:150, 20:60] = 8  # S1, painted as a body
    bones[154:200, 20:70] = SACRUM_ID  # the rest of the sacrum, 4 mm below it
    l5s1 = Disc(1, np.array([134.0, 40.0]), 300.0, 7, 8, False, depth_mm=40.0)
    l4l5 = Disc(2, np.array([95.0, 40.0]), 300.0, 6, 7, False, depth_mm=40.0)
    log = _Log()
    assert _anchor([l4l5, l5s1], bones, spacing, log) == 1  # 20 mm from the sacrum
    assert l5s1.on_s1_body and log.flags == {"level_uncertain"}
    bones[145:154] = 0  # the body under it ends 9 mm above the sacrum: not resting on it
    l5s1.on_s1_body = False
    assert _anchor([l4l5, l5s1], bones, spacing, _Log()) == 1
    assert not l5s1.on_s1_body


def test_a_disc_missing_from_the_column_is_counted_in_the_names_above_it():
    """A disc the network did not paint at all leaves a double step: the discs above it
    keep their true names (one level skipped), and the session is flagged."""
    from t2quant.segmentation.naming import Disc, _Log, _offsets

    rows = [200, 165, 130, 60, 25]  # L5/S1, L4/L5, L3/L4, (L2/L3 missing), L1/L2, T12/L1
    chain = [Disc(0, np.array([r, 100.0]), 300.0, 1, 2, False, depth_mm=40.0) for r in rows]
    log = _Log()
    assert _offsets(chain, log) == [0, 1, 2, 4, 5]
    assert log.flags == {"level_uncertain", "missing_level"}
    assert "1 disc(s) missing above L3/L4" in log.warnings[0]
    log = _Log()
    even = [*chain[:3], Disc(0, np.array([95.0, 100.0]), 300.0, 1, 2, False)]
    assert _offsets(even, log) == [0, 1, 2, 3]
    assert not log.warnings


@pytest.mark.skipif(not SPIDER.exists(), reason="needs ../shared/data/real")
def test_a_spider_disc_inside_one_bone_region_is_named():
    """SPIDER patient 192 (van der Graaf et al. 2024, CC BY 4.0): 6 discs in view; the
    network leaves L4 and L5 (around a thin L4/L5) one bone region."""
    img = nib.load(SPIDER / "sub-192" / "sub-192_T2w.nii.gz")
    seg = segment_discs(np.asanyarray(img.dataobj).astype(np.float32), img.affine)
    assert seg.naming.names == list(LEVELS[1:])
    assert any(w.endswith("found by its place in the column") for w in seg.warnings)
    steps = np.diff([d.centroid_mm[0] for d in seg.naming.discs if d.name])
    assert steps.max() < 1.5 * np.median(steps)


@pytest.mark.skipif(not SPIDER.exists(), reason="needs ../shared/data/real")
def test_spider_slices_are_named_from_l5_s1_up_and_a_miss_is_flagged():
    """All 87 shared SPIDER slices (van der Graaf et al. 2024, CC BY 4.0) against their
    radiologists' visible-disc counts, as issue 17's target reads: every disc from L5/S1 up
    to the top of the view (or T11/T12) named in >= 95%, and no slice wrong without a flag.
    Measured 83/87 and 0 (the naming rules were designed looking at these slices; the
    kept-back half checks them)."""
    from t2quant.validation.naming import count_check

    table = pd.read_csv(SPIDER / "participants.tsv", sep="\t")
    checks = []
    for row in table.itertuples():
        img = nib.load(SPIDER / row.participant_id / f"{row.participant_id}_T2w.nii.gz")
        seg = segment_discs(np.asanyarray(img.dataobj).astype(np.float32), img.affine)
        checks.append(count_check(seg.naming, row.n_discs))
    hit = sum(c.target for c in checks)
    assert len(checks) == 87 and hit >= 83, hit
    assert not [c for c in checks if not c.target and not c.alert]


def _column(sacrum_top: int = 220) -> np.ndarray:
    """A mid-sagittal class map (1 mm pixels, shape (300, 100, 1)): bodies T12..L5 26 mm
    tall, discs 10 mm, the canal behind them, the sacrum from ``sacrum_top`` down."""
    from t2quant.segmentation.network import Cls

    slab = np.zeros((300, 100), np.uint8)
    slab[:, 65:75] = Cls.CANAL
    for k in range(6):  # bodies T12..L5, then the disc below each
        top = 4 + 36 * k
        slab[top : top + 26, 20:61] = Cls.BODY
        slab[top + 26 : top + 36, 22:59] = Cls.DISC
    slab[sacrum_top:295, 20:61] = Cls.SACRUM
    return slab


@pytest.mark.parametrize("case", ["plain", "s1_as_body", "split_sacrum", "bridged_bodies"])
def test_naming_holds_when_the_network_splits_or_merges_bones(case):
    """S1 taken for a lumbar body, a sacrum in two pieces across the S1/S2 remnant, or two
    bodies left one region around a thin disc: the names stay right; S1 as a body is flagged."""
    from t2quant.segmentation.naming import name_discs
    from t2quant.segmentation.network import Cls

    slab = _column()
    if case == "s1_as_body":
        slab[220:246, 20:61] = Cls.BODY
        slab[246:250] = np.where(slab[246:250] == Cls.SACRUM, 0, slab[246:250])
    elif case == "split_sacrum":
        slab[246:249, 20:61] = 0
        slab[246:249, 30:50] = Cls.DISC  # the S1/S2 remnant
    elif case == "bridged_bodies":
        slab[138:148, 20:61] = Cls.BODY
        slab[140:146, 24:57] = Cls.DISC  # a thin L3/L4 that does not part L3 from L4
    naming, levels = name_discs(slab[:, :, None], np.ones(3))
    assert naming.names == list(LEVELS[1:])
    assert ("level_uncertain" in naming.flags) == (case == "s1_as_body")
    lowest = naming.disc("L5/S1").centroid_mm[0]
    assert 210 <= lowest <= 220
    assert (levels[140:146, 30, 0] == LEVEL_INDEX["L3/L4"]).all()


# --- single slices ---------------------------------------------------------------------


@pytest.mark.parametrize("two_d", [False, True])
def test_a_single_mid_sagittal_slice_is_segmented_and_named(two_d):
    ph, t2w = _phantom(3)
    mid = int(np.argmax((ph.discs > 0).sum(axis=(0, 1))))
    image = t2w[:, :, mid] if two_d else t2w[:, :, mid : mid + 1]
    seg = segment_discs(image, ph.affine)
    assert seg.labels.shape == (*t2w.shape[:2], 1)
    truth = ph.discs[:, :, mid : mid + 1]
    for lvl in LEVELS:
        found = seg.labels == LEVEL_INDEX[lvl]
        assert truth_of(found, truth) == lvl
        assert dice(found, truth == LEVEL_INDEX[lvl]) >= 0.8, lvl
        assert seg.record(lvl).n_slices == 1
    assert "level_uncertain" not in seg.flags


@pytest.mark.skipif(not SPIDER.exists(), reason="needs ../shared/data/real")
def test_a_spider_slice_is_named_from_the_sacrum():
    """SPIDER patient 16 (van der Graaf et al. 2024, CC BY 4.0): 7 discs in view, shape
    (1, A, S); L5/S1 sits on the sacrum, the top disc is cut by the field of view."""
    img = nib.load(SPIDER / "sub-016" / "sub-016_T2w.nii.gz")
    seg = segment_discs(np.asanyarray(img.dataobj).astype(np.float32), img.affine)
    named = [d for d in seg.naming.discs if d.name]
    assert [d.name for d in named][-len(LEVELS) :] == list(LEVELS)
    assert all(d.partial for d in named[: -len(LEVELS)])  # above T11/T12: only a cut sliver
    low = seg.naming.disc("L5/S1")
    assert low.on_sacrum and low.under_body
    assert seg.labels.shape == img.shape and "partial_disc" in seg.flags


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
    assert {"no_canal", "level_uncertain"} <= set(seg.flags)
    paths = write_segmentation(seg, image, affine, tmp_path, "empty", source="noise")
    assert paths["qc"].stat().st_size > 0
