"""Simulated disc tables and contrasts for the mixed-model tests (``test_lmm.py`` without R,
``test_lmm_vs_r.py`` against R): one place, so that both check the same cases.

A table has one row per participant x session x level: ``participant_id``, ``level``,
``timepoint_weeks`` (0, 6, 12), ``group`` (run/control), ``sex``, ``moderator`` and ``t2_mean_ms``
drawn from the crossed model with participant, level and disc intercepts (SDs in ms).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from t2quant.group.stats.lmm import TERMS
from t2quant.levels import LEVELS

WEEKS = (0, 6, 12)
DESIGN = ("Intercept", "wk6", "wk12", "run", "run_wk6", "run_wk12")


def simulate_table(
    n_participants: int,
    seed: int = 0,
    *,
    missing_discs: float = 0.0,
    missing_rows: float = 0.0,
    sd_participant: float = 6.0,
    sd_level: float = 4.0,
    sd_disc: float = 3.0,
    sd_residual: float = 1.5,
    effect_ms: tuple[float, float] = (1.0, 2.5),
    n_run: int | None = None,
    moderator_levels: tuple[str, ...] = ("A", "B", "C"),
) -> pd.DataFrame:
    """A disc table; ``missing_discs`` drops that share of discs (all their sessions),
    ``missing_rows`` that share of the remaining rows. ``n_run``: the first ``n_run``
    participants run (default: every other one). ``moderator`` is a participant-level
    category cycling through ``moderator_levels``."""
    rng = np.random.default_rng(seed)
    n, n_l = n_participants, len(LEVELS)
    pid = np.repeat(np.arange(n), len(WEEKS) * n_l)
    week = np.tile(np.repeat(WEEKS, n_l), n)
    lev = np.tile(np.arange(n_l), n * len(WEEKS))
    run = np.arange(n) % 2 == 0 if n_run is None else np.arange(n) < n_run
    moderator = np.array(moderator_levels)[rng.permutation(n) % len(moderator_levels)]
    sex = np.where(rng.random(n) < 0.5, "F", "M")
    b_p = rng.normal(0, sd_participant, n)
    b_l = rng.normal(0, sd_level, n_l)
    b_d = rng.normal(0, sd_disc, (n, n_l))
    gain = np.select([week == 6, week == 12], list(effect_ms), 0.0) * run[pid]
    drift = np.select([week == 6, week == 12], [-0.3, -0.5], 0.0)
    y = 82 + b_p[pid] + b_l[lev] + b_d[pid, lev] + drift + gain
    y += rng.normal(0, sd_residual, y.size)
    table = pd.DataFrame({
        "participant_id": [f"sub-{i:05d}" for i in pid],
        "level": np.array(LEVELS)[lev],
        "timepoint_weeks": week,
        "group": np.where(run[pid], "run", "control"),
        "sex": sex[pid],
        "moderator": moderator[pid],
        "t2_mean_ms": y,
    })  # fmt: skip
    keep = np.ones(len(table), bool)
    if missing_discs:
        keep &= ~(rng.random((n, n_l)) < missing_discs)[pid, lev]
    if missing_rows:
        keep &= rng.random(len(table)) >= missing_rows
    return table[keep].reset_index(drop=True)


def design_matrix(table: pd.DataFrame) -> tuple[np.ndarray, tuple[str, ...]]:
    """The trial's fixed part, R's treatment coding of ``factor(week) * group`` with the
    control arm and week 0 as references: columns :data:`DESIGN`."""
    run = (table["group"] == "run").to_numpy(float)
    wk6 = (table["timepoint_weeks"] == 6).to_numpy(float)
    wk12 = (table["timepoint_weeks"] == 12).to_numpy(float)
    return np.column_stack([np.ones(len(table)), wk6, wk12, run, run * wk6, run * wk12]), DESIGN


CASES: dict[str, dict] = {
    "balanced-40-REML": {"n": 40, "seed": 1, "reml": True},
    "balanced-40-ML": {"n": 40, "seed": 1, "reml": False},
    "missing-discs-30-REML": {"n": 30, "seed": 2, "reml": True, "missing_discs": 0.2,
                              "missing_rows": 0.05},
    "missing-discs-30-ML": {"n": 30, "seed": 2, "reml": False, "missing_discs": 0.2,
                            "missing_rows": 0.05},
    "subgroup-5-vs-20-REML": {"n": 25, "seed": 3, "reml": True, "n_run": 5,
                              "missing_discs": 0.1},
    "subgroup-5-vs-20-ML": {"n": 25, "seed": 3, "reml": False, "n_run": 5,
                            "missing_discs": 0.1},
    "subgroup-6-singular-REML": {"n": 12, "seed": 1, "reml": True, "n_run": 6,
                                 "sd_participant": 0.0, "missing_discs": 0.1},
    "level-fixed-20-REML": {"n": 20, "seed": 4, "reml": True, "missing_discs": 0.15,
                            "terms": ("participant", "disc")},
}  # fmt: skip
"""Name -> table settings: participants, seed, REML/ML, missing discs/rows, runners
(``n_run``: an unbalanced subgroup), random terms (``level-fixed``: level in the fixed
part). ``subgroup-6-singular`` has no participant variance: a boundary fit."""

CONTRASTS: dict[str, list[dict[str, float]]] = {
    "net6": [{"run_wk6": 1}],
    "net12": [{"run_wk12": 1}],
    "net12_minus_net6": [{"run_wk12": 1, "run_wk6": -1}],
    "arms_at_12": [{"run": 1, "run_wk12": 1}],
    "F_net": [{"run_wk6": 1}, {"run_wk12": 1}],
    "F_time": [{"wk6": 1}, {"wk12": 1}],
    "F_three": [{"run": 1}, {"run_wk6": 1}, {"run_wk12": 1}],
    "F_rank_deficient": [{"run_wk6": 1}, {"run_wk12": 1}, {"run_wk6": 1, "run_wk12": 1}],
}
"""1-row contrasts (t tests with CIs) and F-test matrices, by coefficient name."""


@dataclass(frozen=True)
class Case:
    y: np.ndarray
    x: np.ndarray
    names: tuple[str, ...]
    participant: np.ndarray
    level: np.ndarray
    reml: bool
    terms: tuple[str, ...]


def contrast_matrix(rows: list[dict[str, float]], names: tuple[str, ...]) -> np.ndarray:
    """(q, p) matrix of ``rows`` (coefficient name -> weight) over ``names``."""
    return np.array([[r.get(n, 0.0) for n in names] for r in rows], dtype=float)


def build_case(name: str) -> Case:
    spec = dict(CASES[name])
    reml, terms = spec.pop("reml"), spec.pop("terms", TERMS)
    table = simulate_table(spec.pop("n"), spec.pop("seed"), **spec)
    x, names = design_matrix(table)
    if "level" not in terms:  # level_fixed: level in the fixed part
        dummies = pd.get_dummies(table["level"], drop_first=True, dtype=float)
        x = np.column_stack([x, dummies.to_numpy()])
        names = (*names, *(f"level_{c}" for c in dummies.columns))
    return Case(table["t2_mean_ms"].to_numpy(), x, tuple(names),
                table["participant_id"].to_numpy(), table["level"].to_numpy(), reml,
                tuple(terms))  # fmt: skip
