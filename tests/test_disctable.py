"""The disc-level table: every participant x session x level, grades and covariates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from t2quant.group.table import build_disc_table, session_weeks
from t2quant.levels import LEVELS


def test_session_weeks_from_sessions_tsv_or_label():
    sessions = pd.DataFrame({"session_id": ["ses-a", "ses-b"], "weeks": [0, 13]})
    assert session_weeks("b", sessions) == 13
    assert [session_weeks(x) for x in ("baseline", "wk06", "week12", "w6", "pre")] == [
        0,
        6,
        12,
        6,
        0,
    ]
    with pytest.raises(ValueError, match="'visit2'"):
        session_weeks("visit2")


def features(pid, ses, t2):
    return pd.DataFrame({
        "participant_id": pid, "session": ses, "level": list(LEVELS),
        "t2_mean_ms": t2, "pfirrmann_suggested": [1, 2, 2, 3, 3, 4, 5],
        "qc_status": "ok", "qc_reason": "",
    })  # fmt: skip


def test_every_disc_keeps_a_row_and_grades_combine():
    feats = pd.concat([features("sub-1", "baseline", 80.0), features("sub-1", "wk06", 82.0),
                       features("sub-2", "baseline", 70.0)], ignore_index=True)  # fmt: skip
    feats.loc[feats.index[2], ["t2_mean_ms", "qc_status", "qc_reason"]] = [np.nan, "failed", "x"]
    people = pd.DataFrame({"participant_id": ["sub-1", "sub-2"], "group": ["run", "control"],
                           "sex": ["F", "M"], "bmi": [22.0, 27.5]})  # fmt: skip
    sessions = pd.DataFrame({"participant_id": ["sub-1", "sub-1", "sub-2", "sub-2"],
                             "session": ["baseline", "wk06", "baseline", "wk06"],
                             "timepoint_weeks": [0, 6, 0, 6]})  # fmt: skip
    manual = pd.DataFrame({"participant_id": ["sub-1"], "session": ["baseline"],
                           "level": ["L5/S1"], "pfirrmann": [4]})  # fmt: skip
    table = build_disc_table(feats, people, sessions, manual=manual)
    assert len(table) == 4 * 7
    lost = table[(table.participant_id == "sub-2") & (table.session == "wk06")]
    assert len(lost) == 7 and (lost.qc_status == "failed").all()
    assert lost.qc_reason.str.contains("no feature table").all()
    sub1 = table[(table.participant_id == "sub-1") & (table.session == "baseline")]
    assert sub1.set_index("level").loc["L5/S1", "pfirrmann"] == 4  # manual wins
    assert sub1.set_index("level").loc["L4/L5", "pfirrmann"] == 4  # suggested
    assert table.loc[table.participant_id == "sub-1", "aggregated_pfirrmann_baseline"].eq(
        1 + 2 + 2 + 3 + 3 + 4 + 4).all()  # fmt: skip
    wk6 = table[(table.participant_id == "sub-1") & (table.session == "wk06")]
    assert wk6["pfirrmann_baseline"].tolist() == [1, 2, 2, 3, 3, 4, 4]
    assert table["level_index"].tolist()[:7] == list(range(1, 8))
    assert table.loc[table.participant_id == "sub-2", "bmi"].eq(27.5).all()
    assert table.loc[2, "qc_reason"] == "x" and np.isnan(table.loc[2, "t2_mean_ms"])


def test_participants_without_a_row_are_an_error():
    people = pd.DataFrame({"participant_id": ["sub-1"], "group": ["run"]})
    sessions = pd.DataFrame({"participant_id": ["sub-1", "sub-9"], "session": ["a", "a"],
                             "timepoint_weeks": [0, 0]})  # fmt: skip
    with pytest.raises(ValueError, match="sub-9"):
        build_disc_table(features("sub-9", "a", 80.0), people, sessions)
