"""The disc-level table: one row per participant x session x level, with covariates.

:func:`build_disc_table` is the pure core (tables in, table out);
:func:`disc_table_to_files` finds a study's per-session feature tables and writes
``discs.tsv``, ``discs.parquet`` and the ``discs.json`` data dictionary.

No disc goes missing: every participant x session of the study gets all seven levels, and a
disc without a measurement keeps its row with ``qc_status=failed`` and a ``qc_reason``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from t2quant import __version__
from t2quant.errors import InputError, MissingInputError
from t2quant.features.core import FEATURE_COLUMNS
from t2quant.features.files import SEGMENTATION_COLUMNS, read_feature_tables
from t2quant.group.grades import baseline_grades, merge_manual_grades
from t2quant.group.ratings import Ratings, ratings_to_files
from t2quant.io import atomic_path, bids, write_json, write_tsv
from t2quant.io.tables import Column, read_table
from t2quant.levels import LEVEL_INDEX, LEVELS
from t2quant.pfirrmann.files import GRADE_COLUMNS

__all__ = [
    "COVARIATES",
    "TABLE_COLUMNS",
    "build_disc_table",
    "disc_table_to_files",
    "read_features",
    "session_weeks",
    "study_sessions",
]

COVARIATES: dict[str, str] = bids.PARTICIPANT_COVARIATES
"""The covariates the table carries from ``participants.tsv``."""
TABLE_COLUMNS: dict[str, str] = {
    "participant_id": "BIDS participant",
    "session": "BIDS session label (no ses- prefix)",
    "timepoint_weeks": "weeks since baseline (from <sub>_sessions.tsv, else the label)",
    "group": "trial arm: run or control (participants.tsv)",
    "level": "disc level T11/T12..L5/S1",
    "level_index": "1 (T11/T12) .. 7 (L5/S1)",
    "pfirrmann_suggested": "t2quant's suggested Pfirrmann grade (1..5)",
    "pfirrmann_manual": "the lab's manual grade where given",
    "pfirrmann": "the grade used downstream: manual where present, else suggested",
    "pfirrmann_baseline": "the disc's grade at the participant's baseline session",
    "aggregated_pfirrmann_baseline": "sum of the 7 baseline grades (7..35); NaN unless all "
    "7 baseline discs are graded",
    **COVARIATES,
    "qc_status": "ok; failed: the disc has no measurement; excluded: a rater excluded its "
    "segmentation (--ratings)",
    "qc_reason": "why a disc was not measured, or why a rater excluded it",
}
KEYS = ["participant_id", "session", "level"]

#: What ``participants.tsv`` must hold (other columns are kept as text).
PARTICIPANTS_SCHEMA = (
    Column("participant_id"),
    Column("group", choices=("run", "control")),
    Column("sex", required=False, missing_ok=True, choices=("F", "M")),
    Column("bmi", "float", required=False, missing_ok=True, low=5, high=150),
    Column("running_volume_km", "float", required=False, missing_ok=True, low=0),
    Column("running_volume_6_12_km", "float", required=False, missing_ok=True, low=0),
    Column("mean_speed_kmh", "float", required=False, missing_ok=True, low=0, high=50),
    Column("dominant_surface", required=False, missing_ok=True),
)
#: What a ``sub-X_sessions.tsv`` must hold.
SESSIONS_SCHEMA = (
    Column("session_id"),
    Column("weeks", "int", required=False, missing_ok=True, low=0, high=1000),
    Column("timepoint_weeks", "int", required=False, missing_ok=True, low=0, high=1000),
)


def session_weeks(label: str, sessions_tsv: pd.DataFrame | None = None) -> int:
    """Weeks since baseline of session ``label`` (no ``ses-``): the ``weeks`` or
    ``timepoint_weeks`` column of the participant's ``sessions.tsv`` when it has the
    session, else the label itself (``baseline``/``pre`` = 0, ``wk06``/``week6``/``w6`` = 6)."""
    if sessions_tsv is not None and "session_id" in sessions_tsv:
        for column in ("timepoint_weeks", "weeks"):
            if column in sessions_tsv:
                hit = sessions_tsv.loc[sessions_tsv["session_id"] == f"ses-{label}", column]
                if len(hit) and pd.notna(hit.iloc[0]):
                    return int(hit.iloc[0])
    if label.lower() in {"baseline", "base", "pre", "bl"}:
        return 0
    match = re.fullmatch(r"(?:wk|week|w)0*(\d+)", label.lower())
    if match:
        return int(match.group(1))
    raise InputError(
        f"session {label!r}: cannot tell its week; name it baseline/wkNN or give a "
        "'weeks' column in the participant's sessions.tsv"
    )


def _grid(sessions: pd.DataFrame) -> pd.DataFrame:
    """Every participant x session (``sessions``: participant_id, session) x level."""
    levels = pd.DataFrame({"level": list(LEVELS)})
    return sessions.merge(levels, how="cross")


def build_disc_table(
    features: pd.DataFrame,
    participants: pd.DataFrame,
    sessions: pd.DataFrame,
    *,
    manual: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The tidy disc-level table.

    Parameters
    ----------
    features
        Per-session disc feature tables, concatenated (``participant_id``, ``session``,
        ``level``, the feature columns, ``pfirrmann_suggested``, ``qc_status``, ``qc_reason``).
    participants
        ``participants.tsv``: ``participant_id``, ``group`` and the covariates.
    sessions
        Every session of the study: ``participant_id``, ``session``, ``timepoint_weeks``.
    manual
        Optional manual grades: ``participant_id``, ``session``, ``level``, ``pfirrmann``.

    Returns
    -------
    One row per participant x session x level, sorted; feature columns as given.
    """
    _check_participants(participants)
    grid = _grid(sessions[["participant_id", "session", "timepoint_weeks"]])
    feats = features.drop(columns=["timepoint_weeks", "level_index"], errors="ignore")
    feats = feats.drop_duplicates(KEYS, keep="first")
    table = grid.merge(feats, on=KEYS, how="left")
    missing = table["qc_status"].isna()
    table.loc[missing, "qc_status"] = "failed"
    table.loc[missing, "qc_reason"] = "no feature table for this session (not processed)"
    table["level_index"] = table["level"].map(LEVEL_INDEX).astype(int)
    table = baseline_grades(merge_manual_grades(table, manual))
    cov = ["participant_id", "group", *[c for c in COVARIATES if c in participants]]
    table = table.merge(participants[cov], on="participant_id", how="left")
    unknown = table["group"].isna()
    if unknown.any():
        who = sorted(table.loc[unknown, "participant_id"].unique())
        raise InputError(f"participants {who} have feature tables but no row in participants.tsv")
    front = [c for c in TABLE_COLUMNS if c in table and c not in ("qc_status", "qc_reason")]
    rest = [c for c in table if c not in front and c not in ("qc_status", "qc_reason")]
    table = table[[*front, *rest, "qc_status", "qc_reason"]]
    order = ["participant_id", "timepoint_weeks", "level_index"]
    return table.sort_values(order, kind="stable").reset_index(drop=True)


def read_participants(path: Path) -> pd.DataFrame:
    """``participants.tsv``, checked against :data:`PARTICIPANTS_SCHEMA`."""
    return read_table(path, PARTICIPANTS_SCHEMA, what="participants.tsv",
                      unique=("participant_id",))  # fmt: skip


def _check_participants(participants: pd.DataFrame) -> None:
    for column in ("participant_id", "group"):
        if column not in participants:
            raise InputError(f"participants.tsv has no {column!r} column")
    arms = set(participants["group"].dropna())
    if not arms <= {"run", "control"}:
        raise InputError(f"participants.tsv: group must be run or control, got {sorted(arms)}")


def study_sessions(bids_dir: Path) -> pd.DataFrame:
    """Every ``sub-*/ses-*`` of a BIDS folder with its ``timepoint_weeks``."""
    rows = []
    for participant in bids.participant_labels(bids_dir):
        tsv = bids.sessions_tsv(bids_dir, participant)
        sessions_tsv = None
        if tsv.exists():
            sessions_tsv = read_table(tsv, SESSIONS_SCHEMA, what="sessions.tsv",
                                      unique=("session_id",))  # fmt: skip
        for label in bids.session_labels(bids_dir, participant):
            try:
                weeks = session_weeks(label, sessions_tsv)
            except ValueError as err:
                where = Path(bids_dir) / f"sub-{participant}" / f"ses-{label}"
                raise InputError(f"{where}: {err}") from None
            rows.append(
                {"participant_id": f"sub-{participant}", "session": label, "timepoint_weeks": weeks}
            )
    if not rows:
        raise InputError(f"{bids_dir}: no sub-*/ses-*/anat sessions found")
    return pd.DataFrame(rows)


def read_features(derivatives: Path) -> pd.DataFrame:
    """Every session's feature table under a derivatives folder, concatenated."""
    paths = bids.find_feature_tables(derivatives)
    if not paths:
        return pd.DataFrame(columns=[*KEYS, "qc_status", "qc_reason"])
    return read_feature_tables(paths)


def disc_table_to_files(
    bids: Path,
    derivatives: Path,
    outdir: Path,
    *,
    manual: pd.DataFrame | None = None,
    ratings: Ratings | None = None,
) -> tuple[pd.DataFrame, dict[str, Path]]:
    """Build the table of a BIDS study from its derivatives, with the raters' ``ratings``
    applied (:mod:`t2quant.group.ratings`); write ``discs.tsv``, ``discs.parquet`` and
    ``discs.json`` into ``outdir``, and the ratings' audit ``ratings_applied.tsv``/``.json``."""
    if not Path(derivatives).is_dir():
        raise MissingInputError(
            f"{derivatives}: no such derivatives folder; run the participant level into it first"
        )
    participants = read_participants(Path(bids) / "participants.tsv")
    table = build_disc_table(
        read_features(derivatives), participants, study_sessions(bids), manual=manual
    )
    outdir = Path(outdir)
    table, rating_paths = ratings_to_files(table, ratings, outdir)
    paths = {"tsv": write_tsv(table, outdir / "discs.tsv"), "parquet": outdir / "discs.parquet"}
    paths |= {f"ratings_{key}": path for key, path in rating_paths.items()}
    with atomic_path(paths["parquet"]) as tmp:
        table.to_parquet(tmp, index=False)
    paths["json"] = write_json(_dictionary(table), outdir / "discs.json")
    return table, paths


def _dictionary(table: pd.DataFrame) -> dict:
    known = TABLE_COLUMNS | FEATURE_COLUMNS | GRADE_COLUMNS | SEGMENTATION_COLUMNS
    return {
        "GeneratedBy": {"Name": "t2quant", "Version": __version__},
        "Description": "one row per participant x session x level; units in column names",
        "Columns": {c: known.get(c, "") for c in table.columns},
        "Counts": {
            "rows": len(table),
            "participants": int(table["participant_id"].nunique()),
            "failed": int((table["qc_status"] == "failed").sum()),
            "excluded": int((table["qc_status"] == "excluded").sum()),
        },
    }
