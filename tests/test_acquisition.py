"""Simulated acquisition: signal equation, B1 field, Rician noise, blur."""

from __future__ import annotations

import numpy as np
import pytest

from t2quant.relaxometry.epg import epg_mese_signal
from t2quant.synth import make_spine_phantom, simulate_mese, simulate_t2w
from t2quant.synth.acquisition import add_rician_noise, psf_blur, smooth_b1_field
from t2quant.synth.protocol import TINY


@pytest.fixture(scope="module")
def phantom():
    return make_spine_phantom(seed=7, protocol=TINY)


def test_at_180_degrees_the_series_is_the_mono_exponential_signal_equation(phantom):
    ones = np.ones(phantom.t2_ms.shape, np.float32)
    acq = simulate_mese(phantom, TINY, snr=1e12, b1=ones, psf_fwhm_vox=None, gain=1000.0)
    t1, t2 = phantom.t1_ms.astype(float), phantom.t2_ms.astype(float)
    m0 = phantom.pd * (1 - np.exp(-TINY.tr_ms / t1))
    expected = 1000.0 * m0[..., None] * np.exp(-TINY.echo_times_ms / t2[..., None])
    np.testing.assert_allclose(acq.echoes, expected, rtol=2e-5, atol=1e-6)
    np.testing.assert_array_equal(acq.te_ms, [12, 24, 36, 48, 60, 72])


def test_b1_below_one_gives_the_epg_signal_with_scaled_angles(phantom):
    b1 = np.full(phantom.t2_ms.shape, 0.8, np.float32)
    acq = simulate_mese(phantom, TINY, snr=1e12, b1=b1, psf_fwhm_vox=None)
    i = np.argwhere(phantom.pd > 0)[100]
    t1, t2, pd = (float(a[tuple(i)]) for a in (phantom.t1_ms, phantom.t2_ms, phantom.pd))
    expected = (
        1000
        * pd
        * (1 - np.exp(-TINY.tr_ms / t1))
        * epg_mese_signal(t2, t1, TINY.esp_ms, TINY.n_echoes, 144.0, 72.0)
    )
    np.testing.assert_allclose(acq.echoes[tuple(i)], expected, rtol=2e-5)


def test_b1_field_spans_the_requested_range_smoothly(phantom):
    b1 = smooth_b1_field(phantom.t2_ms.shape, phantom.affine, b1_range=(130 / 180, 1.0), seed=3)
    assert b1.min() == pytest.approx(130 / 180, abs=1e-6)
    assert b1.max() == pytest.approx(1.0, abs=1e-6)
    assert np.abs(np.diff(b1, axis=0)).max() < 0.02  # smooth: < 2% per 2 mm voxel


def test_default_acquisition_refocuses_between_130_and_180_degrees(phantom):
    acq = simulate_mese(phantom, TINY, seed=1)
    angles = 180 * acq.b1
    assert angles.min() == pytest.approx(130, abs=0.01)
    assert angles.max() == pytest.approx(180, abs=0.01)


def test_rician_noise_in_background_has_the_rayleigh_mean():
    rng = np.random.default_rng(0)
    zeros = np.zeros(200_000)
    noisy = add_rician_noise(zeros, 12.5, rng)
    assert noisy.mean() == pytest.approx(12.5 * np.sqrt(np.pi / 2), rel=0.01)
    strong = add_rician_noise(np.full(200_000, 1000.0), 12.5, rng)
    assert strong.std() == pytest.approx(12.5, rel=0.02)


def test_noise_sigma_is_gain_over_snr(phantom):
    acq = simulate_mese(phantom, TINY, snr=50.0, gain=1000.0, seed=2, psf_fwhm_vox=None)
    assert acq.noise_sigma == 20.0
    air = acq.echoes[..., 0][phantom.pd == 0]
    assert air.mean() == pytest.approx(20.0 * np.sqrt(np.pi / 2), rel=0.05)


def test_psf_blur_conserves_signal_and_mixes_neighbours():
    vol = np.zeros((9, 9, 9, 2))
    vol[4, 4, 4, 0] = 1.0
    out = psf_blur(vol, (1.0, 1.0, 1.0))
    np.testing.assert_allclose(out.sum(axis=(0, 1, 2)), [1.0, 0.0], atol=1e-12)
    assert 0 < out[3, 4, 4, 0] < out[4, 4, 4, 0] < 1


def test_t2w_image_follows_its_signal_equation(phantom):
    img = simulate_t2w(phantom, TINY, snr=1e12, psf_fwhm_vox=None)
    t1 = np.maximum(phantom.t1_ms.astype(float), 1e-3)
    expected = 1000 * phantom.pd * (1 - np.exp(-4000 / t1)) * np.exp(-100 / phantom.t2_ms)
    np.testing.assert_allclose(img, expected, rtol=2e-5, atol=1e-6)


def test_bad_acquisition_arguments(phantom):
    with pytest.raises(ValueError, match="snr must be positive"):
        simulate_mese(phantom, TINY, snr=0)
    with pytest.raises(ValueError, match="b1 map shape"):
        simulate_mese(phantom, TINY, b1=np.ones((2, 2, 2), np.float32))
    with pytest.raises(ValueError, match="b1_range"):
        smooth_b1_field((2, 2, 2), np.eye(4), b1_range=(1.0, 0.5), seed=0)
