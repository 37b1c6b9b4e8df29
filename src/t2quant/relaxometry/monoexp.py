"""Vectorised mono-exponential fits by variable projection.

The model ``y(t) = a * exp(-r t) [+ c]`` is linear in the amplitude ``a`` (and offset ``c``)
and nonlinear only in the rate ``r = 1/T2``. For each rate the linear parameters have a
closed form, so the least-squares problem reduces to maximising the projected signal
energy over one scalar per voxel (variable projection, Golub & Pereyra 1973). All voxels are
solved at once:

1. a dictionary search: correlate every voxel with unit-norm decay curves on a log-spaced T2
   grid (one matrix product) and keep the best grid point;
2. a parabolic step between the best grid point and its neighbours;
3. Newton iterations on ``log r`` using closed-form first and second derivatives of the
   projected energy (sums over echoes, i.e. small matrix products).

Array shapes: ``y`` is ``(N, n)`` voxels by echoes; ``t`` is ``(n,)`` in ms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from t2quant.relaxometry._fast import exp_f32, parabola_shift, rowdot, rowsum

__all__ = ["MonoexpResult", "fit_monoexp_vp", "t2_grid_ms"]

F64 = NDArray[np.float64]


@dataclass(frozen=True)
class MonoexpResult:
    """Per-voxel solution, all ``(N,)`` except ``pred`` ``(N, n)``."""

    rate: F64  # 1/ms
    amplitude: F64
    offset: F64
    pred: F64
    rate_var_unscaled: F64  # [(J^T J)^-1]_rr, multiply by s^2 for the variance of the rate
    converged: NDArray[np.bool_]


def t2_grid_ms(t2_min_ms: float, t2_max_ms: float, n: int = 96) -> F64:
    """Log-spaced T2 grid spanning ``[t2_min_ms / 2, 2 * t2_max_ms]``."""
    return np.geomspace(0.5 * t2_min_ms, 2.0 * t2_max_ms, n)


def _dictionary_start(y: F64, t: F64, grid_ms: F64, offset: bool) -> F64:
    """Best log-rate per voxel on the grid, refined by a parabola through its neighbours."""
    log_rate = -np.log(grid_ms)
    atoms = np.exp(-np.exp(log_rate)[:, None] * t[None, :])
    if offset:
        atoms -= atoms.mean(axis=1, keepdims=True)
    atoms /= np.linalg.norm(atoms, axis=1, keepdims=True)
    corr = y @ atoms.T  # (N, G): projected amplitude on each unit curve
    best = np.clip(np.argmax(corr, axis=1), 1, grid_ms.size - 2)
    rows = np.arange(y.shape[0])
    shift = parabola_shift(corr[rows, best - 1], corr[rows, best], corr[rows, best + 1])
    return log_rate[best] + shift * (log_rate[1] - log_rate[0])


def _energy_derivatives(
    y: F64, t: F64, rate: F64, offset: bool
) -> tuple[F64, F64, F64, F64, F64, F64, F64]:
    """A = <y, e>, B = <e, e> (centred when ``offset``) and their rate derivatives."""
    e = exp_f32(-rate[:, None] * t)
    ye = y * e
    tt = np.stack([np.ones_like(t), t, t * t], axis=1)  # (n, 3)
    a0, a1, a2 = (ye @ tt).T
    e2 = e * e
    s0, s1, s2 = (e2 @ tt).T
    big_a, big_a1, big_a2 = a0, -a1, a2
    big_b, big_b1, big_b2 = s0, -2.0 * s1, 4.0 * s2
    if offset:
        n = t.size
        m0, m1, m2 = (e @ tt).T  # sum e, sum t e, sum t^2 e
        big_b = big_b - m0 * m0 / n
        big_b1 = big_b1 + 2.0 * m0 * m1 / n
        big_b2 = big_b2 - 2.0 * (m1 * m1 + m0 * m2) / n
    return e, big_a, big_a1, big_a2, big_b, big_b1, big_b2


def _newton_step(rate: F64, deriv: tuple) -> F64:
    """Newton step in ``log r`` on ``h = 2 log A - log B``, damped and clipped."""
    _, a, a1, a2, b, b1, b2 = deriv
    with np.errstate(divide="ignore", invalid="ignore"):
        h_r = 2.0 * a1 / a - b1 / b
        h_rr = 2.0 * (a2 / a - (a1 / a) ** 2) - (b2 / b - (b1 / b) ** 2)
        h_u = rate * h_r
        h_uu = rate * rate * h_rr + h_u
        step = np.where(h_uu < 0, -h_u / h_uu, 0.25 * np.sign(h_u))
    return np.clip(np.nan_to_num(step, nan=0.0), -0.5, 0.5)


def fit_monoexp_vp(
    y: F64,
    t: F64,
    *,
    offset: bool,
    grid_ms: F64,
    max_iter: int = 8,
    tol: float = 1e-5,
) -> MonoexpResult:
    """Least-squares fit of ``a exp(-r t) (+ c)`` to every row of ``y``.

    Parameters
    ----------
    y : (N, n) float64
        Signals, voxels by echoes.
    t : (n,) float64
        Echo times in ms.
    offset : bool
        Fit a constant offset ``c`` as well.
    grid_ms : (G,) float64
        Log-spaced T2 grid for the starting values, in ms.
    max_iter, tol : int, float
        Newton iterations at most, and the convergence tolerance on the step in ``log r``
        (1e-5: a relative change of T2 of 1e-5; the decay curves are evaluated with a
        float32 ``exp``, whose rounding makes smaller steps meaningless).

    Returns
    -------
    MonoexpResult
        Rates in 1/ms; ``converged`` is False where the last Newton step exceeded ``tol``.
    """
    yw = y - (rowsum(y) / y.shape[1])[:, None] if offset else y
    log_rate = _dictionary_start(yw, t, grid_ms, offset)
    converged = np.zeros(y.shape[0], dtype=bool)
    for _ in range(max_iter):
        rate = np.exp(log_rate)
        step = _newton_step(rate, _energy_derivatives(yw, t, rate, offset))
        log_rate += step
        converged = np.abs(step) < tol
        if converged.all():
            break
    rate = np.exp(log_rate)
    e, a_num, _, _, b, _, _ = _energy_derivatives(yw, t, rate, offset)
    with np.errstate(divide="ignore", invalid="ignore"):
        amplitude = a_num / b
    if offset:
        c = (rowsum(y) - amplitude * rowsum(e)) / y.shape[1]
    else:
        c = np.zeros_like(amplitude)
    pred = amplitude[:, None] * e + c[:, None]
    return MonoexpResult(
        rate=rate,
        amplitude=amplitude,
        offset=c,
        pred=pred,
        rate_var_unscaled=_rate_variance(e, t, amplitude, offset),
        converged=converged,
    )


def _rate_variance(e: F64, t: F64, amplitude: F64, offset: bool) -> F64:
    """``[(J^T J)^-1]_rr``: one over the squared norm of the rate column of the Jacobian
    after projecting out the linear columns (``e``, and the constant when ``offset``)."""
    v = t * e
    vv, ve, ee = rowdot(v, v), rowdot(v, e), rowdot(e, e)
    if offset:
        n = t.size
        sv, se = rowsum(v), rowsum(e)
        vv = vv - sv * sv / n
        ve = ve - sv * se / n
        ee = ee - se * se / n
    with np.errstate(divide="ignore", invalid="ignore"):
        perp = vv - ve * ve / ee
        return 1.0 / (amplitude * amplitude * perp)


def fit_monoexp_offset_nonneg(y: F64, t: F64, *, grid_ms: F64) -> MonoexpResult:
    """``a exp(-r t) + c`` with ``c >= 0``, for every row of ``y`` (``(N, n)``).

    A magnitude noise floor is positive, and a negative offset only trades against a slow
    decay (the two are nearly collinear when T2 is long against the echo train). With one
    bound on a linear parameter the constrained optimum is either the unconstrained one, when
    it is feasible, or lies on ``c = 0``, i.e. the mono-exponential fit. Rows whose
    unconstrained fit has ``c < 0`` or did not converge get the ``c = 0`` solution.
    """
    res = fit_monoexp_vp(y, t, offset=True, grid_ms=grid_ms)
    edge = ~(res.offset >= 0) | ~res.converged
    if not edge.any():
        return res
    sub = fit_monoexp_vp(y[edge], t, offset=False, grid_ms=grid_ms)
    merged = {}
    for name in ("rate", "amplitude", "offset", "pred", "rate_var_unscaled", "converged"):
        values = getattr(res, name).copy()
        values[edge] = getattr(sub, name)
        merged[name] = values
    return MonoexpResult(**merged)
