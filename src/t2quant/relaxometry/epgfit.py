"""Vectorised stimulated-echo-corrected T2: fit T2, amplitude and B1 with the EPG model.

With refocusing angles below 180 degrees a CPMG train carries stimulated echoes, and a
mono-exponential fit overestimates T2 (Lebel & Wilman 2010). The signal is modelled as
``y = a * epg(T2, B1)`` with :func:`t2quant.relaxometry.epg.epg_mese_signal` (refocusing angle
``180 * B1`` degrees, fixed T1, echoes at ``n * esp``). The amplitude is linear and is
projected out (variable projection), leaving two nonlinear parameters per voxel:

1. dictionary search: correlate every voxel with unit-norm EPG curves on a grid of
   ``log T2`` x ``B1`` (one matrix product); keep the best atom and refine it with a
   parabola along each axis;
2. Levenberg-Marquardt on ``(log T2, q)`` with the projected Jacobian (Kaufman 1975),
   whose columns come from forward differences of the EPG model. Each iteration works on
   all voxels that have not yet converged at once.

Refocusing angles ``a`` and ``360 - a`` give identical trains, so ``B1`` and ``2 - B1`` fit
equally well: the train is an even function of ``B1 - 1``. The optimiser therefore works on
``q = (1 - B1)**2 >= 0``, in which the model is smooth and not flat at 180 degrees (in
``B1`` the Jacobian vanishes there), and reports ``B1 = 1 - sqrt(q)``: the mirror solution
``B1 > 1`` is folded back into ``(0, 1]`` by construction. A fixed B1 map above 1 is folded
the same way.

Array shapes: ``y`` is ``(N, n_used)`` voxels by echoes used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from t2quant.relaxometry._fast import parabola_shift, rowdot
from t2quant.relaxometry.epg import epg_mese_signal

__all__ = ["EPGModel", "EPGResult", "epg_echoes", "fit_epg"]

F64 = NDArray[np.float64]
_H_LOG_T2 = 1e-5
_H_Q = 1e-6


def epg_echoes(t2_ms: F64, b1: F64, t1_ms: float, esp_ms: float, n_echoes: int) -> F64:
    """The fitted model's echoes, ``(N, n_echoes)``, for ``(N,)`` T2 (ms) and B1.

    B1 above 1 is folded back (``2 - B1``): the train cannot tell a refocusing angle above
    180 degrees from its mirror below, so both give the same echoes.
    """
    folded = np.where(b1 > 1.0, 2.0 - b1, b1)
    return epg_mese_signal(t2_ms, t1_ms, esp_ms, n_echoes, 180.0 * folded)


@dataclass(frozen=True)
class EPGModel:
    """The echo train and the grids of the dictionary search.

    ``used`` selects the echoes entering the fit (e.g. all but the first); the model always
    simulates the whole train of ``n_echoes`` echoes at ``n * esp_ms``.
    """

    esp_ms: float
    n_echoes: int
    used: NDArray[np.bool_]
    t1_ms: float
    t2_grid_ms: F64
    b1_grid: F64

    def signal(self, t2_ms: F64, b1: F64) -> F64:
        """Echoes used, ``(N, n_used)``, for ``(N,)`` T2 in ms and B1 (folded at 1)."""
        return epg_echoes(t2_ms, b1, self.t1_ms, self.esp_ms, self.n_echoes)[:, self.used]

    def signal_q(self, log_t2: F64, q: F64) -> F64:
        """Echoes used for ``log T2`` and ``q = (1 - B1)**2``."""
        return self.signal(np.exp(log_t2), 1.0 - np.sqrt(q))

    def atoms(self) -> F64:
        """Unit-norm dictionary, ``(n_b1, n_t2, n_used)``."""
        t2 = np.broadcast_to(self.t2_grid_ms[None, :], (self.b1_grid.size, self.t2_grid_ms.size))
        b1 = np.broadcast_to(self.b1_grid[:, None], t2.shape)
        sig = self.signal(t2.reshape(-1), b1.reshape(-1)).reshape(*t2.shape, -1)
        return sig / np.linalg.norm(sig, axis=-1, keepdims=True)


@dataclass(frozen=True)
class EPGResult:
    """Per-voxel solution, ``(N,)`` arrays except ``pred`` ``(N, n_used)``."""

    t2_ms: F64
    b1: F64
    amplitude: F64
    pred: F64
    log_t2_var_unscaled: F64  # [(J^T J)^-1] for log T2; times s^2 gives its variance
    converged: NDArray[np.bool_]


def _dictionary_start(
    y: F64, model: EPGModel, atoms: F64, b1_fixed: F64 | None, block: int = 1024
) -> tuple[F64, F64]:
    """Starting ``log T2`` and ``B1`` per voxel from the dictionary, ``block`` rows at a
    time so that the correlation matrix stays small."""
    if y.shape[0] > block:
        parts = [
            _dictionary_start(
                y[i : i + block],
                model,
                atoms,
                None if b1_fixed is None else b1_fixed[i : i + block],
            )
            for i in range(0, y.shape[0], block)
        ]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    n_b, n_t, _ = atoms.shape
    if b1_fixed is None:  # the correlations stay float32 and are only searched, never kept
        flat = atoms.reshape(n_b * n_t, -1).astype(np.float32)
        ib, it = np.divmod(np.argmax(y.astype(np.float32) @ flat.T, axis=1), n_t)
    else:
        ib = np.abs(b1_fixed[:, None] - model.b1_grid[None, :]).argmin(axis=1)
        corr = np.einsum("nk,ntk->nt", y.astype(np.float32), atoms[ib].astype(np.float32))
        it = np.argmax(corr, axis=1)
    log_grid = np.log(model.t2_grid_ms)
    it_c = np.clip(it, 1, n_t - 2)
    t_shift = parabola_shift(*(rowdot(y, atoms[ib, it_c + k]) for k in (-1, 0, 1)))
    log_t2 = log_grid[it_c] + t_shift * (log_grid[1] - log_grid[0])
    if b1_fixed is not None:
        return log_t2, b1_fixed
    ib_c = np.clip(ib, 1, n_b - 2)
    b_shift = parabola_shift(*(rowdot(y, atoms[ib_c + k, it]) for k in (-1, 0, 1)))
    b1 = model.b1_grid[ib_c] + b_shift * (model.b1_grid[1] - model.b1_grid[0])
    return log_t2, np.minimum(b1, 1.0)


def _project(y: F64, sig: F64) -> tuple[F64, F64, F64]:
    """Best amplitude, residual and residual sum of squares for each row."""
    with np.errstate(divide="ignore", invalid="ignore"):
        amp = rowdot(y, sig) / rowdot(sig, sig)
    resid = y - amp[:, None] * sig
    return amp, resid, rowdot(resid, resid)


def _jacobian(model: EPGModel, theta: F64, sig: F64, amp: F64, fit_q: bool) -> F64:
    """Projected Jacobian ``a * P_perp ds/dtheta``, shape ``(N, n_used, k)``.

    ``theta`` is ``(N, 2)`` = (log T2, q); ``k`` is 2 when ``q`` is fitted, else 1.
    """
    log_t2, q = theta[:, 0], theta[:, 1]
    cols = [(model.signal_q(log_t2 + _H_LOG_T2, q) - sig) / _H_LOG_T2]
    if fit_q:
        cols.append((model.signal_q(log_t2, q + _H_Q) - sig) / _H_Q)
    jac = np.stack(cols, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        coef = np.einsum("ijk,ij->ik", jac, sig) / np.einsum("ij,ij->i", sig, sig)[:, None]
    return amp[:, None, None] * (jac - sig[:, :, None] * coef[:, None, :])


def _solve_small(h: F64, g: F64) -> tuple[F64, F64]:
    """Solve ``h x = g`` for stacked 1x1 or 2x2 ``h``; also return ``[h^-1]_00``."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if h.shape[-1] == 1:
            return g / h[:, :, 0], 1.0 / h[:, 0, 0]
        det = h[:, 0, 0] * h[:, 1, 1] - h[:, 0, 1] * h[:, 1, 0]
        x0 = (h[:, 1, 1] * g[:, 0] - h[:, 0, 1] * g[:, 1]) / det
        x1 = (h[:, 0, 0] * g[:, 1] - h[:, 1, 0] * g[:, 0]) / det
        return np.stack([x0, x1], axis=1), h[:, 1, 1] / det


@dataclass
class _State:
    """Levenberg-Marquardt state of every voxel (rows of ``theta`` etc.)."""

    theta: F64  # (N, 2): log T2, q
    sig: F64
    amp: F64
    cost: F64
    lam: F64
    h_inv00: F64
    active: NDArray[np.bool_]


def _lm_iteration(y: F64, model: EPGModel, st: _State, fit_q: bool, bounds: F64, tol: float):
    idx = np.flatnonzero(st.active)
    theta, sig, amp = st.theta[idx], st.sig[idx], st.amp[idx]
    resid = y[idx] - amp[:, None] * sig
    jac = _jacobian(model, theta, sig, amp, fit_q)
    h = np.einsum("ijk,ijl->ikl", jac, jac)
    g = np.einsum("ijk,ij->ik", jac, resid)
    damped = h + st.lam[idx, None, None] * h * np.eye(h.shape[-1])[None]
    step, _ = _solve_small(damped, g)
    _, h_inv00 = _solve_small(h, g)
    step = np.clip(np.nan_to_num(step), -0.5, 0.5)
    trial = theta.copy()
    trial[:, : step.shape[1]] += step
    trial = np.clip(trial, bounds[0], bounds[1])
    trial_sig = model.signal_q(trial[:, 0], trial[:, 1])
    trial_amp, _, trial_cost = _project(y[idx], trial_sig)
    better = trial_cost < st.cost[idx]
    acc = idx[better]
    st.theta[acc], st.sig[acc] = trial[better], trial_sig[better]
    st.amp[acc], st.cost[acc] = trial_amp[better], trial_cost[better]
    st.h_inv00[idx] = h_inv00
    st.lam[idx] = np.where(better, st.lam[idx] * 0.1, st.lam[idx] * 10.0)
    moved = np.abs(trial - theta).max(axis=1)
    stalled = ~better & (st.lam[idx] > 1e4)  # no descent left at this point: a minimum
    done = (better & (moved < tol)) | stalled | (moved == 0)
    st.active[idx[done]] = False


def fit_epg(
    y: F64,
    model: EPGModel,
    *,
    b1_fixed: F64 | None = None,
    atoms: F64 | None = None,
    max_iter: int = 20,
    tol: float = 1e-3,
) -> EPGResult:
    """Fit ``y ~ a * epg(T2, B1)`` to every row of ``y`` (``(N, n_used)``).

    ``b1_fixed`` (``(N,)``) fixes B1 per voxel (values above 1 are folded) and fits T2
    and the amplitude only. Returns T2 in ms and B1 in ``(0, 1]``. A voxel has converged
    when an accepted step moves ``log T2`` and ``q`` by less than ``tol`` (1e-3: 0.1 % of
    T2, well below the noise of any real measurement) or when no step reduces the cost;
    ``converged`` is False where the optimiser still moved after ``max_iter`` iterations.
    """
    fit_q = b1_fixed is None
    if b1_fixed is not None:
        b1_fixed = np.where(b1_fixed > 1.0, 2.0 - b1_fixed, b1_fixed)
    atoms = model.atoms() if atoms is None else atoms
    log_t2, b1 = _dictionary_start(y, model, atoms, b1_fixed)
    theta = np.stack([log_t2, (1.0 - b1) ** 2], axis=1)
    log_grid = np.log(model.t2_grid_ms)
    q_max = (1.0 - 0.5 * model.b1_grid[0]) ** 2
    bounds = np.array([[log_grid[0], 0.0], [log_grid[-1], q_max if fit_q else 1.0]])
    sig = model.signal_q(theta[:, 0], theta[:, 1])
    amp, _, cost = _project(y, sig)
    n = y.shape[0]
    st = _State(theta, sig, amp, cost, np.full(n, 1e-3), np.full(n, np.nan), np.ones(n, bool))
    for _ in range(max_iter):
        if not st.active.any():
            break
        _lm_iteration(y, model, st, fit_q, bounds, tol)
    return EPGResult(
        t2_ms=np.exp(st.theta[:, 0]),
        b1=1.0 - np.sqrt(st.theta[:, 1]),
        amplitude=st.amp,
        pred=st.amp[:, None] * st.sig,
        log_t2_var_unscaled=st.h_inv00,
        converged=~st.active,
    )
