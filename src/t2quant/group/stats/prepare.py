"""Check a disc table and form moderator subgroups (pure functions over tables).

Quartile rule
-------------
Quartiles are cut on participants, one value each: patient moderators over every
participant with a value, intervention moderators over the runners. The cut points are the
25th, 50th and 75th percentiles by linear interpolation (R's ``quantile`` type 7, numpy's
default). Intervals are closed on the right, as R's ``cut(..., include.lowest=TRUE)``: Q1 is
``x <= c1``, Q2 ``c1 < x <= c2``, Q3 ``c2 < x <= c3``, Q4 ``x > c3``; a participant tied at
a cut point goes to the lower quartile. When ties make cut points coincide a quartile can be
empty; it is still reported, as a row saying so.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from t2quant.errors import InputError
from t2quant.group.stats.config import PFIRRMANN_CATEGORIES, ModelSettings, Moderator, StatsConfig

__all__ = ["assign_subgroups", "check_table", "quartile_cuts", "quartile_labels"]

REQUIRED = ("participant_id", "timepoint_weeks", "group", "level")
#: ``qc_status`` values the models leave out with ``exclude_failed``: no measurement, or a
#: segmentation a rater excluded (``t2quant.group.ratings``).
LEFT_OUT = ("failed", "excluded")


def check_table(table: pd.DataFrame, config: StatsConfig, name: str = "the disc table") -> None:
    """Raise ``ValueError`` naming ``name`` and the problem when the table cannot be analysed."""
    model = config.model
    needed = [*REQUIRED, model.outcome, *model.covariates]
    needed += [m.column for m in config.moderators if m.column not in needed]
    missing = [c for c in needed if c not in table]
    if missing:
        raise InputError(f"{name}: missing column(s) {missing}")
    values = table[model.outcome]
    numeric = pd.to_numeric(values, errors="coerce")
    bad = values[numeric.isna() & values.notna() & (values.astype(str).str.strip() != "")]
    if len(bad) or not np.issubdtype(np.asarray(numeric).dtype, np.number):
        raise InputError(
            f"{name}: {model.outcome} must be numeric; {len(bad)} value(s) are not, "
            f"for example {bad.iloc[0]!r}"
        )
    _check_values(numeric, table, model.outcome, name)
    _check_unique_discs(table, name)
    arms = set(table["group"].dropna())
    if arms != {"run", "control"}:
        raise InputError(
            f"{name}: the group column must hold both arms, run and control; found {sorted(arms)}"
        )
    weeks = sorted(pd.to_numeric(table["timepoint_weeks"], errors="coerce").dropna().unique())
    if len(weeks) < 2 or weeks[0] != 0:
        raise InputError(
            f"{name}: needs a baseline (week 0) and at least one follow-up; timepoint_weeks "
            f"holds {weeks}"
        )


def _where(table: pd.DataFrame, mask: pd.Series, limit: int = 3) -> str:
    """``sub-01 baseline L4/L5, ...`` for the first rows of ``mask``."""
    keys = [c for c in ("participant_id", "session", "level") if c in table]
    rows = table.loc[mask, keys].head(limit).astype(str)
    more = " ..." if int(mask.sum()) > limit else ""
    return "; ".join(" ".join(r) for r in rows.itertuples(index=False, name=None)) + more


def _check_values(numeric: pd.Series, table: pd.DataFrame, outcome: str, name: str) -> None:
    """Infinite outcomes, and negative ones for a quantity that cannot be negative (a time in
    ms, a volume, a ratio of magnitudes), are refused with their count and discs."""
    infinite = numeric.isin([np.inf, -np.inf])
    if infinite.any():
        raise InputError(
            f"{name}: {int(infinite.sum())} row(s) have an infinite {outcome} "
            f"({_where(table, infinite)}); fix them or mark them qc_status=failed"
        )
    if outcome.endswith(("_ms", "_mm3", "_ratio")):
        negative = numeric < 0
        if negative.any():
            example = numeric[negative].iloc[0]
            raise InputError(
                f"{name}: {int(negative.sum())} row(s) have a negative {outcome} (e.g. "
                f"{example:g}: {_where(table, negative)}); it cannot be negative: fix them or "
                "mark them qc_status=failed"
            )


def _check_unique_discs(table: pd.DataFrame, name: str) -> None:
    """A disc (participant, session, level) is one row; a repeated row would count twice."""
    keys = [c for c in ("participant_id", "session", "level") if c in table]
    if "session" not in keys:
        keys = [c for c in ("participant_id", "timepoint_weeks", "level") if c in table]
    doubled = table.duplicated(keys, keep=False)
    if doubled.any():
        n = int(table.duplicated(keys).sum())
        raise InputError(
            f"{name}: {n} duplicated disc row(s) by ({', '.join(keys)}), e.g. "
            f"{_where(table, doubled)}; each disc must appear once"
        )


def analysis_rows(table: pd.DataFrame, model: ModelSettings) -> tuple[pd.DataFrame, int]:
    """Rows the model can use, and how many were left out (failed or excluded QC, no outcome)."""
    data = table.copy()
    data[model.outcome] = pd.to_numeric(data[model.outcome], errors="coerce")
    keep = data[model.outcome].notna()
    if model.exclude_failed and "qc_status" in data:
        keep &= ~data["qc_status"].isin(LEFT_OUT)
    for c in model.covariates:
        keep &= data[c].notna()
    return data[keep].reset_index(drop=True), int((~keep).sum())


def check_usable(data: pd.DataFrame, outcome: str, left_out: int, name: str) -> None:
    """After leaving out unusable rows, both arms at baseline and a follow-up must remain."""
    weeks = set(data["timepoint_weeks"])
    if set(data["group"]) != {"run", "control"} or 0 not in weeks or len(weeks) < 2:
        raise InputError(
            f"{name}: after leaving out {left_out} row(s) without {outcome} (failed QC or "
            f"missing), {len(data)} remain, which do not hold both arms at baseline and a "
            "follow-up; was T2 fitted before the features were measured?"
        )


def quartile_cuts(values: pd.Series) -> tuple[float, float, float]:
    """25th, 50th, 75th percentiles (linear interpolation) of one value per participant."""
    v = pd.to_numeric(values, errors="coerce").dropna().to_numpy(float)
    if v.size < 4:
        raise InputError(f"quartiles need at least 4 participants with a value, got {v.size}")
    c1, c2, c3 = np.quantile(v, [0.25, 0.5, 0.75])
    return float(c1), float(c2), float(c3)


def quartile_labels(cuts: tuple[float, float, float]) -> list[str]:
    c1, c2, c3 = (f"{c:.4g}" for c in cuts)
    return [f"Q1 (<= {c1})", f"Q2 ({c1}, {c2}]", f"Q3 ({c2}, {c3}]", f"Q4 (> {c3})"]


def _quartile_of(x: pd.Series, cuts: tuple[float, float, float]) -> pd.Series:
    labels = quartile_labels(cuts)
    index = np.searchsorted(np.asarray(cuts), x.to_numpy(float), side="left")
    out = pd.Series(np.array(labels, dtype=object)[np.minimum(index, 3)], index=x.index)
    return out.where(x.notna())


def _participant_values(data: pd.DataFrame, column: str) -> pd.Series:
    """One value per participant: the first non-missing one, baseline first."""
    ordered = data.sort_values("timepoint_weeks", kind="stable")
    return ordered.dropna(subset=[column]).groupby("participant_id")[column].first()


def assign_subgroups(data: pd.DataFrame, moderator: Moderator) -> tuple[pd.Series, list, dict]:
    """The subgroup of every row (NaN: not in any), the subgroups in order, and details
    (cut points, participants without a value).

    Intervention moderators assign runners only; controls are NaN here and join every
    runner subgroup as the comparison arm.
    """
    pool = data if moderator.kind == "patient" else data[data["group"] == "run"]
    details: dict = {}
    if moderator.per_disc:
        values = data[moderator.column]
    else:
        per = _participant_values(pool, moderator.column)
        details["n_participants_without_value"] = int(pool["participant_id"].nunique() - per.size)
        values = data["participant_id"].map(per)
        if moderator.kind == "intervention":
            values = values.where(data["group"] == "run")
    if moderator.scale == "quartiles":
        cuts = quartile_cuts(_participant_values(pool, moderator.column))
        details["cut_points"] = list(cuts)
        return _quartile_of(values, cuts), quartile_labels(cuts), details
    if moderator.scale == "continuous":
        return pd.to_numeric(values, errors="coerce"), [], details
    if moderator.column.startswith("pfirrmann"):
        numeric = pd.to_numeric(values, errors="coerce")
        values = numeric.map(PFIRRMANN_CATEGORIES)
        return values, list(PFIRRMANN_CATEGORIES.values()), details
    order = sorted(values.dropna().astype(str).unique())
    return values.where(values.isna(), values.astype(str)), order, details
