"""Extended-phase-graph (EPG) simulation of a CPMG multi-echo spin-echo train.

The simulator is vectorised over voxels: parameters broadcast together and the only
Python loop runs over the refocusing pulses.

Model
-----
* Equilibrium magnetisation ``M0 = 1`` (``Mz = 1`` before the excitation).
* Excitation of ``excite_deg`` about x at ``t = 0``.
* Refocusing pulses of ``refocus_deg`` about y at ``t = esp/2 + k*esp``, ``k = 0, 1, ...``,
  i.e. 90 degrees out of phase with the excitation (the CPMG condition).
* Between pulses the transverse states decay with ``T2``, the longitudinal states decay with
  ``T1`` and the zero-order longitudinal state recovers towards ``M0``
  (``Z0 -> Z0*E1 + (1 - E1)``). Each half echo spacing adds one unit of dephasing (crusher /
  readout gradient area), the usual EPG assumption.
* Echoes are sampled at ``t = n*esp``, ``n = 1 .. n_echoes``; the signal is ``|F0+|``.

Implementation notes
--------------------
Write the transverse states as ``F_k = -1j * f_k`` and the longitudinal states as
``Z_k = -1j * z_k`` (``z_{-k} = -z_k``), i.e. work in the frame where the transverse
magnetisation created by the excitation lies along the refocusing axis. A refocusing pulse of
angle ``a`` about y then acts on each order ``k > 0`` with *real* coefficients::

    m  = (f_k + f_{-k}) / 2                  (unchanged)
    h  = (f_k - f_{-k}) / 2 -> cos(a)*h + sin(a)*z_k
    z_k                     -> cos(a)*z_k - sin(a)*h
    f_{+k} = m + h,  f_{-k} = m - h

so all states stay real. Moreover, dephasing changes the order by one per half spacing and
the pulses only mix states of equal ``|k|``, so at pulse times the magnetisation that came
from the excitation occupies odd orders only, while magnetisation stored in, or recovered
into, ``Z0`` occupies even orders. Even-order states at pulse times have odd order at every
echo time and therefore never contribute to ``F0`` there. Consequently the echoes are
exactly ``sin(excite) *`` (the echoes of a unit transverse magnetisation along y), they do
not depend on the ``Z0`` recovery, and only the odd-order family is simulated. ``T1`` still
matters through the decay of the stored ``Z_k`` (``k`` odd) states.

Only states that can still return to ``F0`` before the last echo are updated: at pulse
``p`` (1-based) the orders ``|k| = 2j + 1`` with ``j < min(p, n_echoes - p + 1)``.
"""

from __future__ import annotations

import numbers

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["epg_mese_signal", "epg_mese_signal_b1"]


def _as_float_array(value: ArrayLike, name: str) -> NDArray[np.float64]:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be real numbers; got {value!r}") from exc
    return arr


def _first_bad(arr: NDArray[np.float64], bad: NDArray[np.bool_]) -> float:
    return float(arr[bad].flat[0])


def _check_positive(arr: NDArray[np.float64], name: str, *, allow_inf: bool) -> None:
    ok = arr > 0.0
    if not allow_inf:
        ok &= np.isfinite(arr)
    if not np.all(ok):
        bad = _first_bad(arr, ~ok)
        qualifier = "> 0" if allow_inf else "finite and > 0"
        raise ValueError(f"{name} must be {qualifier} (ms); got {bad!r}")


def _check_angle(arr: NDArray[np.float64], name: str) -> None:
    ok = (arr > 0.0) & (arr <= 180.0)
    if not np.all(ok):
        bad = _first_bad(arr, ~ok)
        raise ValueError(f"{name} must be in (0, 180] degrees; got {bad!r}")


def _cos_sin_deg(angle_deg: NDArray[np.float64]) -> tuple[NDArray[np.float64], ...]:
    """cos and sin of angles in (0, 180] degrees, exact at 180 degrees."""
    obtuse = angle_deg > 90.0
    rad = np.deg2rad(np.where(obtuse, 180.0 - angle_deg, angle_deg))
    cos = np.cos(rad)
    return np.where(obtuse, -cos, cos), np.sin(rad)


def _flatten(arr: NDArray[np.float64], shape: tuple[int, ...]) -> NDArray[np.float64]:
    """Return a scalar (0-d) array if ``arr`` has one element, else a flat broadcast copy."""
    if arr.size == 1:
        return arr.reshape(())
    return np.broadcast_to(arr, shape).reshape(-1)


def epg_mese_signal(
    t2_ms: ArrayLike,
    t1_ms: ArrayLike,
    esp_ms: ArrayLike,
    n_echoes: int,
    refocus_deg: ArrayLike,
    excite_deg: ArrayLike = 90.0,
) -> NDArray[np.float64]:
    """Simulate the echo amplitudes of a CPMG multi-echo spin-echo train with EPG.

    The excitation (about x) is applied at ``t = 0`` to equilibrium magnetisation
    ``M0 = 1``; refocusing pulses about y (the CPMG condition) follow at
    ``esp/2 + k*esp``. Between pulses transverse states decay with ``T2``, longitudinal
    states with ``T1`` (the zero-order state recovering towards ``M0``), and every half echo
    spacing adds one unit of dephasing (ideal crushers). The echoes ``|F0+|`` are sampled at
    ``n*esp``, ``n = 1 .. n_echoes``.

    Parameters
    ----------
    t2_ms : float or array_like
        Transverse relaxation time, in ms. Must be > 0 (``inf`` means no T2 decay).
    t1_ms : float or array_like
        Longitudinal relaxation time, in ms. Must be > 0 (``inf`` means no T1 decay).
    esp_ms : float or array_like
        Echo spacing, in ms. Must be finite and > 0.
    n_echoes : int
        Number of echoes, >= 1.
    refocus_deg : float or array_like
        Refocusing flip angle, in degrees, in (0, 180].
    excite_deg : float or array_like, optional
        Excitation flip angle, in degrees, in (0, 180]. Default 90.

    Returns
    -------
    signal : (*S, n_echoes) :obj:`numpy.ndarray` of float64
        Echo magnitudes at ``TE = n*esp_ms``, ``n = 1 .. n_echoes``, where ``S`` is the
        broadcast shape of ``t2_ms``, ``t1_ms``, ``esp_ms``, ``refocus_deg`` and
        ``excite_deg``. Values lie in [0, 1].

    Raises
    ------
    ValueError
        If an argument is out of range or NaN; the message names the argument and the
        offending value.

    Notes
    -----
    Exact properties of this model (used in the tests):

    * ``refocus_deg = 180`` gives ``sin(excite) * exp(-TE / T2)``.
    * The first echo is ``sin(excite) * sin(refocus/2)**2 * exp(-esp / T2)``.
    * The echoes scale exactly as ``sin(excite)``: longitudinal magnetisation left by the
      excitation or regrown by T1 recovery is refocused into even dephasing orders at the
      pulses and is therefore never at order zero at an echo time. The result does not
      depend on the ``Z0`` recovery, so only the excitation-derived states are simulated.

    The states are kept real (see the module docstring) and stored as
    ``(n_states, n_voxels)`` arrays (contiguous over voxels) with ``n_echoes + 1``
    transverse and ``(n_echoes + 1) // 2`` longitudinal rows plus two scratch arrays of
    ``(n_echoes + 1) // 2`` rows. With the output (built echo-major, then transposed) and
    the per-voxel coefficients, peak memory is about ``8 * (4.5 * n_echoes + 13)`` bytes
    per voxel. Work per voxel grows as ``n_echoes**2 / 4``.
    """
    if isinstance(n_echoes, bool) or not isinstance(n_echoes, numbers.Integral):
        raise ValueError(f"n_echoes must be an integer >= 1; got {n_echoes!r}")
    n_echoes = int(n_echoes)
    if n_echoes < 1:
        raise ValueError(f"n_echoes must be an integer >= 1; got {n_echoes!r}")

    t2 = _as_float_array(t2_ms, "t2_ms")
    t1 = _as_float_array(t1_ms, "t1_ms")
    esp = _as_float_array(esp_ms, "esp_ms")
    refocus = _as_float_array(refocus_deg, "refocus_deg")
    excite = _as_float_array(excite_deg, "excite_deg")
    _check_positive(t2, "t2_ms", allow_inf=True)
    _check_positive(t1, "t1_ms", allow_inf=True)
    _check_positive(esp, "esp_ms", allow_inf=False)
    _check_angle(refocus, "refocus_deg")
    _check_angle(excite, "excite_deg")

    shape = np.broadcast_shapes(t2.shape, t1.shape, esp.shape, refocus.shape, excite.shape)
    n_vox = int(np.prod(shape, dtype=np.int64))
    t2, t1, esp, refocus, excite = (_flatten(a, shape) for a in (t2, t1, esp, refocus, excite))

    # Per-voxel coefficients (0-d when the parameters are scalars).
    e2_half = np.exp(-0.5 * esp / t2)
    e2 = e2_half * e2_half
    e1 = np.exp(-esp / t1)
    cos_a, sin_a = _cos_sin_deg(refocus)
    sin_exc = _cos_sin_deg(excite)[1]
    echo_gain = e2_half * sin_exc  # F0 after the pulse -> echo, times the excited fraction

    n_rows = (n_echoes + 1) // 2  # largest number of active orders at any pulse
    f = np.zeros((n_echoes + 1, n_vox))  # f_k, k odd; position fixed, the centre moves
    z = np.zeros((n_rows, n_vox))  # z_k, k = 2j + 1 > 0, row j
    out = np.empty((n_echoes, n_vox))

    # Pulse 1 acts on the single state f_{+1} = e2_half (unit transverse magnetisation).
    # Position of f_{2j+1} at pulse p is centre + j, of f_{-(2j+1)} is centre - 1 - j, with
    # centre = n_echoes + 1 - p: dephasing by two orders per echo spacing is a move of the
    # centre, so states never have to be copied.
    centre = n_echoes
    half_sq = np.sin(0.5 * np.deg2rad(refocus)) ** 2
    f[centre] = e2_half * (1.0 - half_sq)
    f[centre - 1] = e2_half * half_sq
    z[0] = -0.5 * sin_a * e2_half
    out[0] = f[centre - 1] * echo_gain

    if n_echoes > 1:
        # Relaxation over one echo spacing is folded into the pulse coefficients.
        c_mean = 0.5 * e2
        c_hh = 0.5 * cos_a * e2
        c_hz = sin_a * e1
        c_zz = cos_a * e1
        c_zh = 0.5 * sin_a * e2
        diff = np.empty((n_rows, n_vox))
        tmp = np.empty((n_rows, n_vox))
        for p in range(2, n_echoes + 1):
            centre = n_echoes + 1 - p
            w = min(p, n_echoes - p + 1)
            pos = f[centre : centre + w]  # f_{+(2j+1)}, j = 0..w-1
            neg = f[centre - w : centre][::-1]  # f_{-(2j+1)}, j = 0..w-1
            zj = z[:w]
            d = diff[:w]
            t = tmp[:w]
            np.subtract(pos, neg, out=d)  # 2h
            np.add(pos, neg, out=pos)
            np.multiply(pos, c_mean, out=pos)  # m (relaxed)
            np.multiply(zj, c_hz, out=neg)
            np.multiply(d, c_hh, out=t)
            np.add(t, neg, out=t)  # h' (relaxed)
            np.subtract(pos, t, out=neg)  # f_{-k} = m - h'
            np.add(pos, t, out=pos)  # f_{+k} = m + h'
            np.multiply(zj, c_zz, out=zj)
            np.multiply(d, c_zh, out=d)
            np.subtract(zj, d, out=zj)  # z' (relaxed)
            np.multiply(f[centre - 1], echo_gain, out=out[p - 1])

    np.abs(out, out=out)
    return np.ascontiguousarray(out.T).reshape((*shape, n_echoes))


def epg_mese_signal_b1(
    t2_ms: ArrayLike,
    t1_ms: ArrayLike,
    esp_ms: ArrayLike,
    n_echoes: int,
    b1: ArrayLike,
    nominal_refocus_deg: ArrayLike = 180.0,
    nominal_excite_deg: ArrayLike = 90.0,
) -> NDArray[np.float64]:
    """EPG CPMG echoes with flip angles scaled by a relative transmit field ``b1``.

    Thin wrapper around :func:`epg_mese_signal` with
    ``refocus_deg = b1 * nominal_refocus_deg`` and ``excite_deg = b1 * nominal_excite_deg``.

    Parameters
    ----------
    t2_ms, t1_ms, esp_ms : float or array_like
        Relaxation times and echo spacing, in ms (see :func:`epg_mese_signal`).
    n_echoes : int
        Number of echoes, >= 1.
    b1 : float or array_like
        Transmit-field scale, as a fraction of nominal (1 = nominal flip angles).
    nominal_refocus_deg : float or array_like, optional
        Nominal refocusing angle, in degrees. Default 180.
    nominal_excite_deg : float or array_like, optional
        Nominal excitation angle, in degrees. Default 90.

    Returns
    -------
    signal : (*S, n_echoes) :obj:`numpy.ndarray` of float64
        Echo magnitudes at ``TE = n*esp_ms``; ``S`` is the broadcast shape of all array
        arguments.

    Raises
    ------
    ValueError
        As :func:`epg_mese_signal`. In particular, scaled angles outside (0, 180] degrees
        (e.g. ``b1 > 1`` with a nominal 180-degree refocusing pulse, or ``b1 <= 0``) raise
        the ``refocus_deg`` / ``excite_deg`` error, since they are not folded back.
    """
    scale = _as_float_array(b1, "b1")
    refocus = scale * _as_float_array(nominal_refocus_deg, "nominal_refocus_deg")
    excite = scale * _as_float_array(nominal_excite_deg, "nominal_excite_deg")
    return epg_mese_signal(t2_ms, t1_ms, esp_ms, n_echoes, refocus, excite)
