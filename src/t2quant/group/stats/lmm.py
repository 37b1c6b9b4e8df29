"""Linear mixed model with participant, level and disc (participant:level) random intercepts.

The model is lme4's::

    lmer(y ~ 0 + X + (1 | participant) + (1 | level) + (1 | participant:level), REML = reml)

(or a subset of the three random terms), fitted by lme4's method (Bates et al. 2015, J Stat
Softw 67(1), eqs. 34 and 41): the deviance is profiled over the fixed effects and the
residual variance and minimised over the relative standard deviations ``theta`` (random-effect
SD / residual SD). The factorisation at each ``theta`` is :mod:`t2quant.group.stats.cells`'
structured one, so cost and memory are linear in the rows.

Optimiser: L-BFGS-B from lme4's start ``theta = 1`` on the analytic gradient, then projected
Newton steps on a finite-difference Hessian of that gradient until the Newton decrement is
below 1e-10. Convergence, singularity and rank deficiency are judged as lme4 judges them, and
reported in lme4's words. :func:`fit_lmm` never raises on data it cannot fit: it returns
``ok=False`` with the reason.

Units: ``y`` in the outcome's unit (ms for T2); variances in that unit squared.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import linalg, optimize

from t2quant.group.stats.cells import CellLayout, Factorisation, factorise, make_layout, term_sums

__all__ = ["TERMS", "LmmFit", "Profile", "fit_lmm", "profile"]

TERMS: tuple[str, ...] = ("disc", "participant", "level")
"""Random-intercept terms, in lme4's order for the trial's tables (most levels first)."""

RANK_TOL = 1e-7
"""A column is dropped when its residual on the earlier columns is below this share of its
norm (R's ``qr(X, tol = 1e-7)``, as lme4's ``chkRank.drop.cols``)."""
SINGULAR_TOL = 1e-4
"""lme4's ``isSingular`` tolerance on ``theta``."""
GRADIENT_TOL = 2e-3
"""lme4's ``check.conv.grad`` tolerance on the scaled gradient of the deviance."""
NOISE = 1e-12
"""Relative rounding noise allowed in the deviance when a Newton step is judged (measured:
~3e-13 at 100,000 rows)."""

Array = NDArray[np.float64]


# --------------------------------------------------------------------------------------
# profiled deviance and its gradient
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Profile:
    """Profiled quantities at one ``v = theta**2`` (relative units).

    ``fac`` the factorisation; ``psi_wd`` (P, L, p + 1) ``Psi`` applied to the cell sums of
    ``[X, y]``; ``ed`` (P, L) ``Z_d' V^-1 e`` for the residuals ``e = y - X beta``; ``kw``
    (p + 1, p + 1) ``[X, y]' V^-1 [X, y]``; ``rx`` (p, p) the upper Cholesky factor of
    ``X' V^-1 X``; ``beta`` (p,); ``r2`` lme4's penalised RSS; ``deviance`` (REML or ML).
    """

    fac: Factorisation
    psi_wd: Array
    ed: Array
    kw: Array
    rx: Array
    beta: Array
    r2: float
    deviance: float


def profile(layout: CellLayout, v: Array, reml: bool) -> Profile | None:
    """The profiled deviance and its parts at relative variances ``v`` (3,), in
    :data:`TERMS` order; ``None`` when ``X' V^-1 X`` is not positive definite."""
    fac = factorise(v, layout.m)
    psi_wd = fac.psi(layout.wd)
    kw = layout.wtw - np.einsum("plj,plk->jk", layout.wd, psi_wd)
    kw = 0.5 * (kw + kw.T)
    p = kw.shape[0] - 1
    try:
        rx = linalg.cholesky(kw[:p, :p], lower=False)
    except linalg.LinAlgError:
        return None
    beta = linalg.cho_solve((rx, False), kw[:p, p])
    r2, ed = _penalised_rss(layout, fac, beta)
    n = layout.n
    if reml:
        dof = n - p
        dev = fac.logdet + 2 * np.log(np.diag(rx)).sum() + dof * (1 + np.log(2 * np.pi * r2 / dof))
    else:
        dev = fac.logdet + n * (1 + np.log(2 * np.pi * r2 / n))
    return Profile(fac, psi_wd, ed, kw, rx, beta, r2, float(dev))


def _penalised_rss(layout: CellLayout, fac: Factorisation, beta: Array) -> tuple[float, Array]:
    """lme4's penalised RSS ``e' V^-1 e`` as the sum of its two non-negative parts,
    ``|V^-1 e|^2 + sum_k v_k |Z_k' V^-1 e|^2``, from residuals computed row by row, and
    ``Z_d' V^-1 e`` (P, L). The Schur complement of ``kw`` gives the same number but loses
    ~3.5 digits to cancellation (T2 ~ 80 ms against a residual SD ~ 1.5 ms): enough, at
    100,000 rows, to blur the flat level-variance direction at 1e-4."""
    e = layout.y - layout.x @ beta
    e_d = layout.scatter(e)
    psi_e = fac.psi(e_d)
    vinv_e = e - layout.gather(psi_e)[:, 0]
    ed = (e_d - fac.m[..., None] * psi_e)[..., 0]
    r2 = float(vinv_e @ vinv_e)
    for vk, sums in zip(fac.v, term_sums(ed), strict=True):
        r2 += vk * float((sums**2).sum())
    return r2, ed


def gradient(layout: CellLayout, pr: Profile, reml: bool) -> Array:
    """Gradient (3,) of the profiled deviance with respect to ``v``, in :data:`TERMS` order:
    ``tr(V^-1 G_k)`` (minus the REML correction) minus ``dof / r2 |Z_k' V^-1 e|^2``."""
    fac, p, n = pr.fac, pr.kw.shape[0] - 1, layout.n
    e_sq = np.array([float((s**2).sum()) for s in term_sums(pr.ed)])
    grad = fac.trace_vinv_g()
    if not reml:
        return grad - n / pr.r2 * e_sq
    rd = layout.wd[..., :p] - layout.m[..., None] * pr.psi_wd[..., :p]  # Z_d' V^-1 X
    for k, sums in enumerate(term_sums(rd)):
        flat = sums.reshape(-1, p)
        grad[k] -= float((linalg.solve_triangular(pr.rx, flat.T, trans="T") ** 2).sum())
    return grad - (n - p) / pr.r2 * e_sq


# --------------------------------------------------------------------------------------
# the fit
# --------------------------------------------------------------------------------------
@dataclass
class LmmFit:
    """A fitted model, or a failed one (``ok=False``, ``reason``, numbers NaN).

    ``names`` (p,) fixed-effect names as given; ``beta`` (p,) and ``vcov`` (p, p) hold NaN
    for columns dropped as linearly dependent (lme4 drops them), ``kept`` (p,) marks the
    others. ``vcov`` is lme4's conditional covariance ``sigma^2 (X' V^-1 X)^-1`` (outcome
    unit squared). ``theta``: relative SD of each random term (lme4's ``theta``);
    ``variances``: each term's variance and ``residual`` (outcome unit squared).
    ``loglik``, ``deviance``: log-(restricted) likelihood and ``-2 loglik`` (lme4's REMLcrit
    for REML). ``singular``: some ``theta < 1e-4`` (lme4's ``isSingular``). ``messages``:
    lme4-style notes (dropped columns, convergence, singular fit). ``cache`` holds the
    derivatives that inference computes once per fit.
    """

    names: tuple[str, ...]
    beta: Array
    vcov: Array
    theta: dict[str, float]
    variances: dict[str, float]
    sigma: float
    loglik: float
    deviance: float
    reml: bool
    terms: tuple[str, ...]
    ok: bool = True
    reason: str = ""
    converged: bool = True
    singular: bool = False
    messages: tuple[str, ...] = ()
    n_obs: int = 0
    n_participants: int = 0
    n_levels: int = 0
    n_discs: int = 0
    kept: NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, bool))
    layout: CellLayout | None = field(default=None, repr=False)
    cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def se(self) -> Array:
        """Standard errors (p,) of the fixed effects."""
        return np.sqrt(np.diag(self.vcov))

    @property
    def v(self) -> Array:
        """Relative variances ``theta**2`` (3,) in :data:`TERMS` order, 0 for absent terms."""
        return np.array([self.theta.get(t, 0.0) ** 2 for t in TERMS])


def fit_lmm(
    y: ArrayLike,
    x: ArrayLike,
    participant: ArrayLike,
    level: ArrayLike,
    *,
    names: tuple[str, ...] | list[str] | None = None,
    reml: bool = True,
    terms: tuple[str, ...] = TERMS,
) -> LmmFit:
    """Fit the mixed model; never raises on data that cannot be fitted.

    Parameters
    ----------
    y : (n,) outcome. x : (n, p) dense fixed-effect design (with the intercept column).
    participant, level : (n,) grouping codes (any hashable values); the disc is their pair.
    names : (p,) fixed-effect names. reml : REML (True) or ML.
    terms : the random intercepts, a subset of :data:`TERMS` (``("participant", "disc")``
        with level in ``x`` is the ``level_fixed`` formulation).

    Returns
    -------
    LmmFit, with ``ok=False`` and a ``reason`` (lme4's wording where lme4 stops) when the
    model cannot be fitted. Bad arguments (shapes, unknown terms) raise ``ValueError``.
    """
    y_arr = np.asarray(y, dtype=float).ravel()
    x_arr = np.asarray(x, dtype=float)
    x_arr = x_arr[:, None] if x_arr.ndim == 1 else x_arr
    names = tuple(names) if names is not None else tuple(f"x{i}" for i in range(x_arr.shape[1]))
    unknown = set(terms) - set(TERMS)
    if unknown or len(names) != x_arr.shape[1] or len(y_arr) != len(x_arr):
        raise ValueError(f"bad arguments: unknown terms {unknown} or shapes of y/x/names")
    terms = tuple(t for t in TERMS if t in terms)
    layout = make_layout(y_arr, x_arr, participant, level)
    kept, dropped_note = _kept_columns(x_arr)
    problem = _unfittable(layout, terms, int(kept.sum()))
    if problem:
        return _failed(names, reml, terms, layout, problem)
    if not kept.all():
        layout = make_layout(y_arr, x_arr[:, kept], participant, level)
    opt = _optimise(layout, terms, reml)
    if opt is None:
        return _failed(names, reml, terms, layout, "the deviance could not be evaluated")
    return _result(layout, terms, reml, names, kept, dropped_note, opt)


def _kept_columns(x: Array) -> tuple[NDArray[np.bool_], str]:
    """Columns kept (p,) by R's limited-pivoting QR rule, and lme4's note if any dropped."""
    kept = np.zeros(x.shape[1], bool)
    basis = np.zeros((x.shape[0], 0))
    for j in range(x.shape[1]):
        col = x[:, j]
        norm = np.linalg.norm(col)
        res = col - basis @ (basis.T @ col)
        res -= basis @ (basis.T @ res)
        if norm > 0 and np.linalg.norm(res) >= RANK_TOL * norm:
            kept[j] = True
            basis = np.column_stack([basis, res / np.linalg.norm(res)])
    dropped = int((~kept).sum())
    if not dropped:
        return kept, ""
    plural = "s" if dropped > 1 else ""
    note = (f"fixed-effect model matrix is rank deficient so dropping {dropped} column{plural} "
            f"/ coefficient{plural}")  # fmt: skip
    return kept, note


def _unfittable(layout: CellLayout, terms: tuple[str, ...], p: int) -> str:
    """Why lme4 would stop on these data ("" when it would not)."""
    n = layout.n
    if n == 0:
        return "no rows"
    if not (np.isfinite(layout.y).all() and np.isfinite(layout.x).all()):
        return "y and X must be finite (drop rows with missing values first)"
    if p == 0:
        return "no estimable fixed effect"
    if n <= p:
        return f"{n} row(s) for {p} fixed effect(s): no residual degrees of freedom"
    n_levels = {"participant": layout.shape[0], "level": layout.shape[1], "disc": layout.n_discs}
    for t in terms:
        if n_levels[t] < 2:
            return f"grouping factor {t} has {n_levels[t]} level: it must have > 1 sampled level"
        if n_levels[t] >= n:
            return (f"number of levels of each grouping factor must be < number of "
                    f"observations ({t}: {n_levels[t]} levels, {n} observations)")  # fmt: skip
    q = sum(n_levels[t] for t in terms)
    if "disc" in terms and q >= n:
        return (f"number of observations (={n}) <= number of random effects (={q}) for term "
                "(1 | participant:level); the random-effects parameters and the residual "
                "variance (or scale parameter) are probably unidentifiable")  # fmt: skip
    return ""


def _failed(names, reml: bool, terms, layout: CellLayout, reason: str) -> LmmFit:
    p = len(names)
    return LmmFit(
        names=tuple(names),
        beta=np.full(p, np.nan),
        vcov=np.full((p, p), np.nan),
        theta={t: np.nan for t in terms},
        variances={**{t: np.nan for t in terms}, "residual": np.nan},
        sigma=np.nan,
        loglik=np.nan,
        deviance=np.nan,
        reml=reml,
        terms=tuple(terms),
        ok=False,
        reason=reason,
        converged=False,
        messages=(reason,),
        n_obs=layout.n,
        n_participants=layout.shape[0],
        n_levels=layout.shape[1],
        n_discs=layout.n_discs,
        kept=np.ones(p, bool),
    )


@dataclass(frozen=True)
class _Optimum:
    theta: Array  # (3,) in TERMS order, 0 for absent terms
    profile: Profile
    converged: bool
    note: str


class _Objective:
    """The profiled deviance and its gradient as functions of the free ``theta`` (memoised:
    the optimiser and the Hessian revisit points)."""

    def __init__(self, layout: CellLayout, mask: NDArray[np.bool_], reml: bool) -> None:
        self.layout, self.mask, self.reml = layout, mask, reml
        self.cache: dict[bytes, tuple[float, Array]] = {}

    def __call__(self, th: Array) -> tuple[float, Array]:
        key = th.tobytes()
        if key not in self.cache:
            full = np.zeros(3)
            full[self.mask] = th
            pr = profile(self.layout, full**2, self.reml)
            if pr is None or not np.isfinite(pr.deviance):
                self.cache[key] = (1e300, np.zeros_like(th))
            else:
                g = gradient(self.layout, pr, self.reml)[self.mask] * 2 * th
                self.cache[key] = (pr.deviance, g)
        return self.cache[key]


def _optimise(layout: CellLayout, terms: tuple[str, ...], reml: bool) -> _Optimum | None:
    """Minimise the deviance over ``theta >= 0``; convergence as lme4 judges it, on the
    gradient scaled by the Cholesky factor of the Hessian (``max|grad| < 2e-3``)."""
    mask = np.array([t in terms for t in TERMS])
    fun = _Objective(layout, mask, reml)
    start = np.ones(int(mask.sum()))
    res = optimize.minimize(fun, start, jac=True, method="L-BFGS-B",
                            bounds=[(0.0, None)] * start.size,
                            options={"ftol": 1e-10, "gtol": 1e-6, "maxiter": 500})  # fmt: skip
    th, scaled = _newton(fun, np.clip(res.x, 0.0, None))
    full = np.zeros(3)
    full[mask] = th
    pr = profile(layout, full**2, reml)
    if pr is None:
        return None
    converged = bool(np.isfinite(pr.deviance)) and scaled < GRADIENT_TOL
    note = "" if converged else f"Model failed to converge with max|grad| = {scaled:.3g}"
    return _Optimum(full, pr, converged, note)


def _hessian(fun: _Objective, th: Array, idx: NDArray[np.intp]) -> Array:
    """Central-difference Hessian (over ``idx``) of the analytic gradient of ``fun``."""
    h = np.empty((idx.size, idx.size))
    for c, i in enumerate(idx):
        step = 1e-5 * max(abs(th[i]), 1e-2)
        up, dn = th.copy(), th.copy()
        up[i] += step
        dn[i] = max(dn[i] - step, 0.0)
        h[:, c] = (fun(up)[1][idx] - fun(dn)[1][idx]) / (up[i] - dn[i])
    return 0.5 * (h + h.T)


def _newton(fun: _Objective, th: Array, steps: int = 8) -> tuple[Array, float]:
    """Projected Newton steps on the free ``theta`` (positive, or at 0 with a negative
    gradient); returns ``theta`` and lme4's scaled gradient ``max|chol(H)^-1 g|``.

    The steps follow the analytic gradient, which stays smooth where the deviance's value
    does not: at 100,000 rows the deviance (~6e5) carries rounding noise of ~2e-7, as large
    as the whole decrease left along the flat level-variance direction. A step is therefore
    kept unless the deviance rises by more than :data:`NOISE` of its size."""
    scaled = np.inf
    for _ in range(steps):
        f0, g0 = fun(th)
        idx = np.flatnonzero((th > 0) | (g0 < 0))
        if idx.size == 0:
            return th, 0.0
        try:
            chol = linalg.cholesky(_hessian(fun, th, idx), lower=True)
        except linalg.LinAlgError:
            return th, np.inf
        z = linalg.solve_triangular(chol, g0[idx], lower=True)
        scaled = float(np.max(np.abs(z)))
        if float(z @ z) < 1e-10:
            return th, scaled
        cand = th.copy()
        cand[idx] = np.clip(th[idx] - linalg.cho_solve((chol, True), g0[idx]), 0.0, None)
        if fun(cand)[0] > f0 + NOISE * abs(f0):
            return th, scaled
        th = cand
    return th, scaled


def _result(layout: CellLayout, terms, reml: bool, names, kept: NDArray[np.bool_],
            dropped_note: str, opt: _Optimum) -> LmmFit:  # fmt: skip
    pr = opt.profile
    n, p_kept, p = layout.n, int(kept.sum()), len(names)
    sigma2 = pr.r2 / (n - p_kept if reml else n)
    rx_inv = linalg.solve_triangular(pr.rx, np.eye(p_kept))
    beta = np.full(p, np.nan)
    beta[kept] = pr.beta
    vcov = np.full((p, p), np.nan)
    vcov[np.ix_(kept, kept)] = sigma2 * rx_inv @ rx_inv.T
    theta = {t: float(opt.theta[TERMS.index(t)]) for t in terms}
    zero = [t for t, th in theta.items() if th < SINGULAR_TOL]
    messages = [m for m in (dropped_note, opt.note) if m]
    if zero:
        messages.append("boundary (singular) fit: see help('isSingular') "
                        f"({', '.join(zero)} variance estimated at ~0)")  # fmt: skip
    variances = {t: float(sigma2 * th**2) for t, th in theta.items()}
    return LmmFit(
        names=tuple(names),
        beta=beta,
        vcov=vcov,
        theta=theta,
        variances=variances | {"residual": float(sigma2)},
        sigma=float(np.sqrt(sigma2)),
        loglik=-pr.deviance / 2,
        deviance=pr.deviance,
        reml=reml,
        terms=tuple(terms),
        converged=opt.converged,
        singular=bool(zero),
        messages=tuple(messages),
        n_obs=n,
        n_participants=layout.shape[0],
        n_levels=layout.shape[1],
        n_discs=layout.n_discs,
        kept=kept,
        layout=layout,
    )
