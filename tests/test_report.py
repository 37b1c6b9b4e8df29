"""The participant report's summary and disc table, from small derivative files (no images)."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd

from t2quant.io import bids
from t2quant.reports.participant import (
    SessionSummary,
    summarise_session,
    summary_rows,
    summary_section,
)
from t2quant.reports.review import DISC_COLUMNS, disc_table, nav_bar, review_script


def derivatives(tmp_path, session: str, flags=(), warnings=(), failure_counts=None):
    """The files a summary reads: the discs record, the T2 map's sidecar, the feature table."""
    anat = bids.derivative_anat(tmp_path, "01", session)
    anat.mkdir(parents=True)
    stem = bids.session_stem("01", session)
    names = bids.segmentation_names(stem)
    (anat / names["discs_json"]).write_text(json.dumps({"Flags": list(flags),
                                                        "Warnings": list(warnings)}))  # fmt: skip
    t2 = anat / bids.map_name(stem, "loglinear", "t2_ms")
    t2.touch()
    bids.sidecar(t2).write_text(json.dumps({"FailureCounts": failure_counts or {"ok": 100}}))
    features = pd.DataFrame({
        "level": ["L3/L4", "L4/L5", "L5/S1"], "qc_status": ["ok", "failed", "ok"],
        "qc_reason": [np.nan, "fewer than 20 voxels (12)", np.nan],
        "t2_mean_ms": [101.234, np.nan, 88.0], "t2_sd_ms": [9.87, np.nan, 7.0],
        "volume_mm3": [5012.4, np.nan, 4800.0], "pfirrmann_suggested": [2, np.nan, 3],
        "pfirrmann_confidence": [0.8, np.nan, 0.61],
        "pfirrmann_criteria": ["contrast 0.40 >= 0.27: distinct", np.nan, "height ok"],
    })  # fmt: skip
    files = {"discs_json": anat / names["discs_json"], "t2_ms": t2,
             "dseg": anat / names["dseg"]}  # fmt: skip
    return files, features


def test_summary_of_a_session_names_flags_and_discs_not_measured(tmp_path):
    files, features = derivatives(
        tmp_path, "baseline", flags=["level_uncertain", "invalid_voxels"],
        warnings=["no sacrum found"], failure_counts={"ok": 90, "bounds": 10, "not_fitted": 500},
    )  # fmt: skip
    summary = summarise_session("baseline", files, features)
    assert summary == SessionSummary(
        session="baseline", processed=True, levels=("L3/L4", "L4/L5", "L5/S1"),
        not_measured=(("L4/L5", "fewer than 20 voxels (12)"),),
        flags=("level_uncertain", "invalid_voxels"),
        warnings=("segmentation: no sacrum found",
                  "T2 fit: 10.0% of fitted voxels failed ({'ok': 90, 'bounds': 10, "
                  "'not_fitted': 500})"),
    )  # fmt: skip
    assert summary.lines() == [
        "segmentation flag: level_uncertain", "segmentation flag: invalid_voxels",
        "L4/L5: not measured: fewer than 20 voxels (12)", "segmentation: no sacrum found",
        "T2 fit: 10.0% of fitted voxels failed ({'ok': 90, 'bounds': 10, 'not_fitted': 500})",
    ]  # fmt: skip


def test_summary_rows_and_section(tmp_path):
    files, features = derivatives(tmp_path, "baseline", flags=["level_uncertain"])
    clean, clean_features = derivatives(tmp_path, "wk06")
    clean_features["qc_status"] = "ok"
    summaries = [summarise_session("baseline", files, features),
                 summarise_session("wk06", clean, clean_features),
                 SessionSummary(session="wk12", processed=False)]  # fmt: skip
    assert summary_rows(summaries) == [
        {"session": "ses-baseline", "discs measured": "2 of 3",
         "not measured (why)": "L4/L5: fewer than 20 voxels (12)",
         "segmentation flags": "level_uncertain", "warnings": ""},
        {"session": "ses-wk06", "discs measured": "3 of 3", "not measured (why)": "",
         "segmentation flags": "", "warnings": ""},
        {"session": "ses-wk12", "discs measured": "not processed", "not measured (why)": "",
         "segmentation flags": "", "warnings": ""},
    ]  # fmt: skip
    failure = "sub-01/ses-wk24 fit_t2: echo 3 missing (crash file: work/crash/x.txt)"
    html = summary_section(summaries, [failure])
    assert html.startswith('<section id="summary"><h2>Summary</h2>')
    assert "<p>3 session(s) processed, 1 failed; 5 of 6 discs measured.</p>" in html
    assert f'<li class="warn">{failure}</li>' in html
    assert ('<tr><td><a href="#ses-baseline">ses-baseline</a></td><td>2 of 3</td>'
            "<td class=warn>L4/L5: fewer than 20 voxels (12)</td>"
            "<td class=warn>level_uncertain</td><td></td></tr>") in html  # fmt: skip
    assert html.count("<tr>") == 4  # the header and three sessions


def test_disc_table_has_units_review_controls_and_criteria(tmp_path):
    _, features = derivatives(tmp_path, "baseline")
    table = disc_table("baseline", features)
    headers = re.findall(r"<th title=\"[^\"]*\">([^<]*)</th>", table)
    assert headers == ["Level", "Status", *[h for _, h, _ in DISC_COLUMNS], "Suggested grade",
                       "Segmentation", "Your grade", "Reason"]  # fmt: skip
    assert "T2 (ms)" in headers and "Volume (mm³)" in headers
    assert table.count('<tr class="disc"') == 3 and table.count('<tr class="criteria">') == 3
    assert '<td class="num">101.2</td><td class="num">9.9</td><td class="num">5012</td>' in table
    assert '<td class="num">2 (0.80)</td>' in table
    assert (
        '<button type="button" data-grade="2" class=suggested title=suggested>2</button>' in table
    )
    assert table.count('data-decision="exclude"') == 3
    # the failed disc: empty measurements, no suggestion, the reason in its criteria row
    assert '<td title="fewer than 20 voxels (12)">failed</td>' in table
    assert '<td colspan="13">fewer than 20 voxels (12)</td>' in table
    assert '<td colspan="13">contrast 0.40 &gt;= 0.27: distinct</td>' in table


def test_navigation_and_script_settings():
    nav = nav_bar(["baseline", "wk06"])
    assert re.findall(r'href="(#[^"]+)"', nav) == ["#summary", "#ses-baseline", "#ses-wk06"]
    assert 'id="export-ratings"' in nav
    script = review_script("01")
    settings = re.search(r'id="t2quant-review">([^<]*)</script>', script).group(1)
    assert json.loads(settings) == {"participant": "sub-01", "file": "sub-01_desc-ratings.tsv"}
    assert "localStorage" in script and "http" not in script.lower()


def test_group_report_lists_the_interaction_tests_before_the_subgroups(tmp_path):
    from t2quant.reports.group import write_group_report

    group = tmp_path / "group"
    group.mkdir()
    pd.DataFrame({"participant_id": ["sub-01"] * 2, "session": ["baseline"] * 2,
                  "level": ["L4/L5", "L5/S1"], "group": ["run"] * 2,
                  "t2_mean_ms": [80.0, 70.0], "qc_status": ["ok", "ok"]}).to_csv(
        group / "discs.tsv", sep="\t", index=False)  # fmt: skip
    pd.DataFrame({"moderator": ["overall", "sex"], "subgroup": ["all", "female"],
                  "timepoint_weeks": [6, 6], "estimate_ms": [1.0, 2.0]}).to_csv(
        group / "moderators.tsv", sep="\t", index=False)  # fmt: skip
    pd.DataFrame({"moderator": ["sex"], "timepoint_weeks": [12], "test": ["F: ..."], "F": [7.5],
                  "num_df": [1], "den_df": [37.2], "p_value": [0.0094], "p_fdr": [0.0188],
                  "inference": ["satterthwaite"]}).to_csv(
        group / "interactions.tsv", sep="\t", index=False)  # fmt: skip
    html = write_group_report(tmp_path).read_text()
    interactions = html.index("Interaction tests (run x week x moderator)")
    assert interactions < html.index("Subgroup effects")
    section = html[interactions : html.index("Subgroup effects")]
    assert "37.2" in section and "0.0094" in section and "satterthwaite" in section
    assert "F: ..." not in section  # the long test description stays in interactions.tsv
