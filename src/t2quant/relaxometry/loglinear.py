"""Weighted log-linear T2: one closed-form weighted least-squares line per voxel.

``log y = log s0 - r t`` is fitted with weights ``w = y**2``. The log amplifies noise: for a
magnitude sample with noise ``sigma``, ``var(log y) ~ sigma**2 / y**2``, so ``y**2`` are the
inverse-variance weights up to the common factor ``sigma**2``. Samples at or below the noise
floor carry no information about the decay (they are biased up by the Rician floor) and are
dropped (weight 0).

The normal equations are formed for all voxels at once as matrix-vector products over the
echo axis, on an echo-major copy of the block (``(n, N)``: a product of a short vector with
long rows is several times faster than the reverse, and BLAS matrix-matrix products
serialise across threads), with time centred and scaled to ``[-1, 1]`` so that float32
sums stay accurate.
The same sweep returns the linear-domain residual sum of squares of the fitted curve, so a
caller needs no second pass over the samples for R-squared and RMSE. Results are in the
dtype of ``y``.

Array shapes: ``y`` is ``(N, n)`` voxels by echoes; ``t`` is ``(n,)`` in ms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from t2quant.relaxometry._fast import Scratch, echo_major

__all__ = ["LoglinearResult", "fit_loglinear"]


@dataclass(frozen=True)
class LoglinearResult:
    """Per-voxel solution, ``(N,)`` arrays.

    ``rss`` and ``tss`` are the residual and total sums of squares of the signal (not its
    log) over the samples used, for R-squared and RMSE of the fitted curve.
    """

    rate: NDArray  # 1/ms
    log_s0: NDArray
    rate_se: NDArray  # 1/ms
    n_used: NDArray
    rss: NDArray  # signal units squared
    tss: NDArray  # signal units squared


def fit_loglinear(
    y: NDArray,
    t: NDArray,
    *,
    floor: NDArray | float = 0.0,
    used: NDArray[np.bool_] | None = None,
    n_used: NDArray | None = None,
    scratch: Scratch | None = None,
) -> LoglinearResult:
    """Fit ``log y = log s0 - r t`` by weighted least squares to every row of ``y``.

    Parameters
    ----------
    y : (N, n) float32 or float64
        Magnitude signals. A row with a NaN sample gives NaN results.
    t : (n,) float64
        Echo times in ms.
    floor : float or (N,) array
        Samples ``<= floor`` are dropped. Use a few noise standard deviations, or 0 to drop
        only non-positive samples.
    used : (N, n) bool array, optional
        ``y > floor`` when the caller has it already (then ``floor`` is not used).
    n_used : (N,) array, optional
        Row sums of ``used``, when the caller has them.
    scratch : Scratch, optional
        Work arrays to reuse across calls (a fresh set when None).

    Returns
    -------
    LoglinearResult
        ``rate`` in 1/ms and its standard error ``rate_se`` (NaN with fewer than three
        samples used). The error variance is estimated from the linear-domain residuals,
        which equal the ``y**2``-weighted log residuals to first order.
    """
    buf = Scratch() if scratch is None else scratch
    dtype = y.dtype
    n_echo, n_vox = y.shape[1], y.shape[0]
    yt = echo_major(y, buf)  # (n, N): reductions over echoes become fast BLAS calls
    if used is None:
        floor = np.asarray(floor, dtype=dtype)
        used = np.greater(yt, floor, out=buf.take("used", yt.shape, bool)).T
    every = bool(used.all())
    log_y = buf.take("log_y", yt.shape, dtype)
    if every:
        y_used, weight = yt, None
        np.log(yt, out=log_y)
    else:  # unused samples: y 0 and log y 0, via a 0/1 weight (masked ufuncs are slow)
        weight = buf.take("weight", yt.shape, dtype)
        weight[...] = used.T
        y_used = np.multiply(yt, weight, out=buf.take("y_used", yt.shape, dtype))
        np.subtract(1, weight, out=log_y)
        np.log(np.add(y_used, log_y, out=log_y), out=log_y)
    centre = 0.5 * (t[0] + t[-1])
    scale = 0.5 * (t[-1] - t[0])
    tc = ((t - centre) / scale).astype(dtype)
    ones = np.ones_like(tc)
    w = np.multiply(y_used, y_used, out=buf.take("w", yt.shape, dtype))
    s0, s1, s2 = ones @ w, tc @ w, (tc * tc) @ w
    w *= log_y
    q0, q1 = ones @ w, tc @ w
    if n_used is None:
        n_used = np.full(n_vox, n_echo, dtype=dtype) if every else ones @ weight
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        det = s0 * s2 - s1 * s1
        intercept = (s2 * q0 - s1 * q1) / det
        slope = (s0 * q1 - s1 * q0) / det
        pred = np.multiply(tc[:, None], slope, out=buf.take("pred", yt.shape, dtype))
        pred += intercept
        rss = _linear_rss(y_used, pred, weight, ones)
        tss = s0 - (ones @ y_used) ** 2 / n_used
        dof = n_used - 2
        # y**2-weighted log residuals equal the linear residuals to first order
        slope_var = np.where(dof > 0, rss / np.maximum(dof, 1), np.nan) * s0 / det
        rate = slope / -scale
        log_s0 = intercept + rate * centre
        rate_se = np.sqrt(slope_var) / scale
    return LoglinearResult(rate, log_s0, rate_se, n_used, rss, tss)


def _linear_rss(y: NDArray, fitted_log: NDArray, weight: NDArray | None, ones: NDArray) -> NDArray:
    """Residual sum of squares of ``y`` about ``exp(fitted_log)`` over the samples with
    ``weight`` 1 (None: all), overwriting ``fitted_log``. Arrays are ``(n, N)``."""
    resid = np.exp(fitted_log, out=fitted_log)
    np.subtract(y, resid, out=resid)
    if weight is not None:
        resid *= weight
    return ones @ np.square(resid, out=resid)
