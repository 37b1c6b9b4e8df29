"""The disc-level linear mixed model of the moderator stage, and the tests on it.

Model (``formulation="crossed"``), lme4's::

    lmer(y ~ factor(timepoint_weeks) * group + (1|participant_id) + (1|level)
             + (1|participant_id:level), REML = TRUE)      # control = reference arm

fitted by :func:`t2quant.group.stats.lmm.fit_lmm`. The fixed part is coded with explicit
indicator columns, so every coefficient has a stable name: ``wk<w>`` (time, controls), ``run``
(arms at baseline) and ``run_wk<w>``, the between-group net difference in change from
baseline at week ``w`` (ms). Categorical covariates ``C(col)`` are treatment-coded (sorted
levels, the first is the reference), as R and patsy code them.

``formulation="level_fixed"`` puts level in the fixed part (``C(level)``) and keeps
participant and disc random. ``baseline_adjustment=True`` models the change from baseline at
the follow-ups with the centred baseline outcome as a covariate; ``run_wk<w>`` is then the
adjusted difference.

Tests (``inference``, see :mod:`t2quant.group.stats.inference`): t tests and t-based 95% CIs
with Satterthwaite (lmerTest) or Kenward-Roger (pbkrtest) df, or Wald z; F tests with the
matching denominator df.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from t2quant.group.stats.config import ModelSettings
from t2quant.group.stats.inference import FTest, f_test, t_test
from t2quant.group.stats.lmm import TERMS, LmmFit, fit_lmm

__all__ = [
    "add_design",
    "design_matrix",
    "fit_mixed",
    "follow_up_weeks",
    "interaction_test",
    "net_differences",
]

RANDOM_TERMS = {"crossed": TERMS, "level_fixed": ("participant", "disc")}
"""The random intercepts of each formulation (``disc`` is participant x level)."""


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


def design_matrix(
    d: pd.DataFrame, terms: list[str], formulation: str
) -> tuple[np.ndarray, list[str]]:
    """The fixed-effect design (n, p) of ``terms`` with an ``Intercept`` column first, and
    the column names. ``C(col)`` becomes treatment-coded indicators ``C(col)[T.<level>]``;
    ``level_fixed`` appends ``C(level)``."""
    terms = [*terms, "C(level)"] if formulation == "level_fixed" else list(terms)
    cols, names = [np.ones(len(d))], ["Intercept"]
    for term in terms:
        if term.startswith("C(") and term.endswith(")"):
            values = d[term[2:-1]].astype(str)
            for level in sorted(values.unique())[1:]:
                cols.append((values == level).to_numpy(float))
                names.append(f"{term}[T.{level}]")
        else:
            cols.append(d[term].to_numpy(float))
            names.append(term)
    return np.column_stack(cols), names


def fit_mixed(d: pd.DataFrame, terms: list[str], model: ModelSettings) -> LmmFit:
    """Fit the model on design rows ``d`` (from :func:`add_design`); never raises on data
    that cannot be fitted: the fit comes back with ``ok=False`` and the reason."""
    x, names = design_matrix(d, terms, model.formulation)
    return fit_lmm(d[model.outcome].to_numpy(float), x, d["participant_id"].to_numpy(),
                   d["level"].to_numpy(), names=names, reml=model.reml,
                   terms=RANDOM_TERMS[model.formulation])  # fmt: skip


def net_differences(fit: LmmFit, weeks: list[int], inference: str, suffix: str = "") -> list[dict]:
    """Estimate, SE, df, t-based 95% CI and p of ``run_wk<w><suffix>`` for every follow-up
    week (``suffix="_x"``: the change per unit of a continuous moderator). Wald: df = inf
    and a z interval."""
    rows = []
    for w in weeks:
        name = f"run_wk{w}{suffix}"
        res = t_test(fit, np.array(fit.names) == name, inference) if name in fit.names else None
        rows.append({
            "timepoint_weeks": w,
            "estimate_ms": res.estimate if res else math.nan,
            "se_ms": res.se if res else math.nan,
            "ci_low_ms": res.ci_low if res else math.nan,
            "ci_high_ms": res.ci_high if res else math.nan,
            "p_value": res.p_value if res else math.nan,
            "df": res.df if res else math.nan,
        })  # fmt: skip
    return rows


def interaction_test(fit: LmmFit, contrasts: list[dict[str, float]], inference: str) -> FTest:
    """F test that every contrast (coefficient name -> weight) is 0; NaN when the fit did
    not converge or there is nothing to test."""
    if not fit.converged or not contrasts:
        why = "no contrast" if not contrasts else "the model did not converge"
        return FTest(math.nan, len(contrasts), math.nan, math.nan, inference, reason=why)
    lmat = np.array([[c.get(n, 0.0) for n in fit.names] for c in contrasts])
    return f_test(fit, lmat, inference)
