"""t and F tests of fixed-effect contrasts: Satterthwaite, Kenward-Roger and Wald.

Each method reproduces the R function a trial statistician would check against:

- ``"satterthwaite"``: lmerTest 3.1 ``contest1D`` / ``contestMD`` (what ``summary()`` and
  ``anova()`` call). The covariance of the variance parameters ``varpar = (theta, sigma)``
  is ``2 H^+`` with ``H`` the Hessian of the deviance in ``varpar`` (lmerTest differentiates
  numerically; here it is exact, from :mod:`t2quant.group.stats.derivatives` by the chain
  rule, including the gradient term that matters at a boundary ``theta = 0``), eigenvalues
  ``<= 1e-8`` left out as lmerTest does. ``df = 2 (L'VL)^2 / (g' A g)``; F tests go through
  the eigen-decomposition of ``L V L'`` and lmerTest's ``get_Fstat_ddf``.
- ``"kenward-roger"``: pbkrtest 0.5 ``vcovAdj`` (the adjusted covariance), ``Lb_ddf`` (1-df
  tests, as lmerTest's ``contest1D(ddf = "Kenward-Roger")``: the SE from the adjusted
  covariance) and ``.KR_adjust`` (F tests: the scaled F that ``anova(ddf = "Kenward-Roger")``
  reports; a rank-deficient ``L`` is made full rank first). REML fits only, as in pbkrtest.
- ``"wald"``: z and chi-square (``df = inf``; ``f_value = chi2 / num_df``).

A contrast ``L`` is a vector (p,) for a t test or a matrix (q, p) for an F test, over all
``fit.names``. A weight on a column dropped as not estimable, or a failed fit, gives NaN and
a ``reason``; usage errors (KR on an ML fit, an unknown method, a wrong width) raise
``ValueError``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from t2quant.group.stats.derivatives import information_reml, variance_derivatives
from t2quant.group.stats.lmm import LmmFit

__all__ = ["LABELS", "METHODS", "FTest", "TTest", "coef_table", "f_test", "t_test"]

METHODS: tuple[str, ...] = ("satterthwaite", "kenward-roger", "wald")
LABELS: dict[str, str] = {
    "satterthwaite": "Satterthwaite t (lmerTest's df)",
    "kenward-roger": "Kenward-Roger t (pbkrtest's adjusted SE and df)",
    "wald": "Wald z",
}
"""How each method is named in the reports."""
EIGEN_TOL = 1e-8
"""lmerTest's tolerance on the eigenvalues of the deviance's Hessian."""
CONTRAST_EPS = math.sqrt(np.finfo(float).eps)
"""lmerTest's ``contestMD`` ``eps``: eigenvalues of ``L V L'`` below this share are dropped."""

Array = NDArray[np.float64]


@dataclass(frozen=True)
class TTest:
    """A 1-df test of ``L beta = 0``: estimate and SE (outcome unit), df, t, two-sided p
    and the t-based confidence interval (Kenward-Roger: with the adjusted SE)."""

    estimate: float
    se: float
    df: float
    t: float
    p_value: float
    ci_low: float
    ci_high: float
    method: str
    reason: str = ""


@dataclass(frozen=True)
class FTest:
    """An F test of ``L beta = 0`` with ``num_df`` the rank of ``L``. Kenward-Roger:
    ``f_value`` is the scaled F lmerTest's ``anova()`` reports, ``f_unscaled`` pbkrtest's
    ``FtestU``. Wald: ``den_df = inf`` and ``f_value = chi2 / num_df``."""

    f_value: float
    num_df: int
    den_df: float
    p_value: float
    method: str
    f_unscaled: float = math.nan
    scaling: float = 1.0
    reason: str = ""


def _check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"inference must be one of {METHODS}, got {method!r}")
    return method


def _reduce(fit: LmmFit, contrast: ArrayLike) -> tuple[Array | None, str]:
    """``L`` (q, p_kept) over the kept columns, or None and why it cannot be tested."""
    mat = np.atleast_2d(np.asarray(contrast, dtype=float))
    if mat.shape[1] != len(fit.names):
        raise ValueError(f"contrast has {mat.shape[1]} columns, the model {len(fit.names)}")
    if not fit.ok:
        return None, f"model not fitted: {fit.reason}"
    if np.any(mat[:, ~fit.kept] != 0):
        dropped = [n for n, k in zip(fit.names, fit.kept, strict=True) if not k]
        return None, f"contrast uses coefficient(s) dropped as not estimable: {dropped}"
    return mat[:, fit.kept], ""


def _kept_vcov(fit: LmmFit) -> Array:
    return fit.vcov[np.ix_(fit.kept, fit.kept)]


# --------------------------------------------------------------------------------------
# Satterthwaite (lmerTest)
# --------------------------------------------------------------------------------------
def _varpar_jacobian(fit: LmmFit) -> tuple[Array, list[Array]]:
    """``ds/dvarpar`` (k, k) and ``d2 s_i / dvarpar2`` (k of (k, k)) for
    ``varpar = (theta of each term, sigma)`` and ``s = (term variances, sigma^2)``."""
    k = len(fit.terms) + 1
    sig = fit.sigma
    jac = np.zeros((k, k))
    second = [np.zeros((k, k)) for _ in range(k)]
    for i, t in enumerate(fit.theta[name] for name in fit.terms):
        jac[i, i] = 2 * sig**2 * t
        jac[i, -1] = 2 * sig * t**2
        second[i][i, i] = 2 * sig**2
        second[i][i, -1] = second[i][-1, i] = 4 * sig * t
        second[i][-1, -1] = 2 * t**2
    jac[-1, -1] = 2 * sig
    second[-1][-1, -1] = 2.0
    return jac, second


def satterthwaite_parts(fit: LmmFit) -> tuple[Array, Array]:
    """lmerTest's ``vcov_varpar`` (k, k) and ``Jac_list`` (k, p_kept, p_kept) in
    ``varpar = (theta..., sigma)`` order (cached on the fit)."""
    if "satterthwaite" not in fit.cache:
        d = variance_derivatives(fit)
        jac, second = _varpar_jacobian(fit)
        hess = jac.T @ d.hess @ jac + sum(g * h for g, h in zip(d.grad, second, strict=True))
        vals, vecs = np.linalg.eigh(0.5 * (hess + hess.T))
        pos = vals > EIGEN_TOL
        h_inv = (vecs[:, pos] / vals[pos]) @ vecs[:, pos].T
        dphi_ds = -np.einsum("ij,sjk,kl->sil", d.phi, d.pmat, d.phi)
        jac_list = np.einsum("sil,sa->ail", dphi_ds, jac)
        fit.cache["satterthwaite"] = (2 * h_inv, jac_list)
    return fit.cache["satterthwaite"]


def _satterthwaite_df(fit: LmmFit, lvec: Array) -> float:
    vcov_varpar, jac_list = satterthwaite_parts(fit)
    var = float(lvec @ _kept_vcov(fit) @ lvec)
    grad = np.einsum("i,aij,j->a", lvec, jac_list, lvec)
    return 2 * var**2 / float(grad @ vcov_varpar @ grad)


def _fstat_ddf(nu: Array, tol: float = 1e-8) -> float:
    """lmerTest's ``get_Fstat_ddf``: one denominator df from the 1-df tests' ``nu``."""
    if nu.size == 1:
        return float(nu[0])
    if np.all(np.abs(np.diff(nu)) < tol):
        return float(nu.mean())
    if np.any(nu <= 2):
        return 2.0
    e = float(np.sum(nu / (nu - 2)))
    return 2 * e / (e - nu.size)


# --------------------------------------------------------------------------------------
# Kenward-Roger (pbkrtest)
# --------------------------------------------------------------------------------------
def kenward_roger_parts(fit: LmmFit) -> tuple[Array, Array, Array]:
    """pbkrtest's adjusted covariance ``PhiA`` (p_kept, p_kept), ``P`` (k, p_kept, p_kept)
    and ``W`` (k, k) (cached on the fit). REML fits only."""
    if not fit.reml:
        raise ValueError("Kenward-Roger's method is only available for REML model fits")
    if "kenward-roger" not in fit.cache:
        d = variance_derivatives(fit)
        phi, pm, qm = d.phi, d.pmat, d.qmat
        ie2 = information_reml(phi, d.ktrace, pm, qm)
        ie2 = 0.5 * (ie2 + ie2.T)
        cond = np.min(np.abs(np.linalg.eigvalsh(ie2)))
        w = 2 * (np.linalg.inv(ie2) if cond > 1e-10 else np.linalg.pinv(ie2))
        w = 0.5 * (w + w.T)
        uu = np.einsum("ab,abij->ij", w, qm) - np.einsum("ab,aij,jk,bkl->il", w, pm, phi, pm)
        fit.cache["kenward-roger"] = (phi + 2 * phi @ uu @ phi, pm, w)
    return fit.cache["kenward-roger"]


def _kr_a1_a2(fit: LmmFit, lmat: Array) -> tuple[float, float]:
    """pbkrtest's ``A1`` and ``A2`` for the contrast ``lmat`` (q, p_kept)."""
    _, pm, w = kenward_roger_parts(fit)
    phi = variance_derivatives(fit).phi
    theta = lmat.T @ np.linalg.solve(lmat @ phi @ lmat.T, lmat)
    u = np.einsum("ij,ajk,kl->ail", theta @ phi, pm, phi)
    tr = np.einsum("aii->a", u)
    return float(tr @ w @ tr), float(np.einsum("ab,aij,bji->", w, u, u))


def _kr_ddf_and_scale(a1: float, a2: float, q: int) -> tuple[float, float]:
    """pbkrtest's denominator df and F scaling from ``A1``, ``A2`` and the rank ``q``."""
    b = (a1 + 6 * a2) / (2 * q)
    g = ((q + 1) * a1 - (q + 4) * a2) / ((q + 2) * a2)
    denom = 3 * q + 2 * (1 - g)
    c1, c2, c3 = g / denom, (q - g) / denom, (q + 2 - g) / denom
    v0 = 1 + c1 * b
    v0 = 0.0 if abs(v0) < 1e-10 else v0
    v1, v2 = 1 - c2 * b, 1 - c3 * b
    x = 1 - a2 / q
    ratio = 1.0 if abs(x) < 1e-14 and abs(v1) < 1e-14 else x / v1
    rho = ratio**2 * v0 / v2 / q
    df2 = 4 + (q + 2) / (q * rho - 1)
    scale = 1.0 if abs(df2 - 2) < 0.01 else df2 * x / (df2 - 2)
    return df2, scale


# --------------------------------------------------------------------------------------
# the tests
# --------------------------------------------------------------------------------------
def t_test(
    fit: LmmFit, contrast: ArrayLike, method: str = "satterthwaite", level: float = 0.95
) -> TTest:
    """1-df test and ``level`` confidence interval of ``L beta`` for ``contrast`` (p,)."""
    method = _check_method(method)
    lmat, why = _reduce(fit, contrast)
    if lmat is None or lmat.shape[0] != 1:
        nan = math.nan
        return TTest(nan, nan, nan, nan, nan, nan, nan, method, why or "needs one contrast row")
    lvec = lmat[0]
    est = float(lvec @ fit.beta[fit.kept])
    if method == "kenward-roger":
        var = float(lvec @ kenward_roger_parts(fit)[0] @ lvec)
        df = _kr_ddf_and_scale(*_kr_a1_a2(fit, lmat), 1)[0]
    else:
        var = float(lvec @ _kept_vcov(fit) @ lvec)
        df = _satterthwaite_df(fit, lvec) if method == "satterthwaite" else math.inf
    se = math.sqrt(var)
    dist = stats.norm if math.isinf(df) else stats.t(df)
    half = float(dist.ppf(0.5 + level / 2)) * se
    t = est / se
    return TTest(est, se, float(df), t, float(2 * dist.sf(abs(t))), est - half, est + half, method)


def f_test(fit: LmmFit, contrast: ArrayLike, method: str = "satterthwaite") -> FTest:
    """F test of ``L beta = 0`` for a contrast matrix (q, p), with the denominator df of
    lmerTest's ``anova()``/``contestMD`` (Satterthwaite) or of pbkrtest's ``KRmodcomp``."""
    method = _check_method(method)
    lmat, why = _reduce(fit, contrast)
    if lmat is None:
        return FTest(math.nan, 0, math.nan, math.nan, method, reason=why)
    if method == "kenward-roger":
        return _f_kenward_roger(fit, lmat)
    beta = fit.beta[fit.kept]
    vals, vecs = np.linalg.eigh(lmat @ _kept_vcov(fit) @ lmat.T)
    order = np.argsort(vals)[::-1]
    vals, vecs = vals[order], vecs[:, order]
    pos = vals > max(CONTRAST_EPS * vals[0], 0.0)
    q = int(pos.sum())
    if q == 0:
        return FTest(math.nan, 0, math.nan, math.nan, method, reason="contrast has rank 0")
    ptl = vecs[:, pos].T @ lmat
    f_value = float(((ptl @ beta) ** 2 / vals[pos]).sum() / q)
    if method == "wald":
        return FTest(f_value, q, math.inf, float(stats.chi2.sf(f_value * q, q)), method)
    ddf = _fstat_ddf(np.array([_satterthwaite_df(fit, row) for row in ptl]))
    return FTest(f_value, q, ddf, float(stats.f.sf(f_value, q, ddf)), method)


def _f_kenward_roger(fit: LmmFit, lmat: Array) -> FTest:
    q = int(np.linalg.matrix_rank(lmat))
    if q < lmat.shape[0]:  # pbkrtest's force_full_rank: an orthonormal basis of the rows
        lmat = np.linalg.qr(lmat.T)[0][:, :q].T
    phia = kenward_roger_parts(fit)[0]
    df2, scale = _kr_ddf_and_scale(*_kr_a1_a2(fit, lmat), q)
    lb = lmat @ fit.beta[fit.kept]
    f_u = float(lb @ np.linalg.solve(lmat @ phia @ lmat.T, lb)) / q
    f_value = scale * f_u
    p = float(stats.f.sf(f_value, q, df2))
    return FTest(f_value, q, df2, p, "kenward-roger", f_u, scale)


def coef_table(fit: LmmFit, method: str = "satterthwaite", level: float = 0.95) -> pd.DataFrame:
    """One row per fixed effect (index ``term``): estimate, se, df, t, p_value, ci_low,
    ci_high (lmerTest's ``summary()`` coefficients plus the CI)."""
    rows = {}
    for i, name in enumerate(fit.names):
        r = t_test(fit, np.eye(len(fit.names))[i], method, level)
        rows[name] = {"estimate": r.estimate, "se": r.se, "df": r.df, "t": r.t,
                      "p_value": r.p_value, "ci_low": r.ci_low, "ci_high": r.ci_high}  # fmt: skip
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("term")
