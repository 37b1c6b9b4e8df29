"""The moderator stage: quartiles, model, subgroups, tests, outputs and bad input."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from t2quant.cli import main
from t2quant.errors import InputError
from t2quant.group.stats import DEFAULT, load_config, run_moderators
from t2quant.group.stats.config import Moderator
from t2quant.group.stats.lmm import LmmFit
from t2quant.group.stats.mixed import interaction_test
from t2quant.group.stats.prepare import assign_subgroups, quartile_cuts, quartile_labels
from t2quant.synth.table import simulate_disc_table, true_subgroup_effects


def study(n=40, seed=1):
    table, truth = simulate_disc_table(n, seed)
    table = table.rename(columns={"pfirrmann": "pfirrmann_baseline"})
    table["aggregated_pfirrmann_baseline"] = table.groupby(["participant_id", "session"])[
        "pfirrmann_baseline"
    ].transform("sum")
    return table, truth


@pytest.fixture(scope="module")
def results():
    table, truth = study()
    return table, truth, run_moderators(table, DEFAULT)


def test_quartile_cuts_and_ties_follow_the_documented_rule():
    # type-7 percentiles of 1..8: 2.75, 4.5, 6.25
    assert quartile_cuts(pd.Series(range(1, 9))) == (2.75, 4.5, 6.25)
    table = pd.DataFrame({
        "participant_id": [f"p{i}" for i in range(8)], "group": ["run"] * 8,
        "timepoint_weeks": 0, "speed": [5, 5, 5, 5, 5, 5, 7, 9],
    })  # fmt: skip
    moderator = Moderator("speed_q", "speed", "quartiles", "intervention")
    groups, order, details = assign_subgroups(table, moderator)
    assert details["cut_points"] == [5.0, 5.0, 5.5]
    assert order == quartile_labels((5.0, 5.0, 5.5))
    counts = groups.value_counts().reindex(order, fill_value=0).tolist()
    assert counts == [6, 0, 0, 2]  # ties go to the lower quartile; Q2 and Q3 are empty


def test_overall_model_recovers_the_true_effect(results):
    table, truth, r = results
    overall = r.moderators[r.moderators["moderator"] == "overall"].set_index("timepoint_weeks")
    true = true_subgroup_effects(table, truth)
    for week in (6, 12):
        row = overall.loc[week]
        assert row.ci_low_ms < true[week] < row.ci_high_ms
        assert row.n_participants == 40 and row.n_discs == 280 and row.converged
    assert r.overall.variances["residual"] == pytest.approx(1.5**2, rel=0.25)


def test_estimates_have_satterthwaite_t_intervals(results):
    _, _, r = results
    rows = r.moderators[r.moderators["estimate_ms"].notna()]
    assert (rows["inference"] == "satterthwaite").all()
    assert rows["df"].between(2, 1000).all()
    t = stats.t.ppf(0.975, rows["df"])
    np.testing.assert_allclose(rows["ci_high_ms"] - rows["estimate_ms"], t * rows["se_ms"])
    np.testing.assert_allclose(rows["estimate_ms"] - rows["ci_low_ms"], t * rows["se_ms"])
    z = np.abs(rows["estimate_ms"] / rows["se_ms"])
    np.testing.assert_allclose(rows["p_value"], 2 * stats.t.sf(z, rows["df"]), rtol=1e-8)
    assert (t > stats.norm.ppf(0.975)).all()  # wider than the z interval


def test_runner_subgroups_are_compared_with_all_controls(results):
    table, truth, r = results
    rows = r.moderators[r.moderators["moderator"] == "dominant_surface"]
    assert set(rows["n_control"]) == {20} and rows["n_run"].sum() == 2 * 20
    covered = []
    for _, row in rows[rows["timepoint_weeks"] == 12].iterrows():
        runners = table[(table["dominant_surface"] == row.subgroup) | (table["group"] == "control")]
        true = true_subgroup_effects(runners, truth)[12]
        covered.append(row.ci_low_ms < true < row.ci_high_ms)
    assert sum(covered) >= 3


def test_fdr_is_benjamini_hochberg_over_subgroup_rows(results):
    _, _, r = results
    rows = r.moderators[(r.moderators["moderator"] != "overall") & r.moderators["p_value"].notna()]
    p = rows["p_value"].to_numpy()
    order = np.argsort(p)
    ranked = p[order] * len(p) / np.arange(1, len(p) + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    np.testing.assert_allclose(rows["p_fdr"].to_numpy()[order], np.minimum(adjusted, 1.0))
    assert r.moderators.loc[r.moderators["moderator"] == "overall", "p_fdr"].isna().all()


def test_interaction_tests_are_reported_per_week_and_jointly(results):
    _, _, r = results
    surf = r.interactions[r.interactions["moderator"] == "dominant_surface"]
    assert surf["timepoint_weeks"].astype(str).tolist() == ["6", "12", "all"]
    assert surf["num_df"].tolist() == [3, 3, 6]
    assert surf["converged"].all() and surf["p_value"].between(0, 1).all()
    assert (surf["inference"] == "satterthwaite").all() and surf["den_df"].between(2, 1e4).all()
    assert np.isfinite(r.interactions["p_value"]).all()  # every interaction model is fitted


def test_interaction_tests_have_their_own_fdr_family(results):
    _, _, r = results
    inter = r.interactions
    p = inter["p_value"].to_numpy()
    order = np.argsort(p)
    ranked = p[order] * len(p) / np.arange(1, len(p) + 1)
    adjusted = np.minimum(np.minimum.accumulate(ranked[::-1])[::-1], 1.0)
    np.testing.assert_allclose(inter["p_fdr"].to_numpy()[order], adjusted)


def test_wald_test_by_hand():
    fit = LmmFit(names=("a", "b"), beta=np.array([2.0, 1.0]), vcov=np.diag([1.0, 4.0]),
                 theta={}, variances={}, sigma=1.0, loglik=0.0, deviance=0.0, reml=True,
                 terms=(), kept=np.ones(2, bool))  # fmt: skip
    res = interaction_test(fit, [{"a": 1.0}, {"b": 1.0}], "wald")
    chi2, df, p = res.f_value * res.num_df, res.num_df, res.p_value
    assert chi2 == pytest.approx(4.0 + 0.25) and df == 2 and res.den_df == np.inf
    assert p == pytest.approx(np.exp(-4.25 / 2))  # chi2 with 2 df: sf = exp(-x/2)


def test_level_fixed_formulation_equals_the_crossed_one_on_balanced_data():
    table, _ = study(12, seed=4)
    config = load_config(moderators=["none"])
    crossed = run_moderators(table, config).moderators
    fast = replace(config, model=replace(config.model, formulation="level_fixed"))
    fixed = run_moderators(table, fast).moderators
    np.testing.assert_allclose(fixed["estimate_ms"], crossed["estimate_ms"], rtol=1e-6)
    np.testing.assert_allclose(fixed["se_ms"], crossed["se_ms"], rtol=2e-4)


def test_small_subgroups_and_failed_discs_are_rows_with_reasons():
    table, _ = study(12, seed=2)
    table.loc[table.index[:5], ["t2_mean_ms", "qc_status"]] = [np.nan, "failed"]
    config = load_config(moderators=["bmi_quartile", "sex"])
    config = replace(config, model=replace(config.model, min_participants_per_arm=4))
    r = run_moderators(table, config)
    assert r.n_rows_left_out == 5
    small = r.moderators[r.moderators["warning"].str.startswith("too small")]
    assert len(small) >= 2 and small["estimate_ms"].isna().all()
    assert set(r.moderators["moderator"]) == {"overall", "bmi_quartile", "sex"}
    assert (r.moderators.groupby("moderator").size() >= 2).all()


def test_baseline_adjusted_model_recovers_the_effect():
    table, truth = study(40, seed=6)
    config = load_config(moderators=["none"])
    config = replace(config, model=replace(config.model, baseline_adjustment=True,
                                           covariates=("bmi",)))  # fmt: skip
    r = run_moderators(table, config).moderators.set_index("timepoint_weeks")
    true = true_subgroup_effects(table, truth)
    for week in (6, 12):
        assert r.loc[week, "ci_low_ms"] < true[week] < r.loc[week, "ci_high_ms"]
        assert r.loc[week, "n_discs"] == 280


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.drop(columns="level"), r"missing column\(s\) \['level'\]"),
        (lambda t: t.assign(group="run"), "both arms"),
        (lambda t: t[t["timepoint_weeks"] == 0], "at least one follow-up"),
        (
            lambda t: t.assign(
                t2_mean_ms=t["t2_mean_ms"].astype(object).where(t.index != 3, "eighty")
            ),
            "must be numeric; 1 value",
        ),
    ],
)
def test_bad_tables_get_clear_errors(tmp_path, capsys, change, message):
    table, _ = study(6, seed=0)
    path = tmp_path / "discs.tsv"
    change(table).to_csv(path, sep="\t", index=False)
    assert main(["stats", str(path), "-o", str(tmp_path / "out"), "--moderators", "none"]) == 2
    err = capsys.readouterr().err
    assert str(path) in err
    assert re.search(message, err)


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ('inference = "bayes"', r"inference must be one of 'satterthwaite'.*got 'bayes'"),
        ("inference = 3", r"inference must be one of .*got 3"),
        ('inference = "kenward-roger"\nreml = false', r"inference = 'kenward-roger' needs reml"),
    ],
)
def test_inference_setting_is_validated(tmp_path, model, message):
    path = tmp_path / "bad.toml"
    path.write_text(f"[model]\n{model}\n")
    with pytest.raises(InputError, match=message) as err:
        load_config(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_unknown_moderator_and_config_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown moderator"):
        load_config(moderators=["shoe_size"])
    bad = tmp_path / "bad.toml"
    bad.write_text('[model]\nreml = true\nmoderators = ["sex"]\n')
    with pytest.raises(ValueError, match=r"unknown \[model\] setting"):
        load_config(bad)
    good = tmp_path / "good.toml"
    good.write_text('moderators = ["age_q"]\n[custom.age_q]\ncolumn = "age"\nscale = "quartiles"\n')
    assert load_config(good).moderators[0].column == "age"


def test_stats_command_writes_every_output(tmp_path):
    table, _ = study(16, seed=3)
    table.to_csv(tmp_path / "discs.tsv", sep="\t", index=False)
    out = tmp_path / "stats"
    args = ["stats", str(tmp_path / "discs.tsv"), "-o", str(out), "--config",
            "pipelines/asteroid.toml", "--moderators", "sex", "dominant_surface"]  # fmt: skip
    assert main(args) == 0
    mods = pd.read_csv(out / "moderators.tsv", sep="\t")
    assert list(mods.columns[:13]) == [
        "moderator", "subgroup", "timepoint_weeks", "estimate_ms", "se_ms", "ci_low_ms",
        "ci_high_ms", "p_value", "p_fdr", "n_participants", "n_discs", "converged", "warning",
    ]  # fmt: skip
    assert list(mods.columns[13:]) == ["n_run", "n_control", "df", "inference"]
    assert mods.iloc[0]["moderator"] == "overall" and mods.iloc[0]["subgroup"] == "all"
    inter = pd.read_csv(out / "interactions.tsv", sep="\t")
    assert list(inter.columns) == [
        "moderator", "timepoint_weeks", "test", "F", "num_df", "den_df", "p_value", "p_fdr",
        "inference", "n_participants", "converged", "warning",
    ]  # fmt: skip
    for name in ("forest_week06.png", "forest_week06.svg", "forest_week12.png", "summary.md"):
        assert (out / name).stat().st_size > 0
    record = json.loads((out / "stats.json").read_text())
    assert record["Model"]["formulation"] == "crossed" and record["FollowUpWeeks"] == [6, 12]
    assert record["Model"]["inference"] == "satterthwaite"
    summary = (out / "summary.md").read_text()
    assert "week 12" in summary and "exploratory" in summary
    assert summary.index("## Interaction tests") < summary.index("## Subgroup estimates")
    assert "Benjamini-Hochberg across every interaction test" in summary
    sex_p = inter[(inter["moderator"] == "sex") & (inter["timepoint_weeks"] == "12")]["p_value"]
    svg = (out / "forest_week12.svg").read_text()
    assert f"interaction p={sex_p.iloc[0]:.3f}" in svg and "(exploratory)" in svg
    assert "Benjamini-Hochberg" in svg


@pytest.mark.parametrize("method", ["wald", "kenward-roger"])
def test_stats_command_inference_option(tmp_path, method):
    table, _ = study(12, seed=3)
    table.to_csv(tmp_path / "discs.tsv", sep="\t", index=False)
    out = tmp_path / "stats"
    args = ["stats", str(tmp_path / "discs.tsv"), "-o", str(out), "--moderators", "sex",
            "--inference", method]  # fmt: skip
    assert main(args) == 0
    mods = pd.read_csv(out / "moderators.tsv", sep="\t")
    inter = pd.read_csv(out / "interactions.tsv", sep="\t")
    assert (mods["inference"] == method).all() and (inter["inference"] == method).all()
    half = mods["ci_high_ms"] - mods["estimate_ms"]
    if method == "wald":
        assert np.isinf(mods["df"]).all() and np.isinf(inter["den_df"]).all()
        np.testing.assert_allclose(half, stats.norm.ppf(0.975) * mods["se_ms"])
    else:
        np.testing.assert_allclose(half, stats.t.ppf(0.975, mods["df"]) * mods["se_ms"])
    assert json.loads((out / "stats.json").read_text())["Model"]["inference"] == method


def test_a_moderator_that_cannot_be_cut_is_a_row_saying_why():
    table, _ = study(6, seed=1)  # 3 runners: too few to cut running-volume quartiles
    r = run_moderators(table, load_config(moderators=["running_volume_quartile"]))
    rows = r.moderators[r.moderators["moderator"] == "running_volume_quartile"]
    assert len(rows) == 2 and rows["estimate_ms"].isna().all()
    assert rows["warning"].str.contains("at least 4 participants").all()


def test_a_subgroup_without_week_12_runners_keeps_its_rows_with_the_reason():
    table, _ = study(16, seed=5)
    female_runners = (table["sex"] == "F") & (table["group"] == "run")
    table.loc[female_runners & (table["timepoint_weeks"] == 12), "t2_mean_ms"] = np.nan
    r = run_moderators(table, load_config(moderators=["sex"]))
    rows = r.moderators[r.moderators["subgroup"] == "F"].set_index("timepoint_weeks")
    assert np.isfinite(rows.loc[6, "estimate_ms"]) and np.isnan(rows.loc[12, "estimate_ms"])
    assert "rank deficient so dropping 1 column" in rows.loc[12, "warning"]


def test_a_model_lme4_would_refuse_is_rows_with_lme4s_reason():
    """Baseline adjustment with one follow-up leaves one row per disc: the disc variance
    cannot be told from the residual, and lme4 stops; so does the stage, in rows."""
    table, _ = study(8, seed=2)
    table = table[table["timepoint_weeks"] != 6]
    config = load_config(moderators=["sex"])
    model = replace(config.model, baseline_adjustment=True, min_participants_per_arm=2)
    r = run_moderators(table, replace(config, model=model))
    assert len(r.moderators) == 3 and r.moderators["estimate_ms"].isna().all()
    assert not r.moderators["converged"].any()
    assert r.moderators["warning"].str.contains("number of levels of each grouping factor").all()
    assert r.interactions["p_value"].isna().all()
