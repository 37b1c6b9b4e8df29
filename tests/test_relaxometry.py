"""Numerical tests of t2quant.relaxometry: known parameters are recovered, failures are NaN
with a reason, and bad echo times are refused."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from t2quant.relaxometry import Failure, estimate_noise_sigma, fit_t2, signal_mask
from t2quant.relaxometry.epg import epg_mese_signal
from t2quant.relaxometry.epgfit import EPGModel

TE16 = 10.0 * np.arange(1, 17)


def rician(clean: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    noise = rng.normal(0, sigma, (2, *clean.shape))
    return np.hypot(clean + noise[0], noise[1])


# --- exact recovery on noiseless data ------------------------------------------------


@pytest.mark.parametrize("method", ["loglinear", "monoexp"])
def test_noiseless_monoexponential_is_recovered_exactly(method):
    t2 = np.array([8.0, 35.0, 80.0, 150.0, 400.0])
    s0 = np.array([500.0, 1000.0, 1.0, 3e4, 700.0])
    y = s0[:, None] * np.exp(-TE16 / t2[:, None])
    fit = fit_t2(y, TE16, method=method, t2_max_ms=1000)
    np.testing.assert_allclose(fit.t2_ms, t2, rtol=1e-5)
    np.testing.assert_allclose(fit.s0, s0, rtol=1e-5)
    np.testing.assert_allclose(fit.r2, 1.0, atol=1e-6)
    assert np.all(fit.rmse < 1e-4 * s0)
    assert not fit.failed.any()
    assert np.all(fit.offset == 0)
    assert np.all(np.isnan(fit.b1))


@pytest.mark.parametrize("method", ["loglinear", "monoexp"])
def test_float32_input_keeps_float32_precision(method):
    t2 = np.array([8.0, 35.0, 80.0, 150.0, 400.0])
    s0 = np.array([500.0, 1000.0, 1.0, 3e4, 700.0])
    y = (s0[:, None] * np.exp(-TE16 / t2[:, None])).astype(np.float32)
    fit = fit_t2(y, TE16, method=method, t2_max_ms=1000)
    np.testing.assert_allclose(fit.t2_ms, t2, rtol=2e-4)
    # S0 is an extrapolation to TE = 0: at T2 = 8 ms it is 1.25 T2 before the first echo
    np.testing.assert_allclose(fit.s0, s0, rtol=1e-3)
    np.testing.assert_allclose(fit.r2, 1.0, atol=1e-4)
    assert np.all(fit.rmse < 1e-4 * s0)


def test_noiseless_offset_is_recovered():
    t2 = np.array([20.0, 60.0, 120.0])
    offset = np.array([0.0, 50.0, 200.0])
    y = 1000 * np.exp(-TE16 / t2[:, None]) + offset[:, None]
    fit = fit_t2(y, TE16, method="monoexp_offset")
    np.testing.assert_allclose(fit.t2_ms, t2, rtol=1e-5)
    np.testing.assert_allclose(fit.offset, offset, atol=1e-3)
    np.testing.assert_allclose(fit.s0, 1000, rtol=1e-5)


def test_rician_recovers_t2_from_the_expected_squared_magnitude():
    t2, sigma = np.array([30.0, 90.0]), 20.0
    y = np.sqrt((1000 * np.exp(-TE16 / t2[:, None])) ** 2 + 2 * sigma**2)
    fit = fit_t2(y, TE16, method="rician", noise_sigma=sigma)
    np.testing.assert_allclose(fit.t2_ms, t2, rtol=1e-5)
    np.testing.assert_allclose(fit.s0, 1000, rtol=1e-5)
    # A Gaussian fit of the same data is pulled up by the floor.
    assert np.all(fit_t2(y, TE16, method="monoexp").t2_ms > 1.003 * t2)


def test_noiseless_epg_recovers_t2_b1_and_amplitude():
    t2 = np.array([30.0, 70.0, 120.0, 250.0, 90.0])
    b1 = np.array([130.0, 150.0, 165.0, 175.0, 180.0]) / 180
    y = 800 * epg_mese_signal(t2, 1000.0, 10.0, 16, 180 * b1)
    fit = fit_t2(y, TE16, method="epg")
    np.testing.assert_allclose(fit.t2_ms, t2, rtol=2e-3)
    np.testing.assert_allclose(fit.b1[:4], b1[:4], atol=2e-3)
    assert fit.b1[4] > 0.97  # 180 deg: the train is flat in B1 there
    np.testing.assert_allclose(fit.s0, 800, rtol=5e-3)
    assert not fit.failed.any()


def test_epg_with_fixed_b1_map_and_mirror_fold():
    t2 = np.array([40.0, 100.0])
    b1 = np.array([0.8, 0.9])
    y = epg_mese_signal(t2, 1000.0, 10.0, 16, 180 * b1) * 1000
    fixed = fit_t2(y, TE16, method="epg", b1=b1)
    np.testing.assert_allclose(fixed.t2_ms, t2, rtol=1e-3)
    np.testing.assert_array_equal(fixed.b1, b1.astype(np.float32))
    mirrored = fit_t2(y, TE16, method="epg", b1=2 - b1)  # 1.2 = 216 deg == 144 deg
    np.testing.assert_allclose(mirrored.t2_ms, t2, rtol=1e-3)


def test_epg_model_is_even_about_180_degrees():
    model = EPGModel(10.0, 12, np.ones(12, bool), 1000.0, np.array([10.0, 100.0]), np.ones(2))
    t2 = np.array([50.0, 50.0])
    np.testing.assert_allclose(
        model.signal(t2, np.array([0.8, 0.9])), model.signal(t2, np.array([1.2, 1.1])), rtol=1e-12
    )


# --- accuracy on noisy data (issue targets) --------------------------------------------


@pytest.fixture(scope="module")
def stimulated_set():
    rng = np.random.default_rng(11)
    n = 4000
    t2 = rng.uniform(30, 250, n)
    b1 = rng.uniform(130, 180, n) / 180
    y = rician(1000 * epg_mese_signal(t2, 1000.0, 10.0, 16, 180 * b1), 10.0, rng)
    return y.astype(np.float32), t2, b1


def test_epg_accuracy_on_stimulated_echo_data(stimulated_set):
    y, t2, b1 = stimulated_set
    fit = fit_t2(y, TE16, method="epg")
    rel = fit.t2_ms / t2 - 1
    assert np.mean(fit.failed) < 0.005
    assert np.nanmedian(np.abs(rel)) <= 0.02
    assert abs(np.nanmedian(rel)) <= 0.01
    assert np.nanmedian(np.abs(fit.b1 - b1)) <= 0.02


def test_monoexp_is_biased_on_stimulated_echoes_and_epg_is_not(stimulated_set):
    y, t2, _ = stimulated_set
    mono = np.nanmedian(fit_t2(y, TE16, method="monoexp").t2_ms / t2 - 1)
    assert mono > 0.02  # overestimates T2
    assert abs(np.nanmedian(fit_t2(y, TE16, method="epg").t2_ms / t2 - 1)) < mono / 5


def test_monoexp_accuracy_at_180_degrees():
    rng = np.random.default_rng(12)
    t2 = rng.uniform(30, 250, 4000)
    y = rician(1000 * np.exp(-TE16 / t2[:, None]), 10.0, rng)
    rel = fit_t2(y, TE16, method="monoexp").t2_ms / t2 - 1
    assert abs(np.median(rel)) <= 0.01
    assert np.median(np.abs(rel)) <= 0.012  # the noise limit of 16 echoes at SNR 100


def test_rician_halves_the_noise_floor_bias_at_snr_20():
    rng = np.random.default_rng(13)
    t2 = rng.uniform(35, 45, 4000)  # the last echo (160 ms) is ~4 x T2
    y = rician(1000 * np.exp(-TE16 / t2[:, None]), 50.0, rng)
    bias = {
        m: np.nanmedian(fit_t2(y, TE16, method=m, noise_sigma=50.0).t2_ms / t2 - 1)
        for m in ("monoexp", "rician")
    }
    assert bias["monoexp"] > 0.03
    assert abs(bias["rician"]) <= 0.5 * bias["monoexp"]


def test_standard_error_matches_the_spread_over_noise_realisations():
    rng = np.random.default_rng(14)
    t2 = np.full(3000, 80.0)
    y = 1000 * np.exp(-TE16 / t2[:, None]) + rng.normal(0, 10.0, (3000, 16))
    for method in ("monoexp", "monoexp_offset", "loglinear"):
        fit = fit_t2(y, TE16, method=method)
        ratio = np.median(fit.t2_se_ms) / np.std(fit.t2_ms)
        assert 0.85 < ratio < 1.15, method


def test_skip_first_echo_ignores_a_corrupted_first_echo():
    y = 1000 * np.exp(-TE16 / 60.0)[None, :].repeat(3, axis=0)
    y[:, 0] *= 0.6
    assert not np.allclose(fit_t2(y, TE16).t2_ms, 60.0, rtol=1e-3)
    np.testing.assert_allclose(fit_t2(y, TE16, skip_first_echo=True).t2_ms, 60.0, rtol=1e-5)
    np.testing.assert_allclose(
        fit_t2(y, TE16, method="epg", skip_first_echo=True).t2_ms, 60.0, rtol=2e-3
    )


def test_loglinear_drops_samples_under_the_noise_floor():
    y = 1000 * np.exp(-TE16 / 20.0)[None, :]
    y_floor = np.maximum(y, 30.0)  # late echoes stuck at a floor of 30
    plain = fit_t2(y_floor, TE16, method="loglinear").t2_ms[0]
    floored = fit_t2(y_floor, TE16, method="loglinear", noise_sigma=20.0).t2_ms[0]
    assert plain > 25
    assert floored == pytest.approx(20.0, rel=1e-4)


# --- failures are NaN with a reason ------------------------------------------------------


@pytest.mark.parametrize("method", ["loglinear", "monoexp", "monoexp_offset", "rician", "epg"])
def test_degenerate_voxels_fail_with_a_reason(method):
    good = 1000 * np.exp(-TE16 / 70.0)
    rows = {
        Failure.NOT_DECAYING: [np.full(16, 500.0), 100 + TE16],  # constant, rising
        Failure.NO_SIGNAL: [np.zeros(16)],
        Failure.NONFINITE_INPUT: [np.where(np.arange(16) == 3, np.nan, good)],
        Failure.NEGATIVE_INPUT: [np.where(np.arange(16) == 5, -good, good)],
        Failure.T2_TOO_LONG: [1000 * np.exp(-TE16 / 3000.0)],  # CSF
    }
    y = np.array([good] + [r for rs in rows.values() for r in rs])
    expected = [Failure.OK] + [code for code, rs in rows.items() for _ in rs]
    fit = fit_t2(y, TE16, method=method, noise_sigma=5.0)
    np.testing.assert_array_equal(fit.failure, np.array(expected, dtype=np.uint8))
    assert np.isfinite(fit.t2_ms[0]) and not fit.failed[0]
    assert np.all(np.isnan(fit.t2_ms[1:])) and np.all(fit.failed[1:])
    for name in ("s0", "b1", "r2", "rmse", "t2_se_ms", "offset"):
        assert np.all(np.isnan(fit.maps()[name][1:])), name


def test_voxels_outside_the_mask_are_not_fitted_and_not_failed():
    y = 1000 * np.exp(-TE16 / np.array([[50.0], [60.0], [70.0]]))
    fit = fit_t2(y, TE16, mask=np.array([True, False, True]))
    np.testing.assert_array_equal(fit.failure, [Failure.OK, Failure.NOT_FITTED, Failure.OK])
    np.testing.assert_array_equal(fit.failed, [False, False, False])
    assert np.isnan(fit.t2_ms[1]) and fit.t2_ms[2] == pytest.approx(70.0)
    assert fit.failure_counts() == {"ok": 2, "not_fitted": 1}


@settings(max_examples=60, deadline=None)
@given(
    y=arrays(
        np.float64,
        (4, 6),
        elements=st.one_of(
            st.floats(allow_nan=True, allow_infinity=True, width=32),
            st.floats(0, 1e4, width=32),
        ),
    ),
    method=st.sampled_from(["loglinear", "monoexp", "monoexp_offset", "rician", "epg"]),
)
def test_no_input_crashes_and_t2_is_finite_exactly_when_fitted(y, method):
    te = 12.0 * np.arange(1, 7)
    with np.errstate(all="ignore"):
        fit = fit_t2(y, te, method=method, noise_sigma=1.0)
    ok = fit.failure == Failure.OK
    assert np.all(np.isfinite(fit.t2_ms[ok]))
    assert np.all(np.isnan(fit.t2_ms[~ok]))
    assert np.all(fit.failed == ~ok)
    assert np.all(fit.t2_ms[ok] > 0)


# --- input checks, dtypes, chunking --------------------------------------------------------


@pytest.mark.parametrize(
    ("te", "message"),
    [
        ([0.01, 0.02, 0.03], "look like seconds"),
        ([10000, 20000, 30000], "look like microseconds"),
        ([10, 20, 20], "repeated"),
        ([10, 30, 20], "decreasing"),
        ([10], "at least two echoes"),
        ([10, 20], "2 echo times given for a signal with 3 echoes"),
        ([10, np.nan, 30], "finite"),
    ],
)
def test_bad_echo_times_are_refused_with_the_fix(te, message):
    y = np.ones((2, 3)) if len(te) != 1 else np.ones((2, 1))
    with pytest.raises(ValueError, match=message):
        fit_t2(y, te)


def test_epg_needs_echoes_at_multiples_of_the_spacing():
    with pytest.raises(ValueError, match="n \\* spacing"):
        fit_t2(np.ones((1, 4)), [10, 20, 35, 40], method="epg")


def test_method_arguments_are_checked():
    y = np.ones((1, 4))
    with pytest.raises(ValueError, match="unknown method"):
        fit_t2(y, [10, 20, 30, 40], method="nnls")
    with pytest.raises(ValueError, match="needs noise_sigma"):
        fit_t2(y, [10, 20, 30, 40], method="rician")
    with pytest.raises(ValueError, match="only used by method 'epg'"):
        fit_t2(y, [10, 20, 30, 40], b1=0.9)
    with pytest.raises(ValueError, match="at least 4 echoes"):
        fit_t2(np.ones((1, 3)), [10, 20, 30], method="monoexp_offset")
    with pytest.raises(ValueError, match="mask shape"):
        fit_t2(y, [10, 20, 30, 40], mask=np.ones(2, bool))


def test_integer_input_cannot_overflow():
    y = 60000 * np.exp(-TE16 / 45.0)[None, :]
    as_uint16 = np.round(y).astype(np.uint16)  # y**2 would wrap in uint16
    np.testing.assert_allclose(fit_t2(as_uint16, TE16, method="loglinear").t2_ms, 45.0, rtol=1e-3)
    np.testing.assert_allclose(
        fit_t2(as_uint16, TE16, method="rician", noise_sigma=1).t2_ms, 45.0, rtol=1e-3
    )


@pytest.mark.parametrize("method", ["loglinear", "monoexp", "epg"])
def test_chunks_and_threads_do_not_change_the_result(method, stimulated_set):
    y = stimulated_set[0][:700].reshape(7, 10, 10, 16)
    one = fit_t2(y, TE16, method=method)
    many = fit_t2(y, TE16, method=method, chunk_size=64, n_threads=2)
    np.testing.assert_array_equal(one.failure, many.failure)
    for name, values in one.maps().items():
        if method == "epg":  # BLAS rounding can move the start; LM stops within tol = 1e-3
            np.testing.assert_allclose(values, many.maps()[name], rtol=3e-3, err_msg=name)
        else:  # BLAS sums round differently with the block length (float32: ~1e-6)
            np.testing.assert_allclose(values, many.maps()[name], rtol=2e-5, err_msg=name)
    assert one.t2_ms.shape == (7, 10, 10)


def test_noise_sigma_from_background_and_signal_mask():
    rng = np.random.default_rng(15)
    img = np.zeros((40, 40, 3, 6))
    img[10:30, 10:30] = 1000 * np.exp(-12.0 * np.arange(1, 7) / 60.0)
    y = rician(img, 25.0, rng)
    mask = signal_mask(y[..., 0])
    assert mask[10:30, 10:30].all()
    assert mask.sum() - 20 * 20 * 3 <= 0.005 * mask.size  # a rare noise spike passes
    assert estimate_noise_sigma(y, ~mask) == pytest.approx(25.0, rel=0.05)
    fit = fit_t2(y, 12.0 * np.arange(1, 7), mask=mask, noise_sigma="background", method="rician")
    assert np.nanmedian(fit.t2_ms) == pytest.approx(60.0, rel=0.02)


def test_offset_is_bounded_at_zero_and_long_t2_still_fits():
    rng = np.random.default_rng(16)
    te = 10.0 * np.arange(1, 9)  # a short train: offset and slow decay nearly collinear
    t2 = rng.uniform(30, 250, 3000)
    y = rician(1000 * np.exp(-te / t2[:, None]), 10.0, rng)
    fit = fit_t2(y, te, method="monoexp_offset")
    assert np.all(fit.offset[~fit.failed] >= 0)
    assert fit.failed.mean() < 0.01
    assert np.median(np.abs(fit.t2_ms / t2 - 1)) < 0.05
    # On data without an offset the bound is active for about half the voxels, which then
    # carry the mono-exponential solution exactly.
    mono = fit_t2(y, te, method="monoexp")
    at_bound = fit.offset == 0
    assert 0.2 < at_bound.mean() < 0.8
    np.testing.assert_array_equal(fit.t2_ms[at_bound], mono.t2_ms[at_bound])


@pytest.mark.parametrize("method", ["loglinear", "monoexp", "rician", "epg"])
def test_fortran_ordered_images_give_the_same_maps(method, stimulated_set):
    """nibabel loads NIfTI in Fortran order; the voxel order must not leak into the maps."""
    y = np.ascontiguousarray(stimulated_set[0][:600].reshape(6, 10, 10, 16))
    y_f = np.asfortranarray(y)
    mask = np.zeros((6, 10, 10), bool)
    mask[1:5, 2:9, 3:] = True
    sigma = np.linspace(5, 15, 600).reshape(6, 10, 10)
    b1 = np.linspace(0.7, 1.0, 600).reshape(6, 10, 10) if method == "epg" else None
    fits = [
        fit_t2(arr, TE16, method=method, mask=mask, noise_sigma=sigma, b1=b1, chunk_size=50)
        for arr in (y, y_f)
    ]
    for name, values in fits[0].maps().items():
        np.testing.assert_allclose(values, fits[1].maps()[name], rtol=1e-4, err_msg=name)
    assert np.isnan(fits[1].t2_ms[~mask]).all()
    assert np.isfinite(fits[1].t2_ms[mask]).mean() > 0.95
