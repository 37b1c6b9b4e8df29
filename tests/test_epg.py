"""Value tests for the EPG CPMG multi-echo spin-echo simulator."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from t2quant.relaxometry.epg import epg_mese_signal, epg_mese_signal_b1

# ---------------------------------------------------------------------------------------
# Independent reference: isochromat (Bloch) simulation with ideal crushers.
# ---------------------------------------------------------------------------------------


def _rodrigues(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotation matrices R = I + sin(a) K + (1 - cos(a)) K^2 for unit axis, angles (...)."""
    x, y, z = axis
    k = np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])
    angle = np.asarray(angle, dtype=float)[..., None, None]
    return np.eye(3) + np.sin(angle) * k + (1.0 - np.cos(angle)) * (k @ k)


def _bloch_cpmg(
    t2: float,
    t1: float,
    esp: float,
    n_echoes: int,
    refocus_deg: float,
    excite_deg: float = 90.0,
    n_iso: int | None = None,
) -> np.ndarray:
    """Echo magnitudes from n_iso isochromats, dephased by 2*pi*j/n_iso per half spacing.

    Each isochromat's magnetisation is a trigonometric polynomial of its dephasing angle of
    degree <= 2*n_echoes (one unit per half spacing), so with n_iso > 2*n_echoes the
    discrete mean over equally spaced angles equals the continuous crusher average exactly.
    """
    if n_iso is None:
        n_iso = 4 * n_echoes + 8
    theta = 2.0 * np.pi * np.arange(n_iso) / n_iso
    precess = _rodrigues(np.array([0.0, 0.0, 1.0]), theta)  # (n_iso, 3, 3)
    r_exc = _rodrigues(np.array([1.0, 0.0, 0.0]), np.deg2rad(excite_deg))
    r_ref = _rodrigues(np.array([0.0, 1.0, 0.0]), np.deg2rad(refocus_deg))
    e2 = np.exp(-0.5 * esp / t2)
    e1 = np.exp(-0.5 * esp / t1)

    def half_interval(m: np.ndarray) -> np.ndarray:
        m = np.einsum("nij,nj->ni", precess, m)
        m[:, :2] *= e2
        m[:, 2] = m[:, 2] * e1 + (1.0 - e1)
        return m

    m = np.tile([0.0, 0.0, 1.0], (n_iso, 1))
    m = m @ r_exc.T
    echoes = np.empty(n_echoes)
    for n in range(n_echoes):
        m = half_interval(m)
        m = m @ r_ref.T
        m = half_interval(m)
        echoes[n] = abs(np.mean(m[:, 0] + 1j * m[:, 1]))
    return echoes


def test_bloch_reference_sanity() -> None:
    # The reference itself reproduces the ideal spin echo train.
    te = 10.0 * np.arange(1, 9)
    np.testing.assert_allclose(
        _bloch_cpmg(60.0, 900.0, 10.0, 8, 180.0), np.exp(-te / 60.0), rtol=0, atol=1e-12
    )


@pytest.mark.parametrize("refocus", [120.0, 150.0, 170.0])
@pytest.mark.parametrize("excite", [90.0, 70.0])
def test_epg_matches_bloch(refocus: float, excite: float) -> None:
    n_echoes = 16
    t2s = np.array([30.0, 60.0, 120.0, 250.0])
    epg = epg_mese_signal(t2s, 1000.0, 10.0, n_echoes, refocus, excite)
    bloch = np.stack([_bloch_cpmg(t2, 1000.0, 10.0, n_echoes, refocus, excite) for t2 in t2s])
    assert epg.shape == (4, n_echoes)
    assert np.max(np.abs(epg - bloch)) < 1e-9


def test_epg_matches_bloch_short_t1_low_angle() -> None:
    # Strong stimulated-echo pathways and fast T1 recovery of Z0.
    epg = epg_mese_signal(80.0, 150.0, 7.5, 12, 60.0, 110.0)
    bloch = _bloch_cpmg(80.0, 150.0, 7.5, 12, 60.0, 110.0)
    assert np.max(np.abs(epg - bloch)) < 1e-9


# ---------------------------------------------------------------------------------------
# Closed-form values
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("t2", "t1", "esp"),
    [(20.0, 1000.0, 10.0), (75.0, 300.0, 8.0), (250.0, 2500.0, 12.5), (5.0, 50.0, 1.0)],
)
def test_ideal_refocusing_is_monoexponential(t2: float, t1: float, esp: float) -> None:
    n = 24
    sig = epg_mese_signal(t2, t1, esp, n, 180.0)
    te = esp * np.arange(1, n + 1)
    np.testing.assert_allclose(sig, np.exp(-te / t2), rtol=0, atol=1e-12)


def test_ideal_refocusing_broadcast_arrays() -> None:
    t2 = np.array([[15.0], [40.0], [90.0], [300.0]])  # (4, 1)
    esp = np.array([5.0, 10.0, 13.0])  # (3,)
    t1 = np.array([[[600.0]], [[1400.0]]])  # (2, 1, 1)
    sig = epg_mese_signal(t2, t1, esp, 10, 180.0)
    assert sig.shape == (2, 4, 3, 10)
    te = esp[..., None] * np.arange(1, 11)  # (3, 10)
    expected = np.broadcast_to(np.exp(-te / t2[..., None]), sig.shape)
    np.testing.assert_allclose(sig, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("alpha", [10.0, 45.0, 90.0, 120.0, 150.0, 179.0, 180.0])
def test_first_echo(alpha: float) -> None:
    t2, esp = 70.0, 9.0
    sig = epg_mese_signal(t2, 800.0, esp, 5, alpha)
    expected = np.sin(np.deg2rad(alpha) / 2.0) ** 2 * np.exp(-esp / t2)
    assert sig[0] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("excite", [30.0, 60.0, 110.0, 150.0])
def test_signal_scales_as_sin_excitation(excite: float) -> None:
    # Dephasing order changes by +-1 per half spacing and pulses keep |order|, so at pulse
    # times excitation-derived states have odd order and anything from Z0 (residual
    # cos(excite) or T1 regrowth) has even order; at echo times (half a spacing later) the
    # latter is at odd order, never at F0. The echoes are therefore linear in the
    # transverse magnetisation sin(excite). The Bloch tests above (which include the Z0
    # recovery) confirm this independently of the EPG implementation.
    t2 = np.array([25.0, 100.0, 400.0])
    ref = epg_mese_signal(t2, 500.0, 10.0, 14, 130.0)
    sig = epg_mese_signal(t2, 500.0, 10.0, 14, 130.0, excite)
    np.testing.assert_allclose(sig, np.sin(np.deg2rad(excite)) * ref, rtol=0, atol=1e-12)
    bloch = _bloch_cpmg(100.0, 500.0, 10.0, 14, 130.0, excite)
    assert np.max(np.abs(sig[1] - bloch)) < 1e-9


# ---------------------------------------------------------------------------------------
# Broadcasting and shapes
# ---------------------------------------------------------------------------------------


def test_broadcasting_matches_scalar_calls() -> None:
    t2 = np.array([30.0, 90.0, 200.0])[:, None, None]  # (3, 1, 1)
    t1 = np.array([500.0, 1500.0])[None, :, None]  # (1, 2, 1)
    esp = 9.5
    refocus = np.array([110.0, 145.0, 165.0, 180.0])  # (4,)
    excite = np.array([[[80.0]], [[90.0]], [[100.0]]])  # (3, 1, 1)
    n = 7
    sig = epg_mese_signal(t2, t1, esp, n, refocus, excite)
    assert sig.shape == (3, 2, 4, n)
    assert sig.dtype == np.float64
    for i, j, k in np.ndindex(3, 2, 4):
        scalar = epg_mese_signal(
            float(t2[i, 0, 0]), float(t1[0, j, 0]), esp, n, float(refocus[k]),
            float(excite[i, 0, 0]),
        )  # fmt: skip
        assert scalar.shape == (n,)
        np.testing.assert_allclose(sig[i, j, k], scalar, rtol=0, atol=1e-14)


def test_scalar_and_list_inputs() -> None:
    assert epg_mese_signal(50.0, 1000.0, 10.0, 3, 150.0).shape == (3,)
    assert epg_mese_signal([50.0, 60.0], 1000.0, 10.0, 1, 150.0).shape == (2, 1)
    assert epg_mese_signal(np.empty((0, 2)), 1000.0, 10.0, 4, 150.0).shape == (0, 2, 4)
    assert epg_mese_signal(50.0, 1000.0, 10.0, np.int64(2), 150.0).shape == (2,)


# ---------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------

_GOOD = {
    "t2_ms": 50.0,
    "t1_ms": 1000.0,
    "esp_ms": 10.0,
    "n_echoes": 8,
    "refocus_deg": 150.0,
    "excite_deg": 90.0,
}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("refocus_deg", 0.0),
        ("refocus_deg", 190.0),
        ("refocus_deg", np.array([120.0, -5.0])),
        ("excite_deg", 180.5),
        ("t2_ms", -10.0),
        ("t2_ms", 0.0),
        ("t2_ms", np.nan),
        ("t2_ms", np.array([40.0, np.nan])),
        ("t1_ms", 0.0),
        ("esp_ms", -1.0),
        ("esp_ms", np.inf),
        ("n_echoes", 0),
        ("n_echoes", 2.5),
        ("n_echoes", True),
        ("n_echoes", "8"),
    ],
)
def test_bad_arguments_raise(name: str, value: object) -> None:
    kwargs = {**_GOOD, name: value}
    with pytest.raises(ValueError, match=name):
        epg_mese_signal(**kwargs)


def test_error_message_reports_value() -> None:
    with pytest.raises(ValueError, match=r"refocus_deg must be in \(0, 180\].*190"):
        epg_mese_signal(50.0, 1000.0, 10.0, 4, 190.0)
    with pytest.raises(ValueError, match=r"t2_ms.*nan"):
        epg_mese_signal(np.nan, 1000.0, 10.0, 4, 150.0)


# ---------------------------------------------------------------------------------------
# B1 helper
# ---------------------------------------------------------------------------------------


def test_b1_nominal_equals_ideal() -> None:
    t2 = np.array([30.0, 120.0])
    sig = epg_mese_signal_b1(t2, 1000.0, 10.0, 12, 1.0)
    np.testing.assert_allclose(sig, epg_mese_signal(t2, 1000.0, 10.0, 12, 180.0), atol=1e-15)
    te = 10.0 * np.arange(1, 13)
    np.testing.assert_allclose(sig, np.exp(-te / t2[:, None]), rtol=0, atol=1e-12)


def test_b1_scales_both_angles() -> None:
    t2 = np.array([30.0, 120.0])
    sig = epg_mese_signal_b1(t2, 1000.0, 10.0, 12, 0.8)
    expected = epg_mese_signal(t2, 1000.0, 10.0, 12, 144.0, 72.0)
    np.testing.assert_allclose(sig, expected, rtol=0, atol=1e-12)
    # Array b1 broadcasts like the other parameters.
    b1 = np.array([0.7, 0.9, 1.0])
    assert epg_mese_signal_b1(t2[:, None], 1000.0, 10.0, 12, b1).shape == (2, 3, 12)


def test_b1_above_one_raises() -> None:
    with pytest.raises(ValueError, match="refocus_deg"):
        epg_mese_signal_b1(50.0, 1000.0, 10.0, 8, 1.1)
    with pytest.raises(ValueError, match="excite_deg"):
        epg_mese_signal_b1(50.0, 1000.0, 10.0, 8, 2.1, nominal_refocus_deg=80.0)


# ---------------------------------------------------------------------------------------
# Property test
# ---------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    t2=st.floats(1.0, 2000.0),
    t1=st.floats(1.0, 5000.0),
    esp=st.floats(0.5, 40.0),
    n_echoes=st.integers(1, 32),
    refocus=st.floats(1.0, 180.0),
    excite=st.floats(1.0, 180.0),
)
def test_signal_bounded_and_ideal_decreasing(
    t2: float, t1: float, esp: float, n_echoes: int, refocus: float, excite: float
) -> None:
    sig = epg_mese_signal(t2, t1, esp, n_echoes, refocus, excite)
    assert sig.shape == (n_echoes,)
    assert np.all(sig >= 0.0)
    assert np.all(sig <= 1.0 + 1e-12)
    ideal = epg_mese_signal(t2, t1, esp, n_echoes, 180.0, excite)
    assert np.all(np.diff(ideal) <= 0.0)
