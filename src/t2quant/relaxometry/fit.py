"""``fit_t2``: one entry point for every T2 method, vectorised and chunked over voxels.

Voxels inside the mask are processed in chunks of ``chunk_size`` rows (bounded memory, and
each chunk's arrays stay in the CPU caches); chunks can run on several threads because the
numerical work happens in NumPy/BLAS calls that release the GIL.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray
from threadpoolctl import threadpool_limits

from t2quant.errors import InputError
from t2quant.relaxometry._fast import Scratch, echo_major, rowsum
from t2quant.relaxometry.checks import check_echo_spacing, check_signal, check_te_ms
from t2quant.relaxometry.epgfit import EPGModel, fit_epg
from t2quant.relaxometry.loglinear import fit_loglinear
from t2quant.relaxometry.monoexp import fit_monoexp_offset_nonneg, fit_monoexp_vp, t2_grid_ms
from t2quant.relaxometry.noise import estimate_noise_sigma
from t2quant.relaxometry.result import Failure, T2Fit

__all__ = ["DEFAULT_T1_MS", "METHODS", "N_PARAMS", "fit_t2"]

#: Free parameters per method (``epg`` has two when B1 is fixed).
N_PARAMS = {"loglinear": 2, "monoexp": 2, "monoexp_offset": 3, "rician": 2, "epg": 3}
METHODS = tuple(N_PARAMS)

DEFAULT_T1_MS = 1000.0
"""T1 (ms) the EPG model assumes unless told otherwise; the echoes depend on it only weakly."""
_CHUNK_SIZE = {"loglinear": 32768}


@dataclass(frozen=True)
class _Context:
    method: str
    te_ms: NDArray[np.float64]  # echoes used
    used: NDArray[np.bool_]
    sigma: NDArray[np.float64] | None  # (V,) noise sigma per voxel
    sigma_uniform: bool  # every voxel has the same sigma (the floor is one number)
    b1: NDArray[np.float64] | None  # (V,) fixed B1
    floor_factor: float
    t2_min_ms: float
    t2_max_ms: float
    b1_min: float
    epg: EPGModel | None = None
    atoms: NDArray[np.float64] | None = None
    grid_ms: NDArray[np.float64] = field(default_factory=lambda: np.empty(0))


def fit_t2(
    signal: ArrayLike,
    te_ms: ArrayLike,
    *,
    method: str = "monoexp",
    mask: ArrayLike | None = None,
    skip_first_echo: bool = False,
    noise_sigma: float | ArrayLike | str | None = None,
    t1_ms: float = DEFAULT_T1_MS,
    b1: float | ArrayLike | None = None,
    t2_min_ms: float | None = None,
    t2_max_ms: float | None = None,
    b1_min: float = 0.5,
    floor_factor: float = 2.0,
    chunk_size: int | None = None,
    n_threads: int | None = None,
) -> T2Fit:
    """Fit a T2 map to multi-echo magnitude data.

    Parameters
    ----------
    signal : (*S, n_echoes) array_like
        Magnitude echoes, echoes on the last axis. Integers are converted to float32.
    te_ms : (n_echoes,) array_like
        Echo times in ms, strictly increasing. For ``epg`` they must be ``n * esp``.
    method : {"loglinear", "monoexp", "monoexp_offset", "rician", "epg"}
        * ``loglinear``: weighted log-linear least squares (weights ``y**2``); samples at or
          below ``floor_factor * noise_sigma`` (or <= 0 without a noise level) are dropped.
        * ``monoexp``: nonlinear least squares ``s0 exp(-TE/T2)``.
        * ``monoexp_offset``: ``s0 exp(-TE/T2) + offset`` with ``offset >= 0`` (a noise
          floor is positive; where the free fit goes negative the bound is active and the
          ``offset = 0`` solution is returned).
        * ``rician``: noise-floor corrected mono-exponential. The squared magnitude of a
          Rician sample has expectation ``A**2 + 2 sigma**2``, so ``y**2 - 2 sigma**2`` is
          fitted with ``s0**2 exp(-2 TE/T2)`` (Miller & Joseph 1993; Gudbjartsson & Patz
          1995). Needs ``noise_sigma``.
        * ``epg``: T2, amplitude and refocusing B1 with the extended-phase-graph model of
          the CPMG train (stimulated echoes); fixed T1 ``t1_ms``; ``b1`` fixes B1.
    mask : (*S,) bool array_like, optional
        Voxels to fit; the others get ``failure = NOT_FITTED``. Default: all voxels.
    skip_first_echo : bool
        Leave the first echo out of the fit (for ``epg`` the model still simulates it).
    noise_sigma : float, (*S,) array_like, "background" or None
        Noise standard deviation of the complex data, in signal units. ``"background"``
        estimates it from the voxels outside ``mask`` (Rayleigh median).
    t1_ms : float
        T1 used by the EPG model, in ms.
    b1 : float or (*S,) array_like, optional
        Fixed refocusing B1 (fraction of 180 degrees) for ``epg``.
    t2_min_ms, t2_max_ms : float, optional
        Plausible T2 range; fits outside are failures ``T2_TOO_SHORT`` / ``T2_TOO_LONG``.
        Defaults: half the first echo time, and five times the last echo time.
    b1_min : float
        Smallest acceptable fitted B1 for ``epg`` (0.5 = 90 degrees).
    floor_factor : float
        Noise-floor multiple of ``noise_sigma`` below which samples count as noise.
    chunk_size : int, optional
        Voxels per chunk (default 32768 for ``loglinear``, 16384 for the iterative methods,
        whose per-voxel work arrays are larger).
    n_threads : int, optional
        Threads working on chunks (each limits BLAS to one thread meanwhile); default: the
        processors this process may run on.

    Returns
    -------
    T2Fit
        Maps of shape ``S``. Failed fits have NaN parameters, ``failed = True`` and a
        :class:`~t2quant.relaxometry.result.Failure` code; nothing is clipped.

    Raises
    ------
    ValueError
        For an unknown method, bad echo times (see :func:`check_te_ms`), shapes that do not
        match, or a method that needs a noise level without one.
    """
    if method not in N_PARAMS:
        raise InputError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    sig = check_signal(signal)
    te = check_te_ms(te_ms, n_echoes=sig.shape[-1])
    shape = sig.shape[:-1]
    # Voxels in memory order: a Fortran-ordered image (as nibabel loads NIfTI) is echo-major,
    # which the fitters use without a copy.
    order = "F" if sig.flags.f_contiguous and not sig.flags.c_contiguous else "C"
    flat = sig.reshape(-1, sig.shape[-1], order=order)
    fit_mask = _as_mask(mask, shape, order)
    ctx = _context(
        method, te, flat, fit_mask, shape, skip_first_echo, noise_sigma, t1_ms, b1,
        t2_min_ms, t2_max_ms, b1_min, floor_factor, order,
    )  # fmt: skip
    out = _allocate(flat.shape[0], fit_mask)
    rows = np.flatnonzero(fit_mask)
    chunk_size = chunk_size or _CHUNK_SIZE.get(method, 16384)
    chunks = [rows[i : i + chunk_size] for i in range(0, rows.size, chunk_size)]

    per_thread = threading.local()

    def work(chunk: NDArray[np.intp]) -> None:
        contiguous = chunk[-1] - chunk[0] == chunk.size - 1
        rows = slice(chunk[0], chunk[-1] + 1) if contiguous else chunk
        if not hasattr(per_thread, "scratch"):
            per_thread.scratch = Scratch()
        _store(out, rows, _fit_chunk(flat[rows], chunk, ctx, per_thread.scratch))

    if n_threads is None:
        n_threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    if n_threads > 1 and len(chunks) > 1:
        # One BLAS thread per worker: BLAS's own threads would compete with the workers.
        with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(n_threads) as pool:
            list(pool.map(work, chunks))
    else:
        for chunk in chunks:
            work(chunk)
    if ctx.b1 is not None:
        out["b1"][fit_mask] = ctx.b1[fit_mask]
        out["b1"][out["failure"] > Failure.NOT_FITTED.value] = np.nan
    maps = {k: v.reshape(shape, order=order) for k, v in out.items()}
    return T2Fit(failed=maps["failure"] > Failure.NOT_FITTED.value, method=method, **maps)


def _as_mask(mask: ArrayLike | None, shape: tuple[int, ...], order: str) -> NDArray[np.bool_]:
    if mask is None:
        return np.ones(int(np.prod(shape, dtype=np.int64)), dtype=bool)
    m = np.asarray(mask)
    if m.shape != shape:
        raise InputError(f"mask shape {m.shape} does not match the image shape {shape}")
    return m.astype(bool).reshape(-1, order=order)


def _per_voxel(value: float | ArrayLike, shape: tuple[int, ...], name: str, order: str) -> NDArray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim and arr.shape != shape:
        raise InputError(f"{name} shape {arr.shape} does not match the image shape {shape}")
    return np.broadcast_to(arr, shape).reshape(-1, order=order).copy()


def _context(
    method, te, flat, fit_mask, shape, skip_first_echo, noise_sigma, t1_ms, b1,
    t2_min_ms, t2_max_ms, b1_min, floor_factor, order,
) -> _Context:  # fmt: skip
    used = np.ones(te.size, dtype=bool)
    used[0] = not skip_first_echo
    n_params = N_PARAMS[method] - (method == "epg" and b1 is not None)
    if used.sum() < n_params + 1:
        raise InputError(
            f"method {method!r} needs at least {n_params + 1} echoes in the fit; "
            f"{int(used.sum())} remain" + (" after skipping the first" if skip_first_echo else "")
        )
    sigma = None
    if isinstance(noise_sigma, str):
        if noise_sigma != "background":
            raise InputError(
                f"noise_sigma must be a number, an array or 'background'; got {noise_sigma!r}"
            )
        if fit_mask.all():
            raise InputError(
                "noise_sigma='background' needs a mask that leaves background voxels out"
            )
        sigma = np.full(flat.shape[0], estimate_noise_sigma(flat, ~fit_mask))
    elif noise_sigma is not None:
        sigma = _per_voxel(noise_sigma, shape, "noise_sigma", order)
        if np.any(~np.isfinite(sigma) | (sigma < 0)):
            raise InputError("noise_sigma must be finite and >= 0")
    if method == "rician" and sigma is None:
        raise InputError("method 'rician' needs noise_sigma (a value, a map or 'background')")
    if b1 is not None and method != "epg":
        raise InputError(f"a fixed b1 is only used by method 'epg', not {method!r}")
    t2_min = 0.5 * te[0] if t2_min_ms is None else float(t2_min_ms)
    t2_max = 5.0 * te[-1] if t2_max_ms is None else float(t2_max_ms)
    if not 0 < t2_min < t2_max:
        raise InputError(f"need 0 < t2_min_ms < t2_max_ms; got {t2_min}, {t2_max}")
    grid = t2_grid_ms(t2_min, t2_max)
    epg = atoms = None
    b1_map = None if b1 is None else _per_voxel(b1, shape, "b1", order)
    if method == "epg":
        esp = check_echo_spacing(te)
        b1_grid = np.linspace(max(0.9 * b1_min, 0.3), 1.0, 25)
        epg = EPGModel(
            esp, te.size, used, float(t1_ms), np.geomspace(grid[0], grid[-1], 64), b1_grid
        )
        atoms = epg.atoms()
    return _Context(
        method=method, te_ms=te[used], used=used, sigma=sigma, b1=b1_map,
        sigma_uniform=sigma is None or sigma.size == 0 or bool(np.all(sigma == sigma[0])),
        floor_factor=floor_factor, t2_min_ms=t2_min, t2_max_ms=t2_max, b1_min=b1_min,
        epg=epg, atoms=atoms, grid_ms=grid,
    )  # fmt: skip


_MAPS = ("t2_ms", "s0", "offset", "b1", "r2", "rmse", "t2_se_ms")


def _allocate(n_vox: int, fit_mask: NDArray[np.bool_]) -> dict[str, NDArray]:
    """Output maps; rows in the mask are all written by the chunks, the others are NaN."""
    out = {name: np.empty(n_vox, dtype=np.float32) for name in _MAPS}
    if not fit_mask.all():
        for values in out.values():
            values[~fit_mask] = np.nan
    out["failure"] = np.where(fit_mask, Failure.OK, Failure.NOT_FITTED).astype(np.uint8)
    return out


def _store(
    out: dict[str, NDArray], rows: NDArray[np.intp] | slice, res: dict[str, NDArray]
) -> None:
    for name, values in res.items():
        out[name][rows] = values


def _screen(
    yt: NDArray, t: NDArray, floor: NDArray | float, scratch: Scratch
) -> tuple[NDArray[np.uint8], NDArray[np.bool_], NDArray | None]:
    """Failure codes that follow from the samples alone, ``y > floor``, and its sums over
    echoes (None when every sample is above the floor). ``yt`` is echo-major, ``(n, N)``.

    Products with short vectors give each voxel's sum (NaN and inf propagate into it) and its
    unweighted decay slope; sign checks are only needed where a sample is at or below the floor.
    """
    code = np.zeros(yt.shape[1], dtype=np.uint8)
    ones = np.ones(yt.shape[0], dtype=yt.dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        total = ones @ yt
        slope = (t - t.mean()).astype(yt.dtype) @ yt
    above = np.greater(yt, floor, out=scratch.take("above", yt.shape, bool))
    code[slope >= 0] = Failure.NOT_DECAYING
    n_above = None
    if not above.all():
        above_01 = scratch.take("above_01", yt.shape, yt.dtype)
        above_01[...] = above
        n_above = ones @ above_01
        code[n_above == 0] = Failure.NO_SIGNAL
        negative = np.less(yt, 0, out=scratch.take("negative", yt.shape, bool))
        if negative.any():
            code[negative.any(axis=0)] = Failure.NEGATIVE_INPUT
    code[~np.isfinite(total)] = Failure.NONFINITE_INPUT
    return code, above, n_above


@dataclass(frozen=True)
class _Batch:
    """The voxels of one chunk that a fitter gets, and what it needs about them."""

    y: NDArray  # (N, n) echoes used
    sigma: NDArray | None  # (N,) noise sigma
    b1: NDArray | None  # (N,) fixed B1
    above: NDArray[np.bool_]  # (N, n) samples above the noise floor
    n_above: NDArray | None  # (N,) row sums of above; None: all above
    scratch: Scratch


#: Methods that take every voxel of a chunk (screened-out voxels just give NaN), which saves
#: gathering the good ones.
_FIT_WHOLE_CHUNK = frozenset({"loglinear"})


def _fit_chunk(
    y_all: NDArray, rows: NDArray[np.intp], ctx: _Context, scratch: Scratch
) -> dict[str, NDArray]:
    y = y_all if ctx.used.all() else y_all[:, ctx.used]
    yt = echo_major(y, scratch)
    sigma = None if ctx.sigma is None else ctx.sigma[rows]
    if sigma is None:
        floor = 0.0
    else:  # a scalar floor compares faster than a per-voxel one
        floor = ctx.floor_factor * (float(sigma[0]) if ctx.sigma_uniform else sigma)
        floor = np.asarray(floor, dtype=y.dtype)
    code, above, n_above = _screen(yt, ctx.te_ms, floor, scratch)
    n_good = int(np.count_nonzero(code == Failure.OK.value))
    res: dict[str, NDArray] = {}
    if n_good:
        whole = ctx.method in _FIT_WHOLE_CHUNK or n_good == y.shape[0]
        pick = slice(None) if whole else np.flatnonzero(code == Failure.OK.value)
        batch = _Batch(
            y=yt.T if ctx.method in _FIT_WHOLE_CHUNK else np.ascontiguousarray(y[pick]),
            sigma=None if sigma is None else sigma[pick],
            b1=None if ctx.b1 is None else ctx.b1[rows[pick]],
            above=above.T[pick],
            n_above=None if n_above is None else n_above[pick],
            scratch=scratch,
        )
        params, pred, used_pts, ok = _FITTERS[ctx.method](batch, ctx)
        judged = _judge(params, ok, ctx)
        code[pick] = np.where(code[pick] == Failure.OK.value, judged, code[pick])
        if pred is not None:  # else the fitter gave r2 and rmse
            params.update(_goodness(batch.y.astype(pred.dtype, copy=False), pred, used_pts))
        for name, values in params.items():
            if whole:
                res[name] = values
            else:
                res[name] = np.full(y.shape[0], np.nan, dtype=np.float32)
                res[name][pick] = values
    for name in _MAPS:
        if name not in res:
            res[name] = np.full(y.shape[0], np.nan, dtype=np.float32)
    failed = code > Failure.NOT_FITTED.value
    if failed.any():
        for name in _MAPS:
            res[name] = np.where(failed, np.nan, res[name])
    res["failure"] = code
    return res


def _judge(params: dict[str, NDArray], ok: NDArray[np.uint8], ctx: _Context) -> NDArray:
    """Failure codes from the fitted values (``ok`` holds codes set by the fitter).

    An estimate far outside the plausible range is reported as such even when the optimiser
    had not settled (a T2 of seconds is unidentifiable, not merely unconverged).
    """
    code = ok.copy()
    t2 = params["t2_ms"]
    finite = np.isfinite(t2) & np.isfinite(params["s0"])
    open_ = (code == Failure.OK.value) | (code == Failure.NOT_CONVERGED.value)
    code[open_ & finite & (t2 > ctx.t2_max_ms)] = Failure.T2_TOO_LONG
    code[open_ & finite & (t2 < ctx.t2_min_ms)] = Failure.T2_TOO_SHORT
    if ctx.method == "epg" and ctx.b1 is None:
        code[(code == 0) & ~(params["b1"] >= ctx.b1_min)] = Failure.B1_OUT_OF_RANGE
    code[(code == 0) & ~finite] = Failure.NOT_CONVERGED
    return code


def _goodness(y: NDArray, pred: NDArray, used: NDArray[np.bool_] | None) -> dict[str, NDArray]:
    """R-squared and RMSE over the samples used (``used`` None: all)."""
    resid = y - pred
    dev = y - (rowsum(y) / y.shape[1])[:, None]
    if used is not None:
        n = rowsum(used)
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = rowsum(np.where(used, y, 0)) / n
        dev = np.where(used, y - mean[:, None], 0)
        resid = np.where(used, resid, 0)
    else:
        n = y.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        rss = rowsum(resid * resid)
        return {"r2": 1.0 - rss / rowsum(dev * dev), "rmse": np.sqrt(rss / n)}


def _dof_scale(rss: NDArray, n: NDArray | int, p: int) -> NDArray:
    dof = np.asarray(n) - p
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(dof > 0, rss / np.maximum(dof, 1), np.nan)


def _fit_loglinear(batch: _Batch, ctx: _Context):
    res = fit_loglinear(
        batch.y, ctx.te_ms, used=batch.above, n_used=batch.n_above, scratch=batch.scratch
    )
    code = np.where(res.n_used < 2, Failure.TOO_FEW_ECHOES, Failure.OK).astype(np.uint8)
    code[(code == 0) & ~(res.rate > 0)] = Failure.NOT_DECAYING
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        t2 = 1.0 / res.rate
        params = {
            "t2_ms": t2, "s0": np.exp(res.log_s0), "offset": np.zeros_like(t2),
            "t2_se_ms": res.rate_se * t2 * t2,
            "r2": 1.0 - res.rss / res.tss, "rmse": np.sqrt(res.rss / res.n_used),
        }  # fmt: skip
    return params, None, None, code


def _fit_codes(converged: NDArray[np.bool_], amplitude: NDArray) -> NDArray[np.uint8]:
    """OK, NOT_CONVERGED, or NOT_DECAYING where the fitted amplitude is not positive."""
    code = np.where(converged, Failure.OK, Failure.NOT_CONVERGED).astype(np.uint8)
    code[(code == 0) & ~(amplitude > 0)] = Failure.NOT_DECAYING
    return code


def _fit_mono(batch: _Batch, ctx: _Context, *, offset: bool):
    y = batch.y.astype(np.float64)
    if offset:
        res = fit_monoexp_offset_nonneg(y, ctx.te_ms, grid_ms=ctx.grid_ms)
    else:
        res = fit_monoexp_vp(y, ctx.te_ms, offset=False, grid_ms=ctx.grid_ms)
    rss = rowsum((y - res.pred) ** 2)
    s2 = _dof_scale(rss, y.shape[1], 3 if offset else 2)
    t2 = 1.0 / res.rate
    code = _fit_codes(res.converged, res.amplitude)
    se = np.sqrt(s2 * res.rate_var_unscaled) * t2 * t2
    return (
        {"t2_ms": t2, "s0": res.amplitude, "offset": res.offset, "t2_se_ms": se},
        res.pred,
        None,
        code,
    )


def _fit_rician(batch: _Batch, ctx: _Context):
    y = batch.y.astype(np.float64)
    two_var = 2.0 * batch.sigma * batch.sigma
    y2 = y * y - two_var[:, None]
    res = fit_monoexp_vp(y2, ctx.te_ms, offset=False, grid_ms=0.5 * ctx.grid_ms)
    rss = rowsum((y2 - res.pred) ** 2)
    s2 = _dof_scale(rss, y.shape[1], 2)
    t2 = 2.0 / res.rate
    code = _fit_codes(res.converged, res.amplitude)
    with np.errstate(invalid="ignore"):
        s0 = np.sqrt(res.amplitude)
        pred = np.sqrt(np.maximum(res.pred, 0.0) + two_var[:, None])
    se = 0.5 * np.sqrt(s2 * res.rate_var_unscaled) * t2 * t2
    return {"t2_ms": t2, "s0": s0, "offset": np.zeros_like(t2), "t2_se_ms": se}, pred, None, code


def _fit_epg(batch: _Batch, ctx: _Context):
    y, b1 = batch.y.astype(np.float64), batch.b1
    res = fit_epg(y, ctx.epg, b1_fixed=b1, atoms=ctx.atoms)
    rss = rowsum((y - res.pred) ** 2)
    s2 = _dof_scale(rss, y.shape[1], 3 if b1 is None else 2)
    code = _fit_codes(res.converged, res.amplitude)
    se = np.sqrt(s2 * res.log_t2_var_unscaled) * res.t2_ms
    params = {"t2_ms": res.t2_ms, "s0": res.amplitude, "offset": np.zeros_like(res.t2_ms),
              "b1": res.b1, "t2_se_ms": se}  # fmt: skip
    return params, res.pred, None, code


_FITTERS: dict[str, Callable] = {
    "loglinear": _fit_loglinear,
    "monoexp": lambda batch, ctx: _fit_mono(batch, ctx, offset=False),
    "monoexp_offset": lambda batch, ctx: _fit_mono(batch, ctx, offset=True),
    "rician": _fit_rician,
    "epg": _fit_epg,
}
