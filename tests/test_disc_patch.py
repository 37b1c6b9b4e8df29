"""The disc patch and the disc-appearance network on hand-made discs with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage as ndi

from t2quant.features import disc_features
from t2quant.features.appearance import appearance_scores
from t2quant.features.geometry import disc_axes
from t2quant.features.patch import PATCH_CONTEXT, PATCH_H, PATCH_W, disc_patch
from t2quant.levels import LEVEL_INDEX

PIXEL = np.array([1.0, 1.0])


def flat_disc(shape=(120, 80), length=40, height=10) -> np.ndarray:
    m = np.zeros(shape, bool)
    a0, s0 = shape[0] // 2 - length // 2, shape[1] // 2 - height // 2
    m[a0 : a0 + length, s0 : s0 + height] = True  # axis 0 = AP (length), axis 1 = SI
    return m


def test_a_flat_disc_fills_the_middle_of_its_patch_with_its_log_signal():
    disc = flat_disc()
    plane = np.where(disc, 300.0, 100.0)
    patch = disc_patch(plane, disc, disc_axes(disc, PIXEL), PIXEL, reference=100.0)
    assert patch.shape == (2, PATCH_H, PATCH_W) and patch.dtype == np.float32
    # 64 columns over 1.4 x 40 mm: a step of 0.875 mm; the disc's 10 mm are ~11 rows
    step = PATCH_CONTEXT * 40.0 / PATCH_W
    assert step == pytest.approx(0.875)
    assert patch[0, PATCH_H // 2, PATCH_W // 2] == pytest.approx(np.log(3.0), abs=1e-6)
    assert patch[0, 0, 0] == pytest.approx(0.0, abs=1e-6)  # the surroundings: log(100/100)
    assert patch[1, PATCH_H // 2, PATCH_W // 2] == pytest.approx(1.0)
    assert patch[1, 0].max() == 0.0 and patch[1, :, 0].max() == 0.0
    rows_inside = (patch[1, :, PATCH_W // 2] > 0.5).sum()
    assert rows_inside == pytest.approx(10.0 / step, abs=1.0)


def test_the_patch_follows_a_tilted_disc():
    disc = flat_disc()
    plane = np.where(disc, 300.0, 100.0)
    plane[disc & (np.arange(120)[:, None] < 60)] = 500.0  # a brighter anterior half
    flat = disc_patch(plane, disc, disc_axes(disc, PIXEL), PIXEL, 100.0)
    tilted_disc = ndi.rotate(disc.astype(float), 20, reshape=False, order=1) > 0.5
    tilted_plane = ndi.rotate(plane, 20, reshape=False, order=0, mode="nearest")
    tilted = disc_patch(tilted_plane, tilted_disc, disc_axes(tilted_disc, PIXEL), PIXEL, 100.0)
    inside = (flat[1] > 0.99) & (tilted[1] > 0.99)
    assert inside.sum() > 300
    # the same brighter half on the same side; only the seam between halves may differ
    agree = np.abs(flat[0][inside] - tilted[0][inside]) < 0.05
    assert agree.mean() > 0.95


def test_a_shift_of_one_step_along_the_disc_moves_the_patch_by_one_column():
    disc = flat_disc()
    rng = np.random.default_rng(0)
    plane = rng.uniform(50, 400, disc.shape)
    axes = disc_axes(disc, PIXEL)
    step = PATCH_CONTEXT * 40.0 / PATCH_W
    a = disc_patch(plane, disc, axes, PIXEL, 100.0)
    b = disc_patch(plane, disc, axes, PIXEL, 100.0, shift_mm=(step, 0.0))
    sign = 1 if axes.along @ np.array([-1.0, 0.0]) > 0 else -1  # along points anterior
    assert sign == 1
    assert np.allclose(b[:, :, :-1], a[:, :, 1:], atol=1e-5)


@settings(max_examples=40, deadline=None)
@given(
    value=st.floats(1e-2, 1e5),
    reference=st.floats(1e-2, 1e5),
    angle=st.floats(-0.5, 0.5),
    scale=st.floats(0.5, 2.0),
)
def test_a_uniform_image_gives_a_uniform_log_ratio(value, reference, angle, scale):
    disc = flat_disc()
    plane = np.full(disc.shape, value)
    patch = disc_patch(plane, disc, disc_axes(disc, PIXEL), PIXEL, reference,
                       angle_rad=angle, scale=scale)  # fmt: skip
    assert np.allclose(patch[0], np.log(value / reference), atol=1e-5)
    assert 0.0 <= patch[1].min() and patch[1].max() <= 1.0


def _phantom_disc(nucleus: float) -> np.ndarray:
    """A (AP, SI) plane: vertebral bodies (200) and one disc with a nucleus of ``nucleus``
    and a dark annulus (60)."""
    plane = np.full((120, 80), 200.0)
    disc = flat_disc()
    plane[disc] = 60.0
    core = flat_disc(length=24, height=6)
    plane[core] = nucleus
    return plane


def test_the_network_reads_a_bright_nucleus_as_healthier_than_a_black_disc():
    disc = flat_disc()
    axes = disc_axes(disc, PIXEL)
    bright = disc_patch(_phantom_disc(600.0), disc, axes, PIXEL, 200.0)
    black = disc_patch(_phantom_disc(40.0), disc, axes, PIXEL, 200.0)
    score, exceed = appearance_scores(np.stack([bright, black]))
    assert exceed.shape == (2, 4) and np.all((exceed >= 0) & (exceed <= 1))
    assert score == pytest.approx(1.0 + exceed.sum(axis=1))
    assert 1.0 <= score[0] < score[1] <= 5.0
    assert score[1] - score[0] > 1.0
    empty, none = appearance_scores(np.zeros((0, 2, PATCH_H, PATCH_W)))
    assert empty.shape == (0,) and none.shape == (0, 4)


def test_disc_features_carry_the_appearance_score_or_leave_it_out():
    labels = np.zeros((120, 80, 3), np.int16)
    image = np.repeat(_phantom_disc(600.0)[:, :, None], 3, axis=2)
    labels[flat_disc(), :] = LEVEL_INDEX["L4/L5"]
    table = disc_features(labels, image, np.array([1.0, 1.0, 4.0])).set_index("level")
    patch = disc_patch(image[:, :, 1], labels[:, :, 1] > 0, disc_axes(labels[:, :, 1] > 0, PIXEL),
                       PIXEL, table.loc["L4/L5", "vertebra_signal_au"])  # fmt: skip
    expected, _ = appearance_scores(patch[None])
    assert table.loc["L4/L5", "appearance_score"] == pytest.approx(expected[0], abs=1e-4)
    assert table["appearance_score"].drop("L4/L5").isna().all()
    off = disc_features(labels, image, np.array([1.0, 1.0, 4.0]), appearance=False)
    assert off["appearance_score"].isna().all()
