"""The moderator stage's model against R (lme4, lmerTest, pbkrtest), fitted on the same rows.

The overall model and subgroups of the 40-participant synthetic trial -- balanced, with
missing discs, a patient subgroup, runners of one quartile against all controls (unbalanced
arms) and the discs of one grade (unbalanced levels) -- with REML and with ML:

- fixed effects and SEs equal lme4's (default ``lmerControl()``) to relative 1e-4;
- every net difference's estimate, SE, df, t, p and 95% CI bounds equal lmerTest's
  ``contest1D`` (Satterthwaite) and, for REML, pbkrtest's Kenward-Roger (as lmerTest's
  ``contest1D(ddf = "Kenward-Roger")``) to relative 1e-4;
- the interaction F tests in ``interactions.tsv`` equal lmerTest's ``anova()`` (patient
  moderator: the ``week:group:moderator`` row) and ``contestMD`` (intervention moderator:
  the stage's own contrast) to relative 1e-4.

The inference checks compare with lme4 run to a tight optimiser tolerance (BOBYQA to
``ftol_abs = 1e-14``): with lme4's default ``ftol_abs = 1e-8`` the flat level-variance
direction stops short, which moves Satterthwaite df and p by up to ~1.2e-4 relative in
the prototype's measurements -- lme4's stopping rule, not a difference of method (see
``tests/test_lmm_vs_r.py::test_default_lme4_is_never_a_better_optimum``).

Skipped, with the reason, where Rscript, lme4, lmerTest or pbkrtest is missing; CI installs
them (``.ci/system-packages``).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from rcompare import METHODS, check_f, check_t
from t2quant.group.stats import load_config, run_moderators
from t2quant.group.stats.config import CATALOGUE
from t2quant.group.stats.inference import FTest, TTest
from t2quant.group.stats.mixed import add_design, design_matrix, fit_mixed, net_differences
from t2quant.group.stats.moderators import interaction_model
from t2quant.group.stats.prepare import analysis_rows, assign_subgroups
from t2quant.synth.table import simulate_disc_table
from t2quant.validation.rcheck import RModel, r_available, run_r, run_r_anova

pytestmark = pytest.mark.slow

OURS = ["Intercept", "wk6", "wk12", "run", "run_wk6", "run_wk12"]


def _trial(n=40, seed=1) -> pd.DataFrame:
    table, _ = simulate_disc_table(n, seed)
    table = table.rename(columns={"pfirrmann": "pfirrmann_baseline"})
    table["aggregated_pfirrmann_baseline"] = table.groupby(["participant_id", "session"])[
        "pfirrmann_baseline"
    ].transform("sum")
    return table


def _subsets() -> dict[str, pd.DataFrame]:
    table = _trial()
    sex, _, _ = assign_subgroups(table, CATALOGUE["sex"])
    volume, order, _ = assign_subgroups(table, CATALOGUE["running_volume_quartile"])
    grade, _, _ = assign_subgroups(table, CATALOGUE["pfirrmann_category"])
    gone = np.random.default_rng(3).random(len(table)) < 0.1  # failed discs, single sessions
    return {
        "overall": table,
        "overall, 10% of disc rows missing": table.assign(
            t2_mean_ms=table["t2_mean_ms"].where(~gone)
        ),
        "sex F": table[sex == "F"],
        "running volume Q2 vs all controls": table[
            (volume == order[1]) | (table.group == "control")
        ],
        "moderate discs (unbalanced)": table[grade == "moderate"],
    }


def _model(reml: bool, inference: str = "satterthwaite"):
    return replace(load_config(moderators=["none"]).model, reml=reml, inference=inference)


def _design(data: pd.DataFrame, reml: bool):
    model = _model(reml)
    rows, _ = analysis_rows(data.reset_index(drop=True), model)
    design, terms = add_design(rows, model, [6, 12])
    x, names = design_matrix(design, terms, model.formulation)
    return design, terms, x, names


def _r_model(design: pd.DataFrame, x: np.ndarray, **kw) -> RModel:
    return RModel(design["t2_mean_ms"].to_numpy(), x, design["participant_id"].to_numpy(),
                  design["level"].to_numpy(), **kw)  # fmt: skip


def _intervention_interaction(reml: bool):
    """The stage's interaction model for running-volume quartiles (runner subgroups against
    all controls): its rows, design and contrasts by week label."""
    model = _model(reml)
    rows, _ = analysis_rows(_trial(), model)
    design, terms = add_design(rows, model, [6, 12])
    m = CATALOGUE["running_volume_quartile"]
    groups, order, _ = assign_subgroups(design, m)
    task = interaction_model(design, terms, m, groups, order, [6, 12])
    x, names = design_matrix(task.rows, list(task.terms), model.formulation)
    picks = {"6": [c for w, c in task.contrasts if w == 6],
             "12": [c for w, c in task.contrasts if w == 12],
             "all": [c for _, c in task.contrasts]}  # fmt: skip
    contrasts = {k: np.array([[c.get(n, 0.0) for n in names] for c in v]) for k, v in picks.items()}
    return task.rows, x, contrasts


@pytest.fixture(scope="module")
def lme4_runs():
    """Every subset and REML/ML: lme4 with default control, lmerTest/pbkrtest with tight
    control; and the intervention moderator's interaction model. One Rscript."""
    reason = r_available()
    if reason:
        pytest.skip(reason)
    models, keys = [], []
    for subset, data in _subsets().items():
        for reml in (True, False):
            design, _, x, names = _design(data, reml)
            net = {"net6": np.array(names) == "run_wk6", "net12": np.array(names) == "run_wk12"}
            models += [_r_model(design, x, reml=reml, mode="fit", tight=False),
                       _r_model(design, x, reml=reml, contrasts=net)]  # fmt: skip
            keys += [(subset, reml, "default"), (subset, reml, "tight")]
    for reml in (True, False):
        rows, x, contrasts = _intervention_interaction(reml)
        models.append(_r_model(rows, x, reml=reml, contrasts=contrasts))
        keys.append(("running_volume_quartile interaction", reml, "tight"))
    return dict(zip(keys, run_r(models), strict=True))


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("subset", list(_subsets()))
def test_fixed_effects_and_ses_match_lme4(lme4_runs, subset, reml):
    design, terms, _, _ = _design(_subsets()[subset], reml)
    fit = fit_mixed(design, terms, _model(reml))
    assert fit.converged
    lme4 = lme4_runs[(subset, reml, "default")]
    params = pd.Series(fit.beta, index=fit.names)[OURS]
    bse = pd.Series(fit.se, index=fit.names)[OURS]
    np.testing.assert_allclose(params, [lme4[f"beta:x{i}"] for i in range(6)], rtol=1e-4,
                               atol=1e-8)  # fmt: skip
    np.testing.assert_allclose(bse, [lme4[f"se:x{i}"] for i in range(6)], rtol=1e-4)


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("subset", list(_subsets()))
def test_net_differences_match_lmertest_and_pbkrtest(lme4_runs, subset, reml):
    design, terms, _, _ = _design(_subsets()[subset], reml)
    r = lme4_runs[(subset, reml, "tight")]
    for method, key in METHODS.items():
        if method == "kenward-roger" and not reml:
            continue
        fit = fit_mixed(design, terms, _model(reml, method))
        for row in net_differences(fit, [6, 12], method):
            prefix = f"{key}:c1:net{row['timepoint_weeks']}:"
            res = TTest(row["estimate_ms"], row["se_ms"], row["df"],
                        row["estimate_ms"] / row["se_ms"], row["p_value"], row["ci_low_ms"],
                        row["ci_high_ms"], method)  # fmt: skip
            check_t(res, r, prefix, f"{subset} {method} week {row['timepoint_weeks']}")


@pytest.mark.parametrize("reml", [True, False])
def test_patient_moderator_interaction_matches_anova(lme4_runs, reml):
    table = _trial(24, 2)
    m = CATALOGUE["bmi_quartile"]
    config = replace(load_config(moderators=[m.name]), model=_model(reml))
    data, _ = analysis_rows(table, config.model)
    groups, _, _ = assign_subgroups(data, m)
    r_table = pd.DataFrame({"y": data["t2_mean_ms"], "participant": data["participant_id"],
                            "level": data["level"], "week": data["timepoint_weeks"],
                            "group": data["group"], "moderator": groups})  # fmt: skip
    r, _ = run_r_anova(r_table, reml=reml)
    for method, key in METHODS.items():
        if method == "kenward-roger" and not reml:
            continue
        config = replace(config, model=replace(config.model, inference=method))
        inter = run_moderators(table, config).interactions.set_index("timepoint_weeks")
        row = inter.loc["all"]
        res = FTest(row["F"], row["num_df"], row["den_df"], row["p_value"], method)
        assert row["num_df"] == 6  # 3 quartile contrasts x 2 weeks
        check_f(res, r, f"{key}:week:group:moderator:", f"{method} anova")


@pytest.mark.parametrize("reml", [True, False])
def test_intervention_moderator_interaction_matches_contestmd(lme4_runs, reml):
    r = lme4_runs[("running_volume_quartile interaction", reml, "tight")]
    config = replace(load_config(moderators=["running_volume_quartile"]), model=_model(reml))
    for method, key in METHODS.items():
        if method == "kenward-roger" and not reml:
            continue
        config = replace(config, model=replace(config.model, inference=method))
        inter = run_moderators(_trial(), config).interactions
        assert inter["num_df"].tolist() == [3, 3, 6]  # 4 runner quartiles; weeks 6, 12, joint
        for row in inter.itertuples():
            label = str(row.timepoint_weeks)
            res = FTest(row.F, row.num_df, row.den_df, row.p_value, method)
            check_f(res, r, f"{key}:cF:{label}:", f"{method} week {label}")
