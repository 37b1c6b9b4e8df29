"""The disc-level linear mixed model (statsmodels ``MixedLM``), and the tests on it.

Model (``formulation="crossed"``) -- identical to lme4's::

    lmer(y ~ factor(timepoint_weeks) * group + (1|participant_id) + (1|level)
             + (1|participant_id:level), REML = TRUE)      # control = reference arm

statsmodels draws variance components within groups, so crossed participant and level
effects need one constant group with participant, level and disc (participant x level) as
variance components. The fixed part is coded with explicit indicator columns, so every
coefficient has a stable name: ``wk<w>`` (time, controls), ``run`` (arms at baseline) and
``run_wk<w>``, the between-group net difference in change from baseline at week ``w`` (ms).

``formulation="level_fixed"`` puts level in the fixed part, participant as the group and
disc as a variance component within it. On balanced data (every participant has every level
at every time point) the ``run_wk<w>`` estimates equal the crossed model's and their SEs
agree to about 1e-4; it is several times faster.

``baseline_adjustment=True`` models the change from baseline at the follow-ups with the
centred baseline outcome as a covariate; ``run_wk<w>`` is then the adjusted difference.

p-values are Wald z (statsmodels); lmerTest's Satterthwaite t-test gives slightly larger
ones in small samples.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from scipy import stats as sps

from t2quant.group.stats.config import ModelSettings

__all__ = ["Fit", "add_design", "fit_mixed", "follow_up_weeks", "net_differences", "wald_test"]

Z95 = float(sps.norm.ppf(0.975))
SINGULAR_SHARE = 1e-6


@dataclass(frozen=True)
class Fit:
    """A fitted model: coefficients, SEs and covariance (NaN when the fit failed)."""

    params: pd.Series
    bse: pd.Series
    cov: pd.DataFrame
    converged: bool
    warnings: tuple[str, ...] = ()
    variance: dict[str, float] = field(default_factory=dict)
    n_participants: int = 0
    n_discs: int = 0
    n_rows: int = 0


def follow_up_weeks(data: pd.DataFrame) -> list[int]:
    return sorted(int(w) for w in data["timepoint_weeks"].unique() if w != 0)


def add_design(
    data: pd.DataFrame, model: ModelSettings, weeks: list[int]
) -> tuple[pd.DataFrame, list[str]]:
    """Indicator columns of the fixed part and the list of its terms.

    ``data`` needs ``participant_id``, ``level``, ``timepoint_weeks``, ``group`` and the
    outcome. With baseline adjustment the rows become follow-ups only, the outcome the
    change from the disc's baseline, and ``baseline_c`` the centred baseline value.
    """
    d = data.copy()
    d["run"] = (d["group"] == "run").astype(float)
    d["_disc"] = d["participant_id"].astype(str) + ":" + d["level"].astype(str)
    for w in weeks:
        d[f"wk{w}"] = (d["timepoint_weeks"] == w).astype(float)
        d[f"run_wk{w}"] = d["run"] * d[f"wk{w}"]
    covariates = [_covariate_term(d, c) for c in model.covariates]
    if not model.baseline_adjustment:
        return d, [*(f"wk{w}" for w in weeks), "run", *(f"run_wk{w}" for w in weeks), *covariates]
    base = d[d["timepoint_weeks"] == 0].set_index("_disc")[model.outcome]
    d = d[d["timepoint_weeks"] != 0].copy()
    d["_baseline"] = d["_disc"].map(base)
    d = d[d["_baseline"].notna()].copy()
    d[model.outcome] = d[model.outcome] - d["_baseline"]
    d["baseline_c"] = d["_baseline"] - d["_baseline"].mean()
    terms = [*(f"wk{w}" for w in weeks[1:]), *(f"run_wk{w}" for w in weeks), "baseline_c"]
    return d, [*terms, *covariates]


def _covariate_term(d: pd.DataFrame, column: str) -> str:
    if pd.api.types.is_numeric_dtype(d[column]):
        d[f"{column}_c"] = d[column] - d[column].mean()
        return f"{column}_c"
    return f"C({column})"


def _model(d: pd.DataFrame, formula: str, formulation: str):
    if formulation == "level_fixed":
        return smf.mixedlm(
            formula + " + C(level)", d, groups="participant_id", re_formula="1",
            vc_formula={"disc": "0 + C(level)"},
        )  # fmt: skip
    d = d.assign(_one=1)
    return smf.mixedlm(
        formula, d, groups="_one", re_formula="0",
        vc_formula={"participant": "0 + C(participant_id)", "level": "0 + C(level)",
                    "disc": "0 + C(_disc)"},
    )  # fmt: skip


def fit_mixed(d: pd.DataFrame, terms: list[str], model: ModelSettings) -> Fit:
    """Fit the model on design rows ``d`` (from :func:`add_design`); never raises on a
    failed fit: it comes back with NaN, ``converged=False`` and the reason."""
    counts = {
        "n_participants": int(d["participant_id"].nunique()),
        "n_discs": int(d["_disc"].nunique()),
        "n_rows": len(d),
    }
    formula = f"{model.outcome} ~ " + " + ".join(terms)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            mixed = _model(d, formula, model.formulation)
            result = mixed.fit(reml=model.reml, method=["lbfgs"])
        except (np.linalg.LinAlgError, ValueError) as err:
            empty = pd.Series(dtype=float)
            return Fit(empty, empty, pd.DataFrame(), False, (f"fit failed: {err}",), **counts)
    notes = sorted({_short(w.message) for w in caught if _relevant(w)})
    result = _polish(mixed, result, model.reml)
    variance = _variances(result, model.formulation)
    total = sum(variance.values())
    notes += [
        f"singular fit: {name} variance estimated at 0"
        for name, v in variance.items()
        if name != "residual" and v <= SINGULAR_SHARE * total
    ]
    fe = list(result.fe_params.index)
    cov = pd.DataFrame(_fe_covariance(d, result, variance, model.formulation), fe, fe)
    bse = pd.Series(np.sqrt(np.diag(cov)), index=fe)
    converged = bool(result.converged) and bool(np.isfinite(bse).all())
    if not converged:
        notes.append("did not converge")
    return Fit(result.fe_params, bse, cov, converged, tuple(notes), variance, **counts)


def _polish(mixed, result, reml: bool):
    """A BFGS pass from the L-BFGS optimum. L-BFGS stops a little short (SEs off lme4 by
    up to 2e-4 relative); the polish brings them to about 1e-6. Kept only if the
    (restricted) likelihood rises."""
    if not result.converged:
        return result
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            better = mixed.fit(reml=reml, method=["bfgs"], start_params=result.params_object,
                               gtol=1e-7)  # fmt: skip
        except (np.linalg.LinAlgError, ValueError):
            return result
    ok = np.isfinite(better.llf) and better.llf >= result.llf and np.isfinite(better.bse).all()
    return better if ok else result


def _fe_covariance(d: pd.DataFrame, result, variance: dict, formulation: str) -> np.ndarray:
    """Covariance of the fixed effects given the variance components, as lme4's ``vcov``:
    ``(X' V^-1 X)^-1`` with ``V = s2 I + Z G Z'`` (Woodbury). statsmodels' own
    ``cov_params`` inverts the Hessian of every parameter together, which differs from lme4
    on unbalanced data (about 1e-3 relative on intercept and arm SEs)."""
    blocks = ["participant", "disc"] if formulation == "level_fixed" else ["participant",
              "level", "disc"]  # fmt: skip
    column = {"participant": "participant_id", "level": "level", "disc": "_disc"}
    Z = np.hstack([pd.get_dummies(d[column[b]]).to_numpy(float) for b in blocks])
    g = np.concatenate([np.full(d[column[b]].nunique(), max(variance[b], 1e-12)) for b in blocks])
    s2 = variance["residual"]
    X = np.asarray(result.model.exog)
    inner = np.diag(s2 / g) + Z.T @ Z
    ZX = Z.T @ X
    xvx = (X.T @ X - ZX.T @ np.linalg.solve(inner, ZX)) / s2
    return np.linalg.inv(xvx)


def _relevant(w: warnings.WarningMessage) -> bool:
    return not issubclass(w.category, DeprecationWarning | FutureWarning)


def _short(message) -> str:
    return " ".join(str(message).split())[:200]


def _variances(result, formulation: str) -> dict[str, float]:
    names = list(result.model.exog_vc.names)
    out = {n: float(v) for n, v in zip(names, result.vcomp, strict=True)}
    if formulation == "level_fixed":
        out["participant"] = float(np.asarray(result.cov_re)[0, 0])
    out["residual"] = float(result.scale)
    return out


def net_differences(fit: Fit, weeks: list[int], suffix: str = "") -> list[dict]:
    """Estimate, SE, 95% CI and Wald p of ``run_wk<w><suffix>`` for every follow-up week
    (``suffix="_x"``: the change per unit of a continuous moderator)."""
    rows = []
    for w in weeks:
        est = float(fit.params.get(f"run_wk{w}{suffix}", np.nan))
        se = float(fit.bse.get(f"run_wk{w}{suffix}", np.nan))
        p = float(2 * sps.norm.sf(abs(est / se))) if se > 0 else np.nan
        rows.append(
            {
                "timepoint_weeks": w,
                "estimate_ms": est,
                "se_ms": se,
                "ci_low_ms": est - Z95 * se,
                "ci_high_ms": est + Z95 * se,
                "p_value": p,
            }
        )
    return rows


def wald_test(fit: Fit, contrasts: list[dict[str, float]]) -> tuple[float, int, float]:
    """Joint Wald chi-square test that every contrast (coefficient name -> weight) is 0."""
    if not fit.converged or not contrasts:
        return np.nan, len(contrasts), np.nan
    names = list(fit.params.index)
    L = np.array([[c.get(n, 0.0) for n in names] for c in contrasts])
    b = L @ fit.params.to_numpy()
    V = L @ fit.cov.to_numpy() @ L.T
    try:
        chi2 = float(b @ np.linalg.solve(V, b))
    except np.linalg.LinAlgError:
        return np.nan, len(contrasts), np.nan
    return chi2, len(contrasts), float(sps.chi2.sf(chi2, len(contrasts)))
