"""Manual Pfirrmann grades: the project's TSV, or the SPIDER gradings CSV layout."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from t2quant.errors import InputError
from t2quant.io.tables import read_table
from t2quant.levels import LEVELS

__all__ = ["SPIDER_LEVELS", "read_manual_grades"]

SPIDER_LEVELS: dict[int, str] = {i + 1: lvl for i, lvl in enumerate(reversed(LEVELS))}
"""SPIDER's ``IVD label`` counts up from the bottom: 1 = L5/S1 ... 7 = T11/T12."""

SPIDER_DIGITS = 3  # SPIDER's images are 001_t2.mha ... 257_t2.mha: patient 9 is sub-009

COLUMNS = ["participant_id", "session", "level", "pfirrmann"]


def read_manual_grades(path: str | Path) -> tuple[pd.DataFrame, list[str]]:
    """Read manual grades into ``participant_id, session, level, pfirrmann`` rows.

    Accepts a TSV with those columns (``session`` may be absent: one session) or the SPIDER
    gradings CSV (``Patient``, ``IVD label``, ``Pfirrman grade``; patient 9 becomes
    ``sub-009``, the three-digit numbering of SPIDER's image files; IVD labels outside 1..7
    are dropped and reported).

    Returns the table and a list of notes on what was dropped.

    Raises
    ------
    ValueError
        Naming the file, for missing columns, unknown level names or grades outside 1..5.
    """
    path = Path(path)
    raw = read_table(path, what="manual grades")
    notes: list[str] = []
    if {"Patient", "IVD label", "Pfirrman grade"} <= set(raw.columns):
        table = _from_spider(raw, notes)
    else:
        missing = {"participant_id", "level", "pfirrmann"} - set(raw.columns)
        if missing:
            raise InputError(
                f"{path}: manual grades need columns participant_id, session, level, pfirrmann "
                f"(or the SPIDER CSV layout); missing {sorted(missing)}"
            )
        table = raw.copy()
        if "session" not in table:
            table["session"] = ""
        _check_participant_ids(table["participant_id"], path)
    session = table["session"].astype(object).fillna("").astype(str)
    table["session"] = session.str.removeprefix("ses-")
    unknown = sorted(set(table["level"]) - set(LEVELS))
    if unknown:
        raise InputError(f"{path}: unknown level names {unknown}; use {', '.join(LEVELS)}")
    grades = pd.to_numeric(table["pfirrmann"], errors="coerce")
    bad = table.loc[~grades.isin([1, 2, 3, 4, 5]), "pfirrmann"]
    if len(bad):
        raise InputError(f"{path}: Pfirrmann grades must be 1..5; found {sorted(set(bad))[:5]}")
    table["pfirrmann"] = grades.astype(int)
    dup = table.duplicated(["participant_id", "session", "level"])
    if dup.any():
        raise InputError(f"{path}: {int(dup.sum())} discs are graded twice")
    return table[COLUMNS].reset_index(drop=True), notes


def _check_participant_ids(ids: pd.Series, path: Path) -> None:
    """BIDS participant ids carry ``sub-``; grades without it would match no disc."""
    bad = ids[~ids.str.match(r"^sub-[A-Za-z0-9]+$")]
    if len(bad):
        raise InputError(
            f"{path}: participant_id must be a BIDS label such as sub-01; rows hold "
            f"{sorted(set(bad))[:3]} (add the sub- prefix)"
        )


def _from_spider(raw: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    label = pd.to_numeric(raw["IVD label"], errors="coerce")
    keep = label.isin(list(SPIDER_LEVELS))
    if (~keep).any():
        notes.append(
            f"{int((~keep).sum())} SPIDER rows with IVD labels outside 1..7 "
            f"({sorted(set(raw.loc[~keep, 'IVD label']))}) are not among the seven levels "
            "and were dropped"
        )
    raw = raw[keep]
    return pd.DataFrame(
        {
            "participant_id": "sub-" + raw["Patient"].str.strip().str.zfill(SPIDER_DIGITS),
            "session": "",
            "level": label[keep].astype(int).map(SPIDER_LEVELS).to_numpy(),
            "pfirrmann": raw["Pfirrman grade"].to_numpy(),
        }
    )
