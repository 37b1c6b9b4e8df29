"""Disc features on hand-made discs with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from t2quant.features import disc_features
from t2quant.features.geometry import ap_length_mm, bulge_index, disc_axes, heights_mm
from t2quant.features.intensity import band_depth, summary, two_peak_mixture
from t2quant.levels import LEVEL_INDEX, LEVELS

PIXEL = np.array([1.0, 1.0])


def rectangle(length: int, height: int, shape=(60, 40)) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[10 : 10 + length, 5 : 5 + height] = True  # axis 0 = AP (length), axis 1 = SI (height)
    return m


def test_rectangle_heights_length_and_no_bulge():
    m = rectangle(40, 8)
    axes = disc_axes(m, PIXEL)
    assert np.allclose(np.abs(axes.along), [1.0, 0.0])
    assert ap_length_mm(m, PIXEL, axes) == pytest.approx(40.0)
    h = heights_mm(m, PIXEL, axes)
    assert h == pytest.approx({"anterior": 8.0, "middle": 8.0, "posterior": 8.0})
    assert bulge_index(m, PIXEL, axes) == pytest.approx(0.0)


def test_wedge_heights_follow_the_wedge_and_scale_with_pixels():
    m = np.zeros((60, 40), bool)
    for i in range(40):  # height grows from 6 px (posterior, high index) to 12 px (anterior)
        m[10 + i, 5 : 5 + 12 - (6 * i) // 39] = True
    axes = disc_axes(m, PIXEL)
    h = heights_mm(m, PIXEL, axes)
    assert h["anterior"] > h["middle"] > h["posterior"]
    big = heights_mm(m, 2 * PIXEL, disc_axes(m, 2 * PIXEL))
    assert big["middle"] == pytest.approx(2 * h["middle"], rel=0.02)


def test_bulge_index_of_a_disc_wider_at_mid_height():
    m = rectangle(40, 9)
    m[5:10, 8:11] = True  # 5 px beyond each end, on the middle three rows
    m[50:55, 8:11] = True
    axes = disc_axes(m, PIXEL)

    # 5th-95th percentile range of u: three rows of 50 px in the middle third, of 40 px in
    # the upper and the lower third (u positions on a 1 mm grid, each row counted once)
    def spread(n):
        return float(np.subtract(*np.percentile(np.repeat(np.arange(n), 3), [95, 5])))

    assert spread(50) == pytest.approx(45.0) and spread(40) == pytest.approx(35.1)
    assert bulge_index(m, PIXEL, axes) == pytest.approx(45.0 / 35.1 - 1, abs=1e-9)


def test_summary_statistics_are_exact():
    s = summary(np.array([1.0, 2.0, 3.0, 4.0, np.nan]))
    assert s == pytest.approx({"mean": 2.5, "median": 2.5, "sd": 1.2909944487, "iqr": 1.5})


def test_two_peak_mixture_finds_both_peaks():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(100, 5, 400), rng.normal(300, 5, 600)])
    mix = two_peak_mixture(values)
    assert mix.converged
    assert mix.low_mean == pytest.approx(100, abs=1.0)
    assert mix.high_mean == pytest.approx(300, abs=1.0)
    assert mix.separation == pytest.approx(200, abs=1.5)
    assert mix.high_weight == pytest.approx(0.6, abs=0.01)


def test_band_depth():
    assert band_depth([1, 5, 10, 6, 10, 5, 1]) == pytest.approx(0.4)
    assert band_depth([1, 5, 8, 10, 8, 5, 1]) == 0.0
    assert band_depth([1, 10, 8, 4]) == 0.0  # a fall to the endplate is not a band


def stack_phantom(height: int = 8, spacing: int = 30, n_discs: int = 3):
    """Rectangular discs stacked along SI in PIR (AP 30 px, 5 slices), a bright nucleus
    (300) in an annulus (100), CSF (400) behind each disc, vertebral bodies (200) in front of
    the canal between and beyond the discs, background 50."""
    shape = (70, 20 + spacing * n_discs, 7)
    labels = np.zeros(shape, np.int16)
    t2w = np.full(shape, 50.0)
    t2 = np.full(shape, 60.0)
    levels = LEVELS[-n_discs:]
    t2w[10:40, :, :] = 200.0  # vertebral bodies; the discs are drawn over them
    for k, level in enumerate(levels):
        top = 10 + k * spacing
        labels[10:40, top : top + height, 1:6] = LEVEL_INDEX[level]
        t2w[10:40, top : top + height, 1:6] = 100.0
        t2w[16:34, top + 1 : top + height - 1, 2:5] = 300.0
        t2[10:40, top : top + height, 1:6] = 80.0
        t2w[42:52, top - 2 : top + height + 2, :] = 400.0  # CSF: posterior = higher axis 0
        t2[42:52, top - 2 : top + height + 2, :] = 2000.0
    return labels, t2w, t2, levels


def test_disc_features_on_a_hand_made_stack():
    labels, t2w, t2, _ = stack_phantom(height=8, spacing=30)
    table = disc_features(labels, t2w, np.ones(3), t2_ms=t2).set_index("level")
    for level in LEVELS[:4]:
        assert table.loc[level, "qc_status"] == "failed"
        assert table.loc[level, "qc_reason"] == "not segmented"
    row = table.loc["L4/L5"]
    assert row["qc_status"] == "ok"
    assert row["n_voxels"] == 30 * 8 * 5
    assert row["volume_mm3"] == pytest.approx(1200.0)
    assert row["n_slices"] == 5
    assert row["midsagittal_area_mm2"] == pytest.approx(240.0)
    assert row["height_middle_mm"] == pytest.approx(8.0)
    assert row["ap_length_mm"] == pytest.approx(30.0)
    # body between discs: 30 mm between centres less half of each 8 mm disc = 22 mm
    assert row["disc_height_index"] == pytest.approx(8 / 22)
    assert row["height_ratio"] == pytest.approx(1.0)
    assert row["t2_mean_ms"] == pytest.approx(80.0)
    assert row["t2_sd_ms"] == pytest.approx(0.0)
    assert row["t2_failed_fraction"] == 0.0
    assert row["csf_signal_au"] == pytest.approx(400.0)
    # nucleus: central 60% of 30 px (rows 16..33 inclusive of the bright core) on 3 slices
    assert row["nucleus_signal_au"] == pytest.approx(300.0)
    assert row["annulus_signal_au"] == pytest.approx(100.0)
    assert row["nucleus_annulus_contrast"] == pytest.approx(0.5)
    assert row["nucleus_csf_ratio"] == pytest.approx(0.75)
    # the boxes 7..15 mm from the disc's centre line (3 mm past its 4 mm half height, 8 mm
    # deep) hold body only, 200 on both sides: pixel centres at 7.5..14.5 mm (8 rows) by
    # |u| <= 0.3 x 29 mm (18 columns) on each side
    assert row["vertebra_signal_au"] == pytest.approx(200.0)
    assert row["n_vertebra_voxels"] == 2 * 8 * 18
    assert row["nucleus_vertebra_ratio"] == pytest.approx(1.5)
    assert row["nucleus_brightest_ratio"] == pytest.approx(1.0)
    assert row["peak_separation_au"] == pytest.approx(200.0, abs=1e-3)
    assert row["peak_separation_csf"] == pytest.approx(0.5, abs=1e-5)
    assert not row["horizontal_band"]


def test_nucleus_relative_to_the_brightest_disc_and_the_bodies_is_scale_free():
    """A darker L4/L5 nucleus (150) is 0.5 of the brightest disc and 0.75 of the bodies;
    multiplying the image by a constant (another scanner's scale) changes no ratio."""
    labels, t2w, _, _ = stack_phantom()
    t2w[16:34, 41:47, 2:5] = 150.0  # L4/L5 nucleus (its top is at row 40)
    for scale in (1.0, 0.37):
        table = disc_features(labels, scale * t2w, np.ones(3)).set_index("level")
        assert table.loc["L4/L5", "nucleus_brightest_ratio"] == pytest.approx(0.5)
        assert table.loc["L5/S1", "nucleus_brightest_ratio"] == pytest.approx(1.0)
        assert table.loc["L4/L5", "nucleus_vertebra_ratio"] == pytest.approx(0.75)
        assert table.loc["L4/L5", "nucleus_csf_ratio"] == pytest.approx(0.375)
    assert np.isnan(table.loc["L1/L2", "nucleus_brightest_ratio"])  # not segmented


def test_failed_t2_fits_are_excluded_and_counted():
    labels, t2w, t2, _ = stack_phantom()
    disc = labels == LEVEL_INDEX["L5/S1"]
    idx = np.argwhere(disc)[:60]
    t2[tuple(idx.T)] = np.nan
    t2[tuple(np.argwhere(disc)[60:120].T)] = 120.0
    row = disc_features(labels, t2w, np.ones(3), t2_ms=t2).set_index("level").loc["L5/S1"]
    n = int(disc.sum())
    assert row["t2_failed_fraction"] == pytest.approx(60 / n)
    assert row["t2_mean_ms"] == pytest.approx((60 * 120 + (n - 120) * 80) / (n - 60))


def test_a_tiny_disc_and_no_t2_map_give_reasons_not_numbers():
    labels, t2w, _, _ = stack_phantom()
    labels[labels == LEVEL_INDEX["L3/L4"]] = 0
    labels[12:14, 12:14, 3] = LEVEL_INDEX["L3/L4"]
    table = disc_features(labels, t2w, np.ones(3)).set_index("level")
    assert table.loc["L3/L4", "qc_status"] == "failed"
    assert "only 4 voxels" in table.loc["L3/L4", "qc_reason"]
    assert np.isnan(table.loc["L3/L4", "volume_mm3"])
    assert np.isnan(table.loc["L5/S1", "t2_mean_ms"])
    assert table.loc["L5/S1", "nucleus_csf_ratio"] == pytest.approx(0.75)


def test_grids_must_match():
    labels, t2w, t2, _ = stack_phantom()
    with pytest.raises(ValueError, match="must share one grid"):
        disc_features(labels, t2w[:-1], np.ones(3), t2_ms=t2)


def test_a_single_slice_is_measured_but_its_volume_is_nan_with_the_reason():
    """One sagittal slice (left-right length 1): everything in-plane is measured; the volume
    needs several slices and is NaN, with the reason in qc_reason."""
    from t2quant.features.core import ONE_SLICE_REASON

    labels, t2w, t2, _ = stack_phantom()
    one = slice(3, 4)
    table = disc_features(labels[:, :, one], t2w[:, :, one], np.array([1.0, 1.0, 4.0]),
                          t2_ms=t2[:, :, one]).set_index("level")  # fmt: skip
    row = table.loc["L4/L5"]
    assert row["qc_status"] == "ok" and row["n_slices"] == 1
    assert np.isnan(row["volume_mm3"]) and ONE_SLICE_REASON in row["qc_reason"]
    assert row["height_middle_mm"] == pytest.approx(8.0)
    assert row["t2_mean_ms"] == pytest.approx(80.0)
    assert row["nucleus_signal_au"] == pytest.approx(300.0)
    assert row["csf_signal_au"] == pytest.approx(400.0)
