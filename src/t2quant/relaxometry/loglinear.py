"""Weighted log-linear T2: one closed-form weighted least-squares line per voxel.

``log y = log s0 - r t`` is fitted with weights ``w = y**2``. The log amplifies noise: for a
magnitude sample with noise ``sigma``, ``var(log y) ~ sigma**2 / y**2``, so ``y**2`` are the
inverse-variance weights up to the common factor ``sigma**2``. Samples at or below the noise
floor carry no information about the decay (they are biased up by the Rician floor) and are
dropped (weight 0).

The normal equations are formed for all voxels at once as two small matrix products over the
echo axis, with time centred and scaled to ``[-1, 1]`` so that float32 sums stay accurate.

Array shapes: ``y`` is ``(N, n)`` voxels by echoes; ``t`` is ``(n,)`` in ms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from t2quant.relaxometry._fast import rowdot, rowsum

__all__ = ["LoglinearResult", "fit_loglinear"]


@dataclass(frozen=True)
class LoglinearResult:
    """Per-voxel solution, ``(N,)`` arrays except ``used`` ``(N, n)``."""

    rate: NDArray  # 1/ms
    log_s0: NDArray
    rate_se: NDArray  # 1/ms
    n_used: NDArray
    used: NDArray[np.bool_]


def fit_loglinear(y: NDArray, t: NDArray, *, floor: NDArray | float = 0.0) -> LoglinearResult:
    """Fit ``log y = log s0 - r t`` by weighted least squares to every row of ``y``.

    Parameters
    ----------
    y : (N, n) float32 or float64
        Magnitude signals.
    t : (n,) float64
        Echo times in ms.
    floor : float or (N,) array
        Samples ``<= floor`` are dropped. Use a few noise standard deviations, or 0 to drop
        only non-positive samples.

    Returns
    -------
    LoglinearResult
        ``rate`` in 1/ms and its standard error ``rate_se`` from the weighted residuals
        (NaN with fewer than three samples used).
    """
    dtype = y.dtype
    floor = np.asarray(floor, dtype=dtype)
    used = y > (floor[:, None] if floor.ndim else floor)
    if used.all():
        w, log_y = y * y, np.log(y)
    else:
        w = np.where(used, y * y, 0).astype(dtype, copy=False)
        log_y = np.log(np.where(used, y, 1).astype(dtype, copy=False))
    centre = 0.5 * (t[0] + t[-1])
    scale = 0.5 * (t[-1] - t[0])
    tc = ((t - centre) / scale).astype(dtype)
    basis = np.stack([np.ones_like(tc), tc, tc * tc], axis=1)
    s0, s1, s2 = (w @ basis).T
    wl = w * log_y
    q0, q1 = (wl @ basis[:, :2]).T
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        det = s0 * s2 - s1 * s1
        slope = (s0 * q1 - s1 * q0) / det
        intercept = (s2 * q0 - s1 * q1) / det
        resid = log_y - intercept[:, None] - slope[:, None] * tc
        wrss = rowdot(w, resid * resid)
        n_used = rowsum(used)
        dof = n_used - 2
        slope_var = np.where(dof > 0, wrss / np.maximum(dof, 1), np.nan) * s0 / det
        rate = -slope.astype(np.float64) / scale
        log_s0 = intercept.astype(np.float64) + rate * centre
        rate_se = np.sqrt(slope_var.astype(np.float64)) / scale
    return LoglinearResult(rate=rate, log_s0=log_s0, rate_se=rate_se, n_used=n_used, used=used)
