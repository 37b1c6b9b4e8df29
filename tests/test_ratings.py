"""The raters' reviews: the validating reader of ``*_desc-ratings.tsv`` and their application
to the disc table (exclusions, confirmed and corrected grades, the audit trail)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from t2quant.errors import InputError, MissingInputError
from t2quant.group.ratings import (
    AUDIT_COLUMNS,
    apply_ratings,
    latest_ratings,
    ratings_to_files,
    read_ratings,
    read_ratings_file,
)
from t2quant.group.table import build_disc_table
from t2quant.levels import LEVELS

HEADER = "rater\ttime\tparticipant_id\tsession\tlevel\tdecision\tgrade\treason\n"


def write(path, *rows: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "".join(r + "\n" for r in rows))
    return path


def test_reader_types_the_columns_and_strips_the_session_prefix(tmp_path):
    path = write(tmp_path / "sub-01_desc-ratings.tsv",
                 "ana\t2024-05-01T10:00:00.000Z\tsub-01\tses-baseline\tL4/L5\texclude\tn/a\tcut",
                 "ana\t2024-05-01T10:01:00Z\tsub-01\tbaseline\tL5/S1\taccept\t4\tn/a")  # fmt: skip
    table = read_ratings_file(path)
    assert table.columns.tolist() == ["rater", "time", "participant_id", "session", "level",
                                      "decision", "grade", "reason", "file", "row"]  # fmt: skip
    assert table["session"].tolist() == ["baseline", "baseline"]
    assert table["grade"].tolist() == [pd.NA, 4]
    assert table["reason"].isna().tolist() == [False, True]
    assert table["time"].tolist() == [pd.Timestamp("2024-05-01T10:00:00Z"),
                                      pd.Timestamp("2024-05-01T10:01:00Z")]  # fmt: skip
    assert table["row"].tolist() == [1, 2] and table["file"].eq(str(path)).all()


GOOD = "ana\t2024-05-01T10:00:00Z\tsub-01\tbaseline\tL4/L5\taccept\t3\tn/a"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (GOOD.replace("accept", "maybe"),
         "column 'decision' of the ratings must be one of accept, exclude; rows 2 hold maybe"),
        (GOOD.replace("\t3\t", "\t6\t"),
         "column 'grade' of the ratings must be within [1, 5]; rows 2 hold 6"),
        (GOOD.replace("\t3\t", "\tthree\t"),
         "column 'grade' of the ratings must hold whole numbers; rows 2 hold 'three'"),
        (GOOD.replace("2024-05-01T10:00:00Z", "yesterday"),
         "column 'time' of the ratings must hold ISO 8601 times such as 2024-05-01T14:03:00Z; "
         "rows 2 hold 'yesterday'"),
        (GOOD.replace("L4/L5", "L4-L5"), "column 'level' of the ratings must be one of"),
        (GOOD.replace("sub-01", "01"),
         "column 'participant_id' of the ratings must hold BIDS labels such as sub-01; rows 2"),
        (GOOD.replace("accept\t3", "exclude\tn/a"),
         "column 'reason' of the ratings is empty in rows 2, which exclude a disc"),
        (GOOD.replace("ana", ""), "column 'rater' of the ratings is empty in rows 2"),
    ],
)  # fmt: skip
def test_reader_names_the_file_the_column_and_the_rows(tmp_path, row, message):
    path = write(tmp_path / "sub-01_desc-ratings.tsv", GOOD, row)
    with pytest.raises(InputError) as error:
        read_ratings_file(path)
    assert str(error.value).startswith(f"{path}: ")
    assert message in str(error.value)


def test_reader_wants_every_column(tmp_path):
    path = tmp_path / "sub-01_desc-ratings.tsv"
    path.write_text(HEADER.replace("\treason", "") + GOOD.rsplit("\t", 1)[0] + "\n")
    with pytest.raises(InputError, match="the ratings has no 'reason' column"):
        read_ratings_file(path)


def test_a_disc_rated_twice_takes_the_latest_time_and_says_so(tmp_path):
    first = write(tmp_path / "ana" / "sub-01_desc-ratings.tsv",
                  "ana\t2024-05-02T09:00:00Z\tsub-01\tbaseline\tL4/L5\texclude\tn/a\tcut",
                  "ana\t2024-05-02T09:00:00Z\tsub-01\tbaseline\tL5/S1\taccept\t4\tn/a")  # fmt: skip
    second = write(tmp_path / "bo" / "sub-01_desc-ratings (1).tsv",
                   "bo\t2024-05-01T09:00:00Z\tsub-01\tbaseline\tL4/L5\taccept\t2\tn/a")  # fmt: skip
    ratings = read_ratings(tmp_path)
    assert ratings.files == (first, second) and ratings.n_read == 3
    assert ratings.table[["rater", "level", "decision"]].values.tolist() == [
        ["ana", "L4/L5", "exclude"], ["ana", "L5/S1", "accept"]]  # fmt: skip
    assert ratings.notes == (
        f"sub-01 ses-baseline L4/L5: rated 2 times (ana, bo); the latest is used: "
        f"2024-05-02T09:00:00Z by ana ({first}, row 1)",
    )


def test_latest_ratings_on_a_tie_takes_the_later_row():
    rows = pd.DataFrame({"participant_id": "sub-1", "session": "a", "level": "L1/L2",
                         "rater": ["x", "y"], "time": pd.to_datetime(["2024-01-01"] * 2, utc=True),
                         "file": "f.tsv", "row": [1, 2]})  # fmt: skip
    latest, notes = latest_ratings(rows)
    assert latest["rater"].tolist() == ["y"] and "row 2" in notes[0]


def test_a_folder_without_ratings_is_an_error(tmp_path):
    with pytest.raises(MissingInputError, match="no such folder"):
        read_ratings(tmp_path / "nowhere")
    (tmp_path / "notes.tsv").write_text(HEADER)
    with pytest.raises(InputError, match=r"no sub-\*_desc-ratings\*\.tsv files"):
        read_ratings(tmp_path)


def study() -> pd.DataFrame:
    """Two participants, baseline and wk06, every disc measured; suggested grades 1..5."""
    grades = [1, 2, 2, 3, 3, 4, 5]
    feats = pd.concat([pd.DataFrame({"participant_id": p, "session": s, "level": list(LEVELS),
                                     "t2_mean_ms": 80.0, "pfirrmann_suggested": grades,
                                     "qc_status": "ok", "qc_reason": ""})
                       for p in ("sub-1", "sub-2") for s in ("baseline", "wk06")],
                      ignore_index=True)  # fmt: skip
    people = pd.DataFrame({"participant_id": ["sub-1", "sub-2"], "group": ["run", "control"]})
    sessions = feats[["participant_id", "session"]].drop_duplicates()
    sessions["timepoint_weeks"] = sessions["session"].map({"baseline": 0, "wk06": 6})
    manual = pd.DataFrame({"participant_id": ["sub-2"], "session": ["baseline"],
                           "level": ["L1/L2"], "pfirrmann": [3]})  # fmt: skip
    return build_disc_table(feats, people, sessions, manual=manual)


def rating(participant, session, level, decision, grade, reason, time, rater="ana"):
    return {"rater": rater, "time": pd.Timestamp(time, tz="UTC"), "participant_id": participant,
            "session": session, "level": level, "decision": decision,
            "grade": pd.NA if grade is None else grade, "reason": reason,
            "file": "r/sub-1_desc-ratings.tsv", "row": 1}  # fmt: skip


def ratings_frame(*rows) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows))
    frame["grade"] = frame["grade"].astype("Int64")
    return frame


def test_apply_ratings_excludes_and_regrades_with_an_audit():
    table = study()
    ratings = ratings_frame(
        rating("sub-1", "wk06", "L4/L5", "exclude", None, "endplate included", "2024-05-01T10:00"),
        rating("sub-1", "baseline", "L5/S1", "accept", 3, np.nan, "2024-05-01T10:01"),  # corrected
        rating("sub-1", "baseline", "L1/L2", "accept", 2, np.nan, "2024-05-01T10:02"),  # confirmed
        rating("sub-2", "baseline", "L1/L2", "accept", 2, "manual was 3", "2024-05-01T10:03"),
        rating("sub-2", "wk06", "T11/T12", "exclude", 2, "motion", "2024-05-01T10:04"),
    )  # fmt: skip
    rated, audit = apply_ratings(table, ratings)
    assert rated.columns.tolist() == table.columns.tolist() and len(rated) == len(table)
    by = rated.set_index(["participant_id", "session", "level"])
    assert by.loc[("sub-1", "wk06", "L4/L5"), "qc_status"] == "excluded"
    assert by.loc[("sub-1", "wk06", "L4/L5"), "qc_reason"] == "excluded by rater: endplate included"
    assert by.loc[("sub-1", "wk06", "L4/L5"), "t2_mean_ms"] == 80.0  # kept, left to the models
    assert (rated["qc_status"] == "excluded").sum() == 2
    assert by.loc[("sub-1", "baseline", "L5/S1"), ["pfirrmann_suggested", "pfirrmann_manual",
                                                   "pfirrmann"]].tolist() == [5, 3, 3]  # fmt: skip
    grades = ["pfirrmann_manual", "pfirrmann"]
    assert by.loc[("sub-1", "baseline", "L1/L2"), grades].tolist() == [2, 2]  # confirmed
    assert by.loc[("sub-2", "baseline", "L1/L2"), grades].tolist() == [2, 2]  # manual 3 replaced
    # the baseline grade follows the correction in every session of the disc
    assert by.loc[("sub-1", "wk06", "L5/S1"), "pfirrmann_baseline"] == 3
    assert rated.loc[rated.participant_id == "sub-1", "aggregated_pfirrmann_baseline"].eq(
        1 + 2 + 2 + 3 + 3 + 4 + 3).all()  # fmt: skip
    assert rated.loc[rated.participant_id == "sub-2", "aggregated_pfirrmann_baseline"].eq(
        1 + 2 + 2 + 3 + 3 + 4 + 5).all()  # manual 3 -> rater 2 at L1/L2  # fmt: skip
    expected = pd.DataFrame([
        ["sub-1", "baseline", "L5/S1", "ana", "2024-05-01T10:01:00Z", "grade corrected", "5", "3",
         np.nan],
        ["sub-1", "wk06", "L4/L5", "ana", "2024-05-01T10:00:00Z", "excluded", "ok", "excluded",
         "endplate included"],
        ["sub-2", "baseline", "L1/L2", "ana", "2024-05-01T10:03:00Z", "grade corrected", "3", "2",
         "manual was 3"],
        ["sub-2", "wk06", "T11/T12", "ana", "2024-05-01T10:04:00Z", "excluded", "ok", "excluded",
         "motion"],
        ["sub-2", "wk06", "T11/T12", "ana", "2024-05-01T10:04:00Z", "grade corrected", "1", "2",
         "motion"],
    ], columns=AUDIT_COLUMNS[:-1])  # fmt: skip
    pd.testing.assert_frame_equal(audit.drop(columns="file"), expected)
    untouched = ~rated.set_index(["participant_id", "session", "level"]).index.isin(
        ratings.set_index(["participant_id", "session", "level"]).index)  # fmt: skip
    pd.testing.assert_frame_equal(rated[untouched].drop(columns=["pfirrmann_baseline",
                                  "aggregated_pfirrmann_baseline"]),
                                  table[untouched].drop(columns=["pfirrmann_baseline",
                                  "aggregated_pfirrmann_baseline"]))  # fmt: skip


def test_a_rating_of_a_disc_not_in_the_study_names_the_file_and_rows():
    ratings = ratings_frame(rating("sub-9", "baseline", "L4/L5", "accept", 2, np.nan, "2024-05-01"))
    with pytest.raises(InputError, match=r"r/sub-1_desc-ratings.tsv: rows 1 rate discs that are "
                       r"not in the study, e.g. sub-9 ses-baseline L4/L5"):  # fmt: skip
        apply_ratings(study(), ratings)


def test_excluded_discs_leave_the_models():
    from t2quant.group.stats.config import ModelSettings
    from t2quant.group.stats.prepare import analysis_rows

    table = study()
    table.loc[[0, 1], "qc_status"] = ["excluded", "failed"]
    rows, left_out = analysis_rows(table, ModelSettings())
    assert left_out == 2 and len(rows) == len(table) - 2
    rows, left_out = analysis_rows(table, ModelSettings(exclude_failed=False))
    assert left_out == 0


def test_ratings_to_files_writes_the_audit_and_clears_a_stale_one(tmp_path):
    path = write(tmp_path / "in" / "sub-1_desc-ratings.tsv",
                 "ana\t2024-05-01T10:00:00Z\tsub-1\tbaseline\tL4/L5\texclude\tn/a\tcut",
                 "ana\t2024-05-01T10:00:00Z\tsub-1\tbaseline\tL5/S1\taccept\t5\tn/a")  # fmt: skip
    table, paths = ratings_to_files(study(), read_ratings(tmp_path / "in"), tmp_path)
    assert set(paths) == {"tsv", "json"}
    lines = paths["tsv"].read_text().splitlines()
    assert lines == ["\t".join(AUDIT_COLUMNS),
                     f"sub-1\tbaseline\tL4/L5\tana\t2024-05-01T10:00:00Z\texcluded\tok\texcluded\t"
                     f"cut\t{path}"]  # fmt: skip
    sidecar = json.loads(paths["json"].read_text())
    assert sidecar["Counts"] == {
        "files": 1, "rows_read": 2, "discs_rated": 2, "accepted": 1, "excluded": 1,
        "grades_given": 1, "grades_corrected": 0,
    }  # fmt: skip
    assert sidecar["Sources"] == [str(path)] and sidecar["Notes"] == []
    unrated, no_paths = ratings_to_files(table, None, tmp_path)
    assert unrated is table and no_paths == {}
    assert not paths["tsv"].exists() and not paths["json"].exists()
