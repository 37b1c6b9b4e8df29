"""The mixed-model core without R: the structured algebra against dense n x n brute force,
statsmodels' MixedLM as an independent fit, memory, and the failure modes."""

from __future__ import annotations

import tracemalloc
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from lmm_cases import design_matrix, simulate_table
from t2quant.group.stats import inference as inf
from t2quant.group.stats.cells import CellLayout, make_layout
from t2quant.group.stats.derivatives import variance_derivatives
from t2quant.group.stats.lmm import TERMS, LmmFit, fit_lmm, gradient, profile


def _data(n=9, seed=4, **kw):
    table = simulate_table(n, seed, missing_discs=0.2, missing_rows=0.1, **kw)
    x, names = design_matrix(table)
    return table["t2_mean_ms"].to_numpy(), x, table["participant_id"], table["level"], names


def _dense_g(layout: CellLayout) -> dict[str, np.ndarray]:
    """``Z_k Z_k'`` (n, n) of every term, and the identity for the residual."""
    n_p, n_l = layout.shape
    zp, zl = np.eye(n_p)[layout.pi], np.eye(n_l)[layout.li]
    _, disc = np.unique(layout.pi * n_l + layout.li, return_inverse=True)
    zd = np.eye(disc.max() + 1)[disc]
    return {"disc": zd @ zd.T, "participant": zp @ zp.T, "level": zl @ zl.T,
            "resid": np.eye(layout.n)}  # fmt: skip


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("v", [(0.7, 2.3, 1.1), (0.0, 2.3, 1.1), (0.7, 0.0, 0.0)])
def test_profiled_deviance_equals_dense(reml, v):
    y, x, pid, lev, _ = _data()
    layout = make_layout(y, x, pid, lev)
    g = _dense_g(layout)
    vmat = np.eye(len(y)) + sum(vk * g[t] for vk, t in zip(v, TERMS, strict=True))
    vi = np.linalg.inv(vmat)
    xvx = x.T @ vi @ x
    beta = np.linalg.solve(xvx, x.T @ vi @ y)
    r2 = (y - x @ beta) @ vi @ (y - x @ beta)
    n, p = x.shape
    dof = n - p if reml else n
    dev = np.linalg.slogdet(vmat)[1] + dof * (1 + np.log(2 * np.pi * r2 / dof))
    dev += np.linalg.slogdet(xvx)[1] if reml else 0.0
    pr = profile(layout, np.array(v), reml)
    assert pr.deviance == pytest.approx(dev, rel=1e-12)
    np.testing.assert_allclose(pr.beta, beta, rtol=1e-9)


@pytest.mark.parametrize("reml", [True, False])
def test_gradient_equals_finite_differences(reml):
    y, x, pid, lev, _ = _data()
    layout = make_layout(y, x, pid, lev)
    v = np.array([0.7, 2.3, 1.1])
    grad = gradient(layout, profile(layout, v, reml), reml)

    def central(k, h):
        up, dn = v.copy(), v.copy()
        up[k] += h
        dn[k] -= h
        return (profile(layout, up, reml).deviance - profile(layout, dn, reml).deviance) / (2 * h)

    fd = [(4 * central(k, 1e-3) - central(k, 2e-3)) / 3 for k in range(3)]  # Richardson
    np.testing.assert_allclose(grad, fd, atol=1e-6)


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("terms", [TERMS, ("participant", "disc"), ("participant", "level")])
def test_variance_derivatives_equal_dense(reml, terms):
    y, x, pid, lev, names = _data()
    fit = fit_lmm(y, x, pid, lev, names=names, reml=reml, terms=terms)
    d = variance_derivatives(fit)
    g = _dense_g(fit.layout)
    gs = [g[t] for t in d.names]
    si = np.linalg.inv(sum(s * gi for s, gi in zip(d.s, gs, strict=True)))
    phi = np.linalg.inv(x.T @ si @ x)
    proj = si - si @ x @ phi @ x.T @ si
    pm = np.array([-x.T @ si @ gi @ si @ x for gi in gs])
    qm = np.array([[x.T @ si @ gi @ si @ gj @ si @ x for gj in gs] for gi in gs])
    kt = np.array([[np.trace(si @ gi @ si @ gj) for gj in gs] for gi in gs])
    yt = np.array([[y @ proj @ gi @ proj @ gj @ proj @ y for gj in gs] for gi in gs])
    if reml:
        hess = -np.array([[np.trace(proj @ gi @ proj @ gj) for gj in gs] for gi in gs]) + 2 * yt
    else:
        hess = -kt + 2 * yt
    for ours, dense in ((d.phi, phi), (d.pmat, pm), (d.qmat, qm), (d.ktrace, kt), (d.hess, hess)):
        np.testing.assert_allclose(ours, dense, rtol=1e-9, atol=1e-12 * np.abs(dense).max())
    # at the optimum the deviance is stationary in every interior variance
    interior = d.s > 1e-6 * d.s[-1]
    np.testing.assert_allclose(d.grad[interior], 0.0, atol=1e-5 * np.abs(d.hess).max())


def _statsmodels_crossed(table: pd.DataFrame, reml: bool):
    """The production model before issue 20: statsmodels' MixedLM with one constant group
    and participant, level and disc as variance components (dense n x n), polished by BFGS
    as the old code did."""
    d = table.assign(_one=1, _disc=table["participant_id"] + ":" + table["level"],
                     run=(table["group"] == "run").astype(float))  # fmt: skip
    for w in (6, 12):
        d[f"wk{w}"] = (d["timepoint_weeks"] == w).astype(float)
        d[f"run_wk{w}"] = d["run"] * d[f"wk{w}"]
    model = smf.mixedlm("t2_mean_ms ~ wk6 + wk12 + run + run_wk6 + run_wk12", d, groups="_one",
                        re_formula="0", vc_formula={"participant": "0 + C(participant_id)",
                                                    "level": "0 + C(level)",
                                                    "disc": "0 + C(_disc)"})  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = model.fit(reml=reml, method=["lbfgs"])
        return model.fit(reml=reml, method=["bfgs"], start_params=first.params_object, gtol=1e-7)


@pytest.mark.parametrize("reml", [True, False])
def test_crossed_fit_equals_statsmodels_mixedlm(reml):
    table = simulate_table(10, 7, missing_discs=0.15)
    x, names = design_matrix(table)
    fit = fit_lmm(table["t2_mean_ms"], x, table["participant_id"], table["level"], names=names,
                  reml=reml)  # fmt: skip
    sm = _statsmodels_crossed(table, reml)
    np.testing.assert_allclose(fit.beta, sm.fe_params.to_numpy(), rtol=1e-7)
    vcomp = dict(zip(sm.model.exog_vc.names, sm.vcomp, strict=True)) | {"residual": sm.scale}
    for term, value in fit.variances.items():  # measured: <= 4.4e-6 (statsmodels' stop)
        assert value == pytest.approx(vcomp[term], rel=2e-5), term
    assert fit.loglik >= sm.llf - 1e-9  # statsmodels' optimum is never the better one
    assert fit.loglik == pytest.approx(sm.llf, rel=1e-9)


def test_never_forms_an_n_by_n_matrix():
    """Peak memory of a 2,000-participant fit with inference stays linear in rows (an
    n x n float matrix at n = 42,000 would be 14 GB)."""
    table = simulate_table(2000, 1)
    x, names = design_matrix(table)
    tracemalloc.start()
    fit = fit_lmm(table["t2_mean_ms"], x, table["participant_id"], table["level"], names=names)
    inf.coef_table(fit, "satterthwaite")
    inf.f_test(fit, np.eye(6)[4:], "kenward-roger")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 2_000 * len(table)  # bytes: ~250 doubles per row at most


# ------------------------------------------------------------------ failure modes
def test_a_subgroup_with_one_participant_is_a_failed_fit_with_lme4s_reason():
    y, x, pid, lev, names = _data(n=1)
    fit = fit_lmm(y, x, pid, lev, names=names)
    assert not fit.ok and np.isnan(fit.beta).all()
    assert "participant has 1 level" in fit.reason and "> 1 sampled level" in fit.reason
    res = inf.t_test(fit, np.eye(6)[5])
    assert np.isnan(res.p_value) and "not fitted" in res.reason
    assert np.isnan(inf.f_test(fit, np.eye(6)[4:]).p_value)


def test_too_few_rows_and_non_finite_values_are_reasons_not_exceptions():
    y, x, pid, lev, names = _data()
    square = np.random.default_rng(0).normal(size=(6, 6))  # 6 rows, 6 independent columns
    fit = fit_lmm(y[:6], square, pid[:6], lev[:6], names=names)
    assert not fit.ok and "no residual degrees of freedom" in fit.reason
    y2 = y.copy()
    y2[3] = np.nan
    assert "finite" in fit_lmm(y2, x, pid, lev, names=names).reason


def test_disc_term_with_one_row_per_disc_is_unidentifiable_as_in_lme4():
    y, x, pid, lev, _ = _data(n=12)
    base = (x[:, 1] == 0) & (x[:, 2] == 0)  # baseline rows only: one row per disc
    fit = fit_lmm(y[base], x[base][:, [0, 3]], pid[base], lev[base], names=["a", "b"])
    assert not fit.ok and "number of levels of each grouping factor" in fit.reason


def test_rank_deficient_columns_are_dropped_as_lme4_does():
    y, x, pid, lev, names = _data(n=12)
    x2 = np.column_stack([x, x[:, 4] + x[:, 5]])  # a dependent column
    fit = fit_lmm(y, x2, pid, lev, names=[*names, "dup"])
    full = fit_lmm(y, x, pid, lev, names=names)
    assert fit.ok and list(fit.kept) == [True] * 6 + [False]
    assert "rank deficient so dropping 1 column" in fit.messages[0]
    np.testing.assert_allclose(fit.beta[:6], full.beta, rtol=1e-10)
    assert np.isnan(fit.beta[6]) and np.isnan(fit.se[6])
    res = inf.t_test(fit, np.eye(7)[6])
    assert np.isnan(res.estimate) and "dropped" in res.reason
    assert inf.t_test(fit, np.eye(7)[5]).p_value == pytest.approx(
        inf.t_test(full, np.eye(6)[5]).p_value, rel=1e-8
    )


def test_singular_fit_is_reported_like_lme4():
    y, x, pid, lev, names = _data(n=10, seed=0, sd_participant=0.0)
    fit = fit_lmm(y, x, pid, lev, names=names)
    assert fit.ok and fit.converged and fit.singular
    assert any("boundary (singular) fit" in m for m in fit.messages)
    assert fit.theta["participant"] < 1e-4
    tt = inf.t_test(fit, np.eye(6)[5])
    assert np.isfinite(tt.df) and tt.ci_low < tt.estimate < tt.ci_high


def test_kenward_roger_needs_reml_and_unknown_methods_are_errors():
    y, x, pid, lev, names = _data()
    ml = fit_lmm(y, x, pid, lev, names=names, reml=False)
    with pytest.raises(ValueError, match="only available for REML"):
        inf.t_test(ml, np.eye(6)[5], "kenward-roger")
    with pytest.raises(ValueError, match="inference must be one of"):
        inf.t_test(ml, np.eye(6)[5], "bootstrap")


def test_wald_is_z_and_chi_square():
    y, x, pid, lev, names = _data()
    fit = fit_lmm(y, x, pid, lev, names=names)
    t = inf.t_test(fit, np.eye(6)[5], "wald")
    assert t.df == np.inf and t.ci_high - t.estimate == pytest.approx(1.959964 * t.se, rel=1e-6)
    f = inf.f_test(fit, np.eye(6)[4:], "wald")
    b, v = fit.beta[4:], fit.vcov[4:, 4:]
    assert f.f_value * 2 == pytest.approx(b @ np.linalg.solve(v, b), rel=1e-10)
    assert f.den_df == np.inf


def test_wald_test_by_hand():
    """chi2 = b' V^-1 b on a fit written by hand (the old ``wald_test`` check)."""
    fit = LmmFit(names=("a", "b"), beta=np.array([2.0, 1.0]), vcov=np.diag([1.0, 4.0]),
                 theta={}, variances={}, sigma=1.0, loglik=0.0, deviance=0.0, reml=True,
                 terms=(), kept=np.ones(2, bool))  # fmt: skip
    f = inf.f_test(fit, np.eye(2), "wald")
    assert f.f_value * f.num_df == pytest.approx(4.0 + 0.25) and f.num_df == 2
    assert f.p_value == pytest.approx(np.exp(-4.25 / 2))  # chi2 with 2 df: sf = exp(-x/2)


def test_satterthwaite_and_kenward_roger_approach_z_with_many_participants():
    """Large samples: the df grow and both intervals approach the z interval."""
    table = simulate_table(300, 3)
    x, names = design_matrix(table)
    fit = fit_lmm(table["t2_mean_ms"], x, table["participant_id"], table["level"], names=names)
    z = inf.t_test(fit, np.eye(6)[5], "wald")
    for method in ("satterthwaite", "kenward-roger"):
        t = inf.t_test(fit, np.eye(6)[5], method)
        assert t.df > 250 and t.estimate == z.estimate
        assert t.ci_high - t.ci_low == pytest.approx(z.ci_high - z.ci_low, rel=5e-3)
