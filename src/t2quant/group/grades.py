"""The grade columns of the disc table: the suggested grade, a manual grade where there is one,
the grade used downstream, and each disc's grade at baseline. A pure core: tables in, table
out."""

from __future__ import annotations

import numpy as np
import pandas as pd

from t2quant.levels import LEVELS

__all__ = ["GRADE_KEYS", "baseline_grades", "merge_manual_grades"]

GRADE_KEYS = ["participant_id", "session", "level"]


def merge_manual_grades(table: pd.DataFrame, manual: pd.DataFrame | None) -> pd.DataFrame:
    """``pfirrmann_suggested`` (numeric), ``pfirrmann_manual`` from ``manual``
    (``participant_id``, ``session``, ``level``, ``pfirrmann``; NaN where not graded) and
    ``pfirrmann``: the manual grade where there is one, else the suggested grade."""
    out = table.copy()
    if "pfirrmann_suggested" not in out:
        out["pfirrmann_suggested"] = np.nan
    out["pfirrmann_suggested"] = pd.to_numeric(out["pfirrmann_suggested"], errors="coerce")
    out["pfirrmann_manual"] = np.nan
    if manual is not None:
        m = manual[[*GRADE_KEYS, "pfirrmann"]].rename(columns={"pfirrmann": "_m"})
        m["session"] = m["session"].astype(str)
        out = out.merge(m, on=GRADE_KEYS, how="left")
        out["pfirrmann_manual"] = pd.to_numeric(out.pop("_m"), errors="coerce")
    out["pfirrmann"] = out["pfirrmann_manual"].fillna(out["pfirrmann_suggested"])
    return out


def baseline_grades(table: pd.DataFrame) -> pd.DataFrame:
    """``pfirrmann_baseline`` (the disc's ``pfirrmann`` at the participant's week-0 session) and
    ``aggregated_pfirrmann_baseline`` (the sum of the seven, NaN unless all seven are graded),
    recomputed from ``pfirrmann``; the grade columns as nullable integers."""
    out = table.drop(columns=["pfirrmann_baseline", "aggregated_pfirrmann_baseline"],
                     errors="ignore")  # fmt: skip
    weeks = out["timepoint_weeks"]
    first = weeks == out.groupby("participant_id")["timepoint_weeks"].transform("min")
    base = out.loc[first & (weeks == 0), ["participant_id", "level", "pfirrmann"]]
    base = base.rename(columns={"pfirrmann": "pfirrmann_baseline"})
    out = out.merge(base, on=["participant_id", "level"], how="left")
    agg = base.groupby("participant_id")["pfirrmann_baseline"].agg(["sum", "count"])
    agg = agg["sum"].where(agg["count"] == len(LEVELS))
    out["aggregated_pfirrmann_baseline"] = out["participant_id"].map(agg)
    for column in ("pfirrmann_suggested", "pfirrmann_manual", "pfirrmann", "pfirrmann_baseline"):
        out[column] = pd.to_numeric(out[column], errors="coerce").astype("Int64")
    return out
