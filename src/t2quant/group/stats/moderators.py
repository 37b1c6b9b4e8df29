"""The moderator analysis: the overall model, stratified subgroup models and interaction tests.

For every moderator subgroup and follow-up week the stratified model (the overall model
fitted on the subgroup's rows) gives the between-group net difference in T2 change:

- patient moderators: the subgroup's runners against the subgroup's controls;
- intervention moderators: the subgroup's runners against the whole control group.

The interaction test fits one model on all rows. Patient moderators: the overall model with
the moderator crossed with time and arm; the test is that every
``run x week x moderator`` term is 0. Intervention moderators: each runner subgroup gets its
own arm against the controls; the test is that the subgroups' net differences are equal.
Each is reported per week and jointly (``timepoint_weeks = "all"``).

Every estimate gets a t test and a t-based 95% CI, every interaction test an F test, with the
configured ``inference`` (Satterthwaite by default; see :mod:`t2quant.group.stats.inference`).

Subgroups too small to fit (fewer than ``min_participants_per_arm`` participants in an arm)
and empty quartiles are rows with NaN estimates and a warning; so are fits that fail (with
the reason). Benjamini-Hochberg FDR runs across every subgroup row with a p-value (not the
overall row), and separately across every interaction test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests

from t2quant.group.stats.config import Moderator, StatsConfig
from t2quant.group.stats.lmm import LmmFit
from t2quant.group.stats.mixed import (
    add_design,
    fit_mixed,
    follow_up_weeks,
    interaction_test,
    net_differences,
)
from t2quant.group.stats.prepare import analysis_rows, assign_subgroups, check_table, check_usable

__all__ = [
    "MODERATOR_COLUMNS",
    "ModelTask",
    "ModeratorResults",
    "interaction_model",
    "run_moderators",
]

MODERATOR_COLUMNS = [
    "moderator", "subgroup", "timepoint_weeks", "estimate_ms", "se_ms", "ci_low_ms",
    "ci_high_ms", "p_value", "p_fdr", "n_participants", "n_discs", "converged", "warning",
    "n_run", "n_control", "df", "inference",
]  # fmt: skip
INTERACTION_COLUMNS = [
    "moderator", "timepoint_weeks", "test", "F", "num_df", "den_df", "p_value", "p_fdr",
    "inference", "n_participants", "converged", "warning",
]  # fmt: skip


@dataclass
class ModeratorResults:
    moderators: pd.DataFrame
    interactions: pd.DataFrame
    cut_points: dict = field(default_factory=dict)
    overall: LmmFit | None = None
    n_rows_left_out: int = 0
    weeks: list = field(default_factory=list)


@dataclass(frozen=True)
class ModelTask:
    """One model of the stage: its rows, fixed-effect terms and, for an interaction model,
    the contrasts ``(week, {term: weight})`` that its F test combines."""

    moderator: str
    subgroup: str
    rows: pd.DataFrame
    terms: tuple[str, ...]
    note: str = ""
    contrasts: tuple = ()


def run_moderators(
    table: pd.DataFrame, config: StatsConfig, *, name: str = "the disc table"
) -> ModeratorResults:
    """Fit the overall model and every configured moderator; see the module docstring."""
    check_table(table, config, name)
    model = config.model
    data, left_out = analysis_rows(table, model)
    check_usable(data, model.outcome, left_out, name)
    weeks = follow_up_weeks(data)
    design, terms = add_design(data, model, weeks)
    tasks = [ModelTask("overall", "all", design, tuple(terms))]
    skipped, interaction_tasks, cuts = [], [], {}
    rank = {("overall", "all"): (0, 0)}
    for i, m in enumerate(config.moderators, start=1):
        try:
            groups, order, details = assign_subgroups(design, m)
        except ValueError as err:  # e.g. too few participants to cut quartiles
            rank[(m.name, "all")] = (i, 0)
            skipped.append((m.name, "all", f"not estimated: {err}", design.iloc[:0]))
            continue
        rank |= {(m.name, s): (i, j) for j, s in enumerate([*order, "per unit"])}
        if "cut_points" in details:
            cuts[m.name] = details
        made, empty = _subgroup_tasks(design, terms, m, groups, order, model)
        tasks += made
        skipped += empty
        interaction_tasks.append(interaction_model(design, terms, m, groups, order, weeks))
    done = [t for t in interaction_tasks if t is not None]
    fits = [fit_mixed(t.rows, list(t.terms), model) for t in [*tasks, *done]]
    method = model.inference
    rows = [_rows(t, fits[i], weeks, method) for i, t in enumerate(tasks)]
    rows += [
        _per_unit_rows(t, fits[len(tasks) + i], weeks, method)
        for i, t in enumerate(done)
        if t.subgroup == "per unit"
    ]
    moderators = pd.DataFrame(
        [r for block in rows for r in block] + _empty_rows(skipped, weeks, method)
    )
    moderators["_rank"] = [
        rank[k] for k in zip(moderators.moderator, moderators.subgroup, strict=True)
    ]
    moderators = moderators.sort_values(["_rank", "timepoint_weeks"], kind="stable")
    subgroups = moderators["moderator"] != "overall"
    moderators = _fdr(moderators, model.fdr, subgroups)[MODERATOR_COLUMNS].reset_index(drop=True)
    inter = [_interaction_rows(t, fits[len(tasks) + i], weeks, method) for i, t in enumerate(done)]
    columns = [c for c in INTERACTION_COLUMNS if c != "p_fdr"]
    interactions = pd.DataFrame([r for block in inter for r in block], columns=columns)
    interactions = _fdr(interactions, model.fdr)[INTERACTION_COLUMNS]
    return ModeratorResults(moderators, interactions, cuts, fits[0], left_out, weeks)


def _arm_counts(rows: pd.DataFrame) -> tuple[int, int]:
    per = rows.groupby("group")["participant_id"].nunique()
    return int(per.get("run", 0)), int(per.get("control", 0))


def _subgroup_tasks(design, terms, m: Moderator, groups, order, model):
    if m.scale == "continuous":
        return [], []
    tasks, empty = [], []
    for s in order:
        inside = groups == s
        if m.kind == "intervention":
            inside = inside | (design["group"] == "control")
        rows = design[inside.to_numpy()]
        n_run, n_control = _arm_counts(rows)
        if min(n_run, n_control) < model.min_participants_per_arm:
            why = (
                "empty subgroup (tied cut points)"
                if n_run + n_control == 0 or (m.kind == "intervention" and n_run == 0)
                else f"too small to fit: {n_run} runner(s), {n_control} control(s); at "
                f"least {model.min_participants_per_arm} per arm are needed"
            )
            empty.append((m.name, s, why, rows))
            continue
        tasks.append(ModelTask(m.name, s, rows, tuple(terms)))
    return tasks, empty


def interaction_model(
    design: pd.DataFrame, terms, m: Moderator, groups: pd.Series, order, weeks
) -> ModelTask | None:
    """The run x week x moderator model of ``m``: ``design`` (from ``add_design``) with the
    subgroup indicators (``groups`` by row, reference first in ``order``) and their products
    with week and run, or a centred covariate for a continuous moderator; None when fewer than
    two subgroups hold both arms."""
    d = design.copy()
    if m.scale == "continuous":
        return _continuous_task(d, terms, m, groups, weeks)
    if m.kind == "intervention":
        return _arm_task(d, terms, m, groups, order, weeks)
    present = [s for s in order if _arm_counts(d[(groups == s).to_numpy()]) >= (1, 1)]
    if len(present) < 2:
        return None
    d = d[groups.isin(present).to_numpy()].copy()
    g = groups[groups.isin(present)].to_numpy()
    extra, contrasts = [], []
    for j, s in enumerate(present[1:], start=1):
        d[f"m{j}"] = (g == s).astype(float)
        extra.append(f"m{j}")
        for w in weeks:
            d[f"wk{w}_m{j}"] = d[f"wk{w}"] * d[f"m{j}"]
            d[f"run_wk{w}_m{j}"] = d[f"run_wk{w}"] * d[f"m{j}"]
            extra += [f"wk{w}_m{j}", f"run_wk{w}_m{j}"]
            contrasts.append((w, {f"run_wk{w}_m{j}": 1.0}))
        d[f"run_m{j}"] = d["run"] * d[f"m{j}"]
        extra.append(f"run_m{j}")
    note = f"reference subgroup {present[0]}; subgroups {present}"
    return ModelTask(m.name, "interaction", d, (*terms, *extra), note, tuple(contrasts))


def _continuous_task(d, terms, m: Moderator, values, weeks) -> ModelTask:
    x = pd.to_numeric(values, errors="coerce")
    keep = x.notna() | (d["group"] == "control") if m.kind == "intervention" else x.notna()
    d = d[keep.to_numpy()].copy()
    x = x[keep]
    d["x"] = (x - x.mean()).fillna(0.0).to_numpy()
    extra = ["x"] if m.kind == "patient" else []
    contrasts = []
    for w in weeks:
        d[f"run_wk{w}_x"] = d[f"run_wk{w}"] * d["x"]
        extra.append(f"run_wk{w}_x")
        if m.kind == "patient":
            d[f"wk{w}_x"] = d[f"wk{w}"] * d["x"]
            extra.append(f"wk{w}_x")
        contrasts.append((w, {f"run_wk{w}_x": 1.0}))
    d["run_x"] = d["run"] * d["x"]
    extra.append("run_x")
    return ModelTask(m.name, "per unit", d, (*terms, *extra), f"centred at {x.mean():.4g}",
                 tuple(contrasts))  # fmt: skip


def _arm_task(d, terms, m: Moderator, groups, order, weeks) -> ModelTask | None:
    present = [s for s in order if ((groups == s) & (d["group"] == "run")).any()]
    if len(present) < 2:
        return None
    keep = (groups.isin(present) | (d["group"] == "control")).to_numpy()
    d, g = d[keep].copy(), groups[keep].to_numpy()
    base = [t for t in terms if t != "run" and not t.startswith("run_wk")]
    extra, contrasts = [], []
    for j, s in enumerate(present):
        arm = ((g == s) & (d["group"] == "run").to_numpy()).astype(float)
        if "run" in terms:
            d[f"a{j}"] = arm
            extra.append(f"a{j}")
        for w in weeks:
            d[f"a{j}_wk{w}"] = arm * d[f"wk{w}"].to_numpy()
            extra.append(f"a{j}_wk{w}")
            if j:
                contrasts.append((w, {f"a{j}_wk{w}": 1.0, f"a0_wk{w}": -1.0}))
    note = f"runner subgroups {present} against all controls"
    return ModelTask(m.name, "interaction", d, (*base, *extra), note, tuple(contrasts))


def _rows(task: ModelTask, fit: LmmFit, weeks, inference: str, suffix: str = "") -> list[dict]:
    n_run, n_control = _arm_counts(task.rows)
    common = {
        "moderator": task.moderator,
        "subgroup": task.subgroup,
        "n_participants": fit.n_participants,
        "n_discs": fit.n_discs,
        "converged": fit.converged,
        "warning": "; ".join(fit.messages),
        "n_run": n_run,
        "n_control": n_control,
        "inference": inference,
    }
    return [common | r for r in net_differences(fit, weeks, inference, suffix)]


def _empty_rows(skipped, weeks, inference: str) -> list[dict]:
    rows = []
    for moderator, subgroup, why, data in skipped:
        n_run, n_control = _arm_counts(data) if len(data) else (0, 0)
        for w in weeks:
            rows.append({
                "moderator": moderator, "subgroup": subgroup, "timepoint_weeks": w,
                "estimate_ms": np.nan, "se_ms": np.nan, "ci_low_ms": np.nan,
                "ci_high_ms": np.nan, "p_value": np.nan, "df": np.nan, "inference": inference,
                "n_participants": int(data["participant_id"].nunique()) if len(data) else 0,
                "n_discs": int(data["_disc"].nunique()) if len(data) else 0,
                "converged": False, "warning": why, "n_run": n_run, "n_control": n_control,
            })  # fmt: skip
    return rows


def _fdr(rows: pd.DataFrame, enabled: bool, family: pd.Series | None = None) -> pd.DataFrame:
    """``p_fdr``: Benjamini-Hochberg over the rows with a p-value (of ``family`` if given)."""
    rows = rows.copy()
    rows["p_fdr"] = np.nan
    family = rows["p_value"].notna() & (True if family is None else family)
    if enabled and family.any():
        rows.loc[family, "p_fdr"] = multipletests(rows.loc[family, "p_value"], method="fdr_bh")[1]
    return rows


def _interaction_rows(task: ModelTask, fit: LmmFit, weeks, inference: str) -> list[dict]:
    out = []
    selections: list[tuple[object, Callable]] = [(w, lambda c, w=w: c[0] == w) for w in weeks]
    selections.append(("all", lambda c: True))
    for label, pick in selections:
        res = interaction_test(fit, [c[1] for c in task.contrasts if pick(c)], inference)
        out.append({
            "moderator": task.moderator, "timepoint_weeks": label,
            "test": _test_name(task), "F": res.f_value, "num_df": res.num_df,
            "den_df": res.den_df, "p_value": res.p_value, "inference": inference,
            "n_participants": fit.n_participants, "converged": fit.converged,
            "warning": "; ".join(fit.messages),
        })  # fmt: skip
    return out


def _test_name(task: ModelTask) -> str:
    if task.subgroup == "per unit":
        return f"F: run x week x moderator slope = 0 ({task.note})"
    return f"F: equal net differences across subgroups ({task.note})"


def _per_unit_rows(task: ModelTask, fit: LmmFit, weeks, inference: str) -> list[dict]:
    """Rows of a continuous moderator: the change in net difference per unit of it."""
    rows = _rows(task, fit, weeks, inference, suffix="_x")
    for r in rows:
        r["warning"] = "; ".join(x for x in (task.note, r["warning"]) if x)
    return rows
