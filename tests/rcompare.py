"""Comparison of t2quant's t and F tests with R's (lmerTest/pbkrtest keys of
:func:`t2quant.validation.rcheck.run_r`), to relative 1e-4, shared by ``test_lmm_vs_r.py``
and ``test_lme4.py``."""

from __future__ import annotations

import numpy as np

from t2quant.group.stats import inference as inf

RTOL = 1e-4
METHODS = {"satterthwaite": "sat", "kenward-roger": "kr"}
"""t2quant's method -> the prefix of R's keys."""
T_COLUMNS = {"estimate": "Estimate", "se": "Std. Error", "df": "df", "t": "t value",
             "ci_low": "lower", "ci_high": "upper", "p_value": "Pr(>|t|)"}  # fmt: skip
F_COLUMNS = {"den_df": "DenDF", "f_value": "F value", "p_value": "Pr(>F)"}


def close(ours, theirs, what: str, rtol: float = RTOL, atol: float = 0.0) -> None:
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol, err_msg=what)


def close_p(ours: float, theirs: float, what: str) -> None:
    """p-values: relative 1e-4; below 1e-6 on the log scale, where p is ill-conditioned
    (at t = 33, df = 13 a 1e-5 relative change of df, numDeriv's accuracy inside lmerTest,
    moves p by 2e-4 relative)."""
    if theirs > 1e-6:
        close(ours, theirs, what)
    else:
        close(np.log(ours), np.log(theirs), what + " (log scale)")


def check_t(res: inf.TTest, r: dict[str, float], prefix: str, what: str) -> None:
    """Every column of a t test against lmerTest's ``contest1D`` keys ``prefix<column>``."""
    for attr, col in T_COLUMNS.items():
        check = close_p if attr == "p_value" else close
        check(getattr(res, attr), r[prefix + col], f"{what} {col}")


def check_f(res: inf.FTest, r: dict[str, float], prefix: str, what: str) -> None:
    """An F test against lmerTest's ``contestMD``/``anova()`` keys ``prefix<column>``."""
    assert res.num_df == r[prefix + "NumDF"], f"{what} NumDF"
    for attr, col in F_COLUMNS.items():
        check = close_p if attr == "p_value" else close
        check(getattr(res, attr), r[prefix + col], f"{what} {col}")
