"""A rater's review of the participant reports, applied to the disc table.

In ``OUT/sub-X.html`` a rater accepts or excludes each disc's segmentation (with a reason),
confirms or corrects its suggested Pfirrmann grade, and exports ``sub-X_desc-ratings.tsv``
(:data:`RATINGS_SCHEMA`). :func:`read_ratings` reads every such file of a folder through the
validating reader; :func:`apply_ratings`, a pure function over tables, applies them:

- ``decision = exclude``: the disc keeps its row, with ``qc_status = "excluded"`` and
  ``qc_reason = "excluded by rater: <reason>"``; the models leave it out as they leave out a
  failed disc (``exclude_failed``);
- a grade, confirmed or corrected, becomes ``pfirrmann_manual``, and so ``pfirrmann`` (and
  ``pfirrmann_baseline`` at baseline); it replaces a ``--manual-grades`` grade of the disc;
- a disc rated more than once (twice by one rater, or by two raters) takes the rating with
  the latest ``time``, and a note says which.

The audit (:data:`AUDIT_COLUMNS`) has a row for every exclusion and every changed grade: who,
when, which disc, before -> after, why, from which file. :func:`ratings_to_files` writes it as
``ratings_applied.tsv`` with the notes and counts in ``ratings_applied.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from t2quant import __version__
from t2quant.errors import InputError
from t2quant.group.grades import GRADE_KEYS, baseline_grades
from t2quant.io import bids, write_json, write_tsv
from t2quant.io.tables import Column, read_table, row_numbers
from t2quant.levels import LEVELS

__all__ = [
    "APPLIED_NAMES",
    "AUDIT_COLUMNS",
    "EXCLUDED",
    "RATINGS_SCHEMA",
    "Ratings",
    "apply_ratings",
    "latest_ratings",
    "ratings_lines",
    "ratings_to_files",
    "read_ratings",
    "read_ratings_file",
]

EXCLUDED = "excluded"
"""``qc_status`` of a disc whose segmentation a rater excluded."""
RATINGS_SCHEMA = (
    Column("rater"),
    Column("time", "time"),
    Column("participant_id"),
    Column("session"),
    Column("level", choices=LEVELS),
    Column("decision", choices=("accept", "exclude")),
    Column("grade", "int", missing_ok=True, low=1, high=5),
    Column("reason", missing_ok=True),
)
RATING_COLUMNS = [c.name for c in RATINGS_SCHEMA]
AUDIT_COLUMNS = ["participant_id", "session", "level", "rater", "time", "change", "before",
                 "after", "reason", "file"]  # fmt: skip
#: What :func:`ratings_to_files` writes into the group folder.
APPLIED_NAMES = {"tsv": "ratings_applied.tsv", "json": "ratings_applied.json"}
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class Ratings:
    """The ratings of a folder: the latest per disc, and what was read to get them."""

    table: pd.DataFrame  # RATING_COLUMNS + file, row (its data row in the file)
    notes: tuple[str, ...]  # one line per disc rated more than once
    files: tuple[Path, ...]
    n_read: int  # rows read, before taking the latest per disc


def read_ratings_file(path: Path) -> pd.DataFrame:
    """One exported ratings file, checked: :data:`RATINGS_SCHEMA`, BIDS participant ids, a
    reason for every exclusion. Adds ``file`` and ``row``; ``session`` without ``ses-``.

    Raises
    ------
    InputError
        Naming the file, the column and the rows.
    """
    table = read_table(path, RATINGS_SCHEMA, what="ratings")
    bad_id = ~table["participant_id"].str.fullmatch(r"sub-[A-Za-z0-9]+")
    if bad_id.any():
        raise InputError(f"{path}: column 'participant_id' of the ratings must hold BIDS labels "
                         f"such as sub-01; rows {row_numbers(bad_id)} do not")  # fmt: skip
    no_reason = (table["decision"] == "exclude") & table["reason"].isna()
    if no_reason.any():
        rows = row_numbers(no_reason)
        raise InputError(f"{path}: column 'reason' of the ratings is empty in rows {rows}, "
                         "which exclude a disc; give the reason")  # fmt: skip
    table["session"] = table["session"].str.removeprefix("ses-")
    table["file"] = str(path)
    table["row"] = range(1, len(table) + 1)
    return table[[*RATING_COLUMNS, "file", "row"]]


def latest_ratings(rows: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The latest rating of each disc (by ``time``; on a tie, the later file and row), sorted
    by disc, and a note for each disc rated more than once."""
    ordered = rows.sort_values("time", kind="stable")
    latest = ordered.drop_duplicates(GRADE_KEYS, keep="last")
    notes = []
    for key, group in ordered.groupby(GRADE_KEYS, sort=True):
        if len(group) > 1:
            used = group.iloc[-1]
            raters = ", ".join(sorted(set(group["rater"])))
            notes.append(f"{key[0]} ses-{key[1]} {key[2]}: rated {len(group)} times ({raters}); "
                         f"the latest is used: {used['time'].strftime(TIME_FORMAT)} by "
                         f"{used['rater']} ({used['file']}, row {used['row']})")  # fmt: skip
    return latest.sort_values(GRADE_KEYS, kind="stable").reset_index(drop=True), notes


def read_ratings(folder: Path) -> Ratings:
    """Every ratings file in ``folder`` (:func:`t2quant.io.bids.find_ratings`), the latest
    rating per disc."""
    files = bids.find_ratings(folder)
    rows = pd.concat([read_ratings_file(p) for p in files], ignore_index=True)
    latest, notes = latest_ratings(rows)
    return Ratings(latest, tuple(notes), tuple(files), len(rows))


def _positions(table: pd.DataFrame, ratings: pd.DataFrame) -> pd.Series:
    """The row of ``table`` each rating is about; an error for a disc not in the table."""
    index = pd.MultiIndex.from_frame(table[GRADE_KEYS])
    positions = pd.Series(index.get_indexer(pd.MultiIndex.from_frame(ratings[GRADE_KEYS])),
                          index=ratings.index)  # fmt: skip
    unknown = ratings[positions < 0]
    if len(unknown):
        first = unknown.iloc[0]
        rows = ", ".join(map(str, unknown.loc[unknown["file"] == first["file"], "row"][:5]))
        raise InputError(
            f"{first['file']}: rows {rows} rate discs that are not in the study, e.g. "
            f"{first['participant_id']} ses-{first['session']} {first['level']}; check "
            "participant_id and session"
        )
    return positions


def _audit(rated: pd.DataFrame, change: str, before, after) -> pd.DataFrame:
    """Audit rows of ``rated`` (ratings) for one kind of change."""
    out = rated[[*GRADE_KEYS, "rater", "reason", "file"]].copy()
    out["time"] = rated["time"].dt.strftime(TIME_FORMAT)
    out["change"] = change
    out["before"] = before
    out["after"] = after
    return out[AUDIT_COLUMNS]


def _grade_text(grades) -> list[str]:
    return ["n/a" if pd.isna(g) else str(int(g)) for g in grades]


def apply_ratings(table: pd.DataFrame, ratings: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The disc table with the ratings applied (see the module), and the audit.

    ``table``: the disc table (:func:`t2quant.group.table.build_disc_table`). ``ratings``: one
    row per disc (:func:`latest_ratings`). The audit has one ``excluded`` row per exclusion
    (before: the disc's ``qc_status``) and one ``grade corrected`` row per grade that differs
    from the disc's ``pfirrmann`` (before: that grade, or ``n/a``).
    """
    out = table.reset_index(drop=True).copy()
    pos = _positions(out, ratings).to_numpy()
    excluded = (ratings["decision"] == "exclude").to_numpy()
    graded = ratings["grade"].notna().to_numpy()
    old = out["pfirrmann"].astype(float).to_numpy()[pos]
    new = ratings["grade"].astype(float).to_numpy()
    changed = graded & (old != new)
    audit = pd.concat([
        _audit(ratings[excluded], EXCLUDED, out["qc_status"].to_numpy()[pos[excluded]], EXCLUDED),
        _audit(ratings[changed], "grade corrected", _grade_text(old[changed]),
               _grade_text(new[changed])),
    ], ignore_index=True)  # fmt: skip
    out.loc[pos[excluded], "qc_status"] = EXCLUDED
    reasons = "excluded by rater: " + ratings.loc[excluded, "reason"]
    out.loc[pos[excluded], "qc_reason"] = reasons.to_numpy()
    for column in ("pfirrmann_manual", "pfirrmann"):
        out[column] = out[column].astype("Int64")
        out.loc[pos[graded], column] = ratings.loc[graded, "grade"].to_numpy()
    out = baseline_grades(out)[list(table.columns)]
    audit = audit.sort_values([*GRADE_KEYS, "change"], kind="stable").reset_index(drop=True)
    return out, audit


def ratings_to_files(
    table: pd.DataFrame, ratings: Ratings | None, outdir: Path
) -> tuple[pd.DataFrame, dict[str, Path]]:
    """Apply ``ratings`` to the disc table; write the audit ``ratings_applied.tsv`` and its
    sidecar ``ratings_applied.json`` (sources, counts, notes) into ``outdir``. Without ratings,
    remove a previous run's audit, so no stale review is reported."""
    paths = {key: Path(outdir) / name for key, name in APPLIED_NAMES.items()}
    if ratings is None:
        for path in paths.values():
            path.unlink(missing_ok=True)
        return table, {}
    rated, audit = apply_ratings(table, ratings.table)
    r = ratings.table
    counts = {
        "files": len(ratings.files), "rows_read": ratings.n_read, "discs_rated": len(r),
        "accepted": int((r["decision"] == "accept").sum()),
        "excluded": int((r["decision"] == "exclude").sum()),
        "grades_given": int(r["grade"].notna().sum()),
        "grades_corrected": int((audit["change"] == "grade corrected").sum()),
    }  # fmt: skip
    sidecar = {
        "GeneratedBy": {"Name": "t2quant", "Version": __version__},
        "Description": "ratings from the participant reports applied to discs.tsv: every "
        "exclusion and every changed grade",
        "Sources": [str(p) for p in ratings.files],
        "Counts": counts,
        "Notes": list(ratings.notes),
    }
    write_tsv(audit, paths["tsv"])
    write_json(sidecar, paths["json"])
    return rated, paths


def ratings_lines(ratings: Ratings, audit: Path) -> list[str]:
    """What the command line prints after applying ``ratings``: one line of counts, then the
    notes (discs rated more than once)."""
    r = ratings.table
    counts = (f"ratings: {len(r)} discs rated in {len(ratings.files)} file(s), "
              f"{int((r['decision'] == 'exclude').sum())} excluded, "
              f"{int(r['grade'].notna().sum())} graded; audit {audit}")  # fmt: skip
    return [counts, *ratings.notes]
