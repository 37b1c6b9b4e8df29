"""Derivatives of the covariance of ``y`` and of the fixed effects in the variance parameters:
what Satterthwaite's and Kenward-Roger's methods need (:mod:`t2quant.group.stats.inference`).

With ``s = (variance of each random term of the fit in TERMS order, residual variance)``
(outcome unit squared) and ``Sigma = sum_i s_i G_i`` (``G_i = Z_i Z_i'``, ``G_resid = I``),
pbkrtest's ``Ktrace_ij = tr(Sigma^-1 G_i Sigma^-1 G_j)``, ``P_i = -X' Sigma^-1 G_i Sigma^-1 X``
and ``Q_ij = X' Sigma^-1 G_i Sigma^-1 G_j Sigma^-1 X`` are computed from the cell layout
without an ``n x n`` matrix: with ``Omega = Z_d' V^-1 Z_d = blockdiag(Omega0_p) - N K N'``,
the traces are Frobenius norms of ``E_i' Omega E_j`` with ``E = M^-1/2`` (residual), ``I``
(disc), ``S`` (participant) and ``T`` (level): per-participant ``L x L`` blocks plus a
rank-``L`` correction, e.g. ``tr(V^-1 G_l V^-1 G_j) = tr(R H_j R')`` with
``R = (I + v_l J)^-1``. lmerTest differentiates numerically (numDeriv); these are exact, and
``tests/test_lmm.py`` checks each against dense ``n x n`` algebra to 1e-9.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from t2quant.group.stats.cells import CellLayout, Factorisation, factorise
from t2quant.group.stats.lmm import TERMS, LmmFit

__all__ = ["VarianceDerivatives", "information_reml", "variance_derivatives"]

Array = NDArray[np.float64]


@dataclass(frozen=True)
class VarianceDerivatives:
    """Derivatives at the fitted values in the variances ``s`` (k,) (see the module
    docstring; ``names`` (k,) the fit's terms and ``resid``).

    ``phi`` (p, p) fixed-effect covariance over the kept columns; ``ktrace`` (k, k);
    ``pmat`` (k, p, p) ``P_i``; ``qmat`` (k, k, p, p) ``Q_ij``; ``grad`` (k,) and ``hess``
    (k, k) the gradient and observed Hessian of the (REML or ML, beta-profiled) deviance in
    ``s``. Outcome units: ``s`` in ms^2, ``ktrace`` in ms^-4, and so on.
    """

    names: tuple[str, ...]
    s: Array
    phi: Array
    ktrace: Array
    pmat: Array
    qmat: Array
    grad: Array
    hess: Array


def variance_derivatives(fit: LmmFit) -> VarianceDerivatives:
    """The :class:`VarianceDerivatives` of a fitted model (computed once, cached on the fit);
    ``ValueError`` for a failed fit."""
    if "derivatives" not in fit.cache:
        fit.cache["derivatives"] = _derivatives(fit)
    return fit.cache["derivatives"]


def information_reml(phi: Array, ktrace: Array, pmat: Array, qmat: Array) -> Array:
    """``tr(P G_i P G_j)`` (k, k) with ``P`` the REML projection: twice pbkrtest's expected
    REML information ``IE2``, ``Ktrace - 2 tr(Phi Q_ij) + tr(Phi P_i Phi P_j)``."""
    return (
        ktrace
        - 2 * np.einsum("ij,abji->ab", phi, qmat)
        + np.einsum("ij,ajk,kl,bli->ab", phi, pmat, phi, pmat)
    )


def _derivatives(fit: LmmFit) -> VarianceDerivatives:
    if not fit.ok or fit.layout is None:
        raise ValueError(f"the model was not fitted: {fit.reason}")
    layout = fit.layout
    x = layout.x
    n, p = x.shape
    names = (*fit.terms, "resid")
    fac = factorise(fit.v, layout.m)
    mask = (layout.m > 0).astype(float)
    xd = layout.wd[..., :p]
    psi_xd = fac.psi(xd)
    rdx = xd - layout.m[..., None] * psi_xd  # Z_d' V^-1 X, (P, L, p)
    phi_v = np.linalg.inv(layout.wtw[:p, :p] - np.einsum("plj,plk->jk", xd, psi_xd))
    u = fac.vinv_rows(layout, x)  # V^-1 X, (n, p)
    pm, qm = _p_and_q(fit.terms, layout, fac, rdx, u, fac.vinv_rows(layout, u), mask)
    e = layout.y - x @ fit.beta[fit.kept]
    r = fac.vinv_rows(layout, e[:, None])  # V^-1 e = P y, (n, 1)
    yterm, ypy = _y_terms(names, layout, fac, r, u, phi_v, mask)
    traces = fac.trace_vinv_g(n)[[TERMS.index(t) for t in fit.terms] + [3]]
    ktrace = _ktrace(fac, names, n)
    return _in_outcome_units(fit, names, phi_v, ktrace, pm, qm, yterm, ypy, traces)


def _term_ct(term: str, cells: Array) -> Array:
    """``C_k' b``: cell values (P, L, c) summed to the term's levels, flattened (q_k, c)."""
    if term == "participant":
        return cells.sum(axis=1)
    if term == "level":
        return cells.sum(axis=0)
    return cells.reshape(-1, cells.shape[-1])


def _term_cct(term: str, cells: Array, mask: Array) -> Array:
    """``C_k C_k' b``: the term's sums broadcast back to its present cells (P, L, c)."""
    if term == "participant":
        out = np.broadcast_to(cells.sum(axis=1, keepdims=True), cells.shape)
    elif term == "level":
        out = np.broadcast_to(cells.sum(axis=0, keepdims=True), cells.shape)
    else:
        out = cells
    return out * mask[..., None]


def _row_term(term: str, layout: CellLayout, rows: Array, mask: Array) -> Array:
    """``G_k B = Z_k Z_k' B`` for row values (n, c)."""
    if term == "resid":
        return rows
    return layout.gather(_term_cct(term, layout.scatter(rows), mask))


def _local_blocks(fac: Factorisation) -> dict[str, Array]:
    """Per-participant blocks ``E_k`` (P, L, c_k) of the operators local to a participant:
    ``resid`` ``M^-1/2``, ``disc`` identity, ``participant`` ones (present cells only)."""
    present = (fac.m > 0).astype(float)
    eye = np.eye(fac.m.shape[1])
    inv_sqrt = np.divide(1.0, np.sqrt(fac.m), out=np.zeros_like(fac.m), where=fac.m > 0)
    return {
        "resid": inv_sqrt[..., None] * eye,
        "disc": present[..., None] * eye,
        "participant": present[..., None],
    }


def _ktrace(fac: Factorisation, names: tuple[str, ...], n: int) -> Array:
    """``tr(V^-1 G_i V^-1 G_j)`` (k, k), relative units, for ``names`` (terms and
    ``resid``): Frobenius norms of ``E_i' Omega E_j``."""
    o0, k, r = fac.omega0, fac.k, fac.r
    blocks = _local_blocks(fac)
    ys = {t: np.einsum("pli,plj->pij", e, o0) for t, e in blocks.items()}  # E' Omega0
    hs = {t: np.einsum("pci,pcj->ij", y_, y_) for t, y_ in ys.items()}
    out = np.zeros((len(names), len(names)))
    for a, ti in enumerate(names):
        for b, tj in enumerate(names[a:], start=a):
            if ti == tj == "level":
                val = float(((fac.j @ r) ** 2).sum())
            elif "level" in (ti, tj):
                h = hs[tj if ti == "level" else ti]
                val = float(np.trace(r @ h @ r.T))
            else:
                xb = np.einsum("pci,pid->pcd", ys[ti], blocks[tj])
                mid = np.einsum("pci,ij,pdj->pcd", ys[ti], k, ys[tj])
                val = float((xb**2).sum() - 2 * (xb * mid).sum())
                val += float(np.trace(k @ hs[ti] @ k @ hs[tj]))
                if ti == tj == "resid":
                    val += n - int((fac.m > 0).sum())
            out[a, b] = out[b, a] = val
    return out


def _p_and_q(terms, layout, fac, rdx, u, vinv_u, mask) -> tuple[Array, Array]:
    """pbkrtest's ``P_i`` (k, p, p) and ``Q_ij`` (k, k, p, p), relative units, from
    ``rdx = Z_d' V^-1 X`` (P, L, p), ``u = V^-1 X`` (n, p) and ``vinv_u = V^-2 X``."""
    names = (*terms, "resid")
    k, p = len(names), u.shape[1]
    pm = np.empty((k, p, p))
    qm = np.empty((k, k, p, p))
    bcast = {t: _term_cct(t, rdx, mask) for t in terms}  # C C' Z_d' V^-1 X
    zvu = layout.scatter(vinv_u)  # Z_d' V^-2 X
    for i, ti in enumerate(names):
        if ti == "resid":
            pm[i] = -u.T @ u
            qm[i, i] = u.T @ vinv_u
            continue
        ct = _term_ct(ti, rdx)
        pm[i] = -ct.T @ ct
        for j, tj in enumerate(terms[i:], start=i):
            qm[i, j] = np.einsum("plj,plk->jk", bcast[ti], fac.omega_apply(bcast[tj]))
            qm[j, i] = qm[i, j].T
        q0 = _term_ct(ti, zvu).T @ ct  # Q_resid,i
        qm[k - 1, i], qm[i, k - 1] = q0, q0.T
    return pm, qm


def _y_terms(names, layout, fac, r, u, phi_v, mask) -> tuple[Array, Array]:
    """``y' P G_i P G_j P y`` (k, k) and ``y' P G_i P y`` (k,), relative units, from
    ``r = P y`` (n, 1) and ``u = V^-1 X`` (n, p)."""
    a = [_row_term(t, layout, r, mask) for t in names]
    pa = [fac.vinv_rows(layout, ai) - u @ (phi_v @ (u.T @ ai)) for ai in a]
    yterm = np.array([[float((ai * pj).sum()) for pj in pa] for ai in a])
    return yterm, np.array([float((r * ai).sum()) for ai in a])


def _in_outcome_units(fit: LmmFit, names, phi_v, ktrace, pm, qm, yterm, ypy,
                      traces) -> VarianceDerivatives:  # fmt: skip
    """Scale relative-unit quantities to ``Sigma = s2 V`` and form the deviance's gradient
    and observed Hessian in the variances (REML: ``-tr(P G_i P G_j) + 2 y'P G_i P G_j P y``;
    ML: ``-tr(Sigma^-1 G_i Sigma^-1 G_j) + 2 y'P G_i P G_j P y``)."""
    s2 = fit.variances["residual"]
    phi = s2 * phi_v
    ktrace_s, pm_s, qm_s = ktrace / s2**2, pm / s2**2, qm / s2**3
    yterm_s, ypy_s = yterm / s2**3, ypy / s2**2
    if fit.reml:
        grad = traces / s2 + np.einsum("ij,kji->k", phi, pm_s) - ypy_s
        hess = -information_reml(phi, ktrace_s, pm_s, qm_s) + 2 * yterm_s
    else:
        grad = traces / s2 - ypy_s
        hess = -ktrace_s + 2 * yterm_s
    s = np.array([fit.variances[t] for t in fit.terms] + [s2])
    return VarianceDerivatives(names, s, phi, ktrace_s, pm_s, qm_s, grad, hess)
