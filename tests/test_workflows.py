"""The Nipype workflows and the BIDS-Apps levels, end to end on a tiny synthetic study."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from t2quant.cli import main
from t2quant.io import read_tsv

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def processed(tmp_path_factory):
    """A 2-participant study through the participant level (MultiProc)."""
    from t2quant.synth.writer import StudySettings, write_synthetic_study

    root = tmp_path_factory.mktemp("bidsapp")
    write_synthetic_study(root / "bids", StudySettings(n_participants=2, seed=3), jobs=2)
    args = [str(root / "bids"), str(root / "out"), "participant", "--work-dir",
            str(root / "work"), "--plugin", "MultiProc", "--nprocs", "2"]  # fmt: skip
    assert main(args) == 0
    return root


def _features(out: Path) -> pd.DataFrame:
    paths = sorted(out.glob("sub-*/ses-*/anat/*_discfeatures.tsv"))
    return pd.concat([read_tsv(p) for p in paths], ignore_index=True)


def test_participant_level_writes_bids_derivatives(processed):
    out = processed / "out"
    anat = out / "sub-01" / "ses-baseline" / "anat"
    for suffix in ("desc-epg_T2ms.nii.gz", "desc-epg_T2map.nii.gz", "desc-epg_S0map.nii.gz",
                   "desc-epg_TB1map.nii.gz", "desc-epg_rsquared.nii.gz", "desc-epg_failure.nii.gz",
                   "dseg.nii.gz", "dseg.tsv", "discfeatures.tsv", "discfeatures.json"):  # fmt: skip
        assert (anat / f"sub-01_ses-baseline_{suffix}").is_file(), suffix
    t2_ms = nib.load(anat / "sub-01_ses-baseline_desc-epg_T2ms.nii.gz").get_fdata()
    t2_s = nib.load(anat / "sub-01_ses-baseline_desc-epg_T2map.nii.gz").get_fdata()
    np.testing.assert_allclose(t2_s[np.isfinite(t2_s)] * 1000, t2_ms[np.isfinite(t2_ms)], rtol=1e-5)
    description = json.loads((out / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative"
    assert description["GeneratedBy"][0]["Name"] == "t2quant"
    features = _features(out)
    assert len(features) == 2 * 3 * 7
    truth = read_tsv(processed / "bids" / "derivatives" / "groundtruth" / "discs.tsv")
    both = features.merge(truth, on=["participant_id", "session", "level"])
    error = (both["t2_mean_ms"] - both["t2_true_ms"]).abs().median()
    assert error < 6.0  # automatic masks; the T2 fit alone is within 1 ms (bench)


def test_participant_report_renders_each_session(processed):
    text = (processed / "out" / "sub-01.html").read_text()
    sections = text.split('<section id="ses-')[1:]
    assert [s.split('"', 1)[0] for s in sections] == ["baseline", "wk06", "wk12"]
    for section in sections:  # sagittal views (3 large, more behind a toggle), decays, B1, R²
        assert section.count('alt="sagittal T2 map, slice ') >= 3
        assert section.count('alt="figure"') == 1  # the decays
        assert 'alt="B1 (fraction of nominal)"' in section and 'alt="R² of the fit"' in section
        assert section.count('<tr class="disc"') == 7
    assert text.count("data:image/png;base64") == text.count("<img")
    assert text.count("<table") == 1 + 3  # the summary, a disc table per session
    assert "sub-01 / ses-wk12" in text and "show the Pfirrmann criteria" in text


def test_rerun_resumes_from_the_cache_with_identical_outputs(processed):
    out = processed / "out"
    before = {p: p.read_bytes() for p in out.glob("sub-*/ses-*/anat/*_discfeatures.tsv")}
    fits = {p: p.stat().st_mtime_ns for p in (processed / "work").rglob("result_fit_t2.pklz")}
    assert len(fits) == 6
    args = [str(processed / "bids"), str(out), "participant", "--work-dir",
            str(processed / "work"), "--plugin", "Linear"]  # fmt: skip
    assert main(args) == 0
    assert {p: p.stat().st_mtime_ns for p in fits} == fits  # nothing refitted
    assert {p: p.read_bytes() for p in before} == before


def test_linear_plugin_gives_the_multiproc_outputs(processed, tmp_path):
    args = [str(processed / "bids"), str(tmp_path / "out"), "participant", "--participant-label",
            "01", "--session-label", "wk06", "--work-dir", str(tmp_path / "work"), "--plugin",
            "Linear"]  # fmt: skip
    assert main(args) == 0
    name = "sub-01/ses-wk06/anat/sub-01_ses-wk06_discfeatures.tsv"
    assert (tmp_path / "out" / name).read_bytes() == (processed / "out" / name).read_bytes()


def test_killed_run_completes_from_the_cache(processed, tmp_path):
    cmd = [sys.executable, "-m", "t2quant.cli", str(processed / "bids"), str(tmp_path / "out"),
           "participant", "--participant-label", "02", "--session-label", "baseline",
           "--work-dir", str(tmp_path / "work"), "--plugin", "Linear"]  # fmt: skip
    env = os.environ | {"NIPYPE_NO_ET": "1"}
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    fit = tmp_path / "work/t2quant_wf/sub_02_wf/ses_baseline_wf/t2map_wf/fit_t2/result_fit_t2.pklz"
    deadline = time.monotonic() + 300
    while not fit.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the T2 map is cached, the rest is not done yet
    proc.wait()
    assert fit.exists()
    fitted = fit.stat().st_mtime_ns
    name = "sub-02/ses-baseline/anat/sub-02_ses-baseline_discfeatures.tsv"
    assert not (tmp_path / "out" / name).exists()
    assert not list((tmp_path / "out").glob("**/.*"))  # no half-written file left
    assert subprocess.run(cmd, env=env, check=False).returncode == 0
    assert fit.stat().st_mtime_ns == fitted  # resumed from the cache, not refitted
    assert (tmp_path / "out" / name).read_bytes() == (processed / "out" / name).read_bytes()


def test_discs_from_imports_the_given_masks(processed, tmp_path):
    truth = processed / "bids" / "derivatives" / "groundtruth"
    args = [str(processed / "bids"), str(tmp_path / "out"), "participant", "--participant-label",
            "01", "--session-label", "baseline", "--work-dir", str(tmp_path / "work"),
            "--plugin", "Linear", "--discs-from", str(truth)]  # fmt: skip
    assert main(args) == 0
    ours = tmp_path / "out/sub-01/ses-baseline/anat/sub-01_ses-baseline_dseg.nii.gz"
    given = truth / "sub-01/ses-baseline/anat/sub-01_ses-baseline_desc-discs_dseg.nii.gz"
    np.testing.assert_array_equal(np.asanyarray(nib.load(ours).dataobj),
                                  np.asanyarray(nib.load(given).dataobj))  # fmt: skip


def test_group_level_table_stats_agreement_and_report(processed):
    out = processed / "out"
    assert main([str(processed / "bids"), str(out), "group", "--nprocs", "1"]) == 0
    table = read_tsv(out / "group" / "discs.tsv")
    assert len(table) == 2 * 3 * 7 and set(table["group"]) == {"run", "control"}
    moderators = read_tsv(out / "group" / "moderators.tsv")
    assert moderators.iloc[0]["moderator"] == "overall"
    agreement = json.loads((out / "group" / "agreement.json").read_text())
    assert agreement["n_discs"] + agreement["n_not_graded"] == 42
    report = (out / "group.html").read_text()
    assert "forest" in report and "Ground-truth check" in report
    check = json.loads((out / "group" / "groundtruth_check.json").read_text())
    assert check["disc_t2"]["n_discs"] == 42
    assert check["disc_t2"]["true_masks_median_abs_error_ms"] < 1.0  # the fit alone
    assert check["grades"]["kappa_quadratic"] == agreement["kappa_quadratic"]
    assert check["moderators"]["week12"]["n_estimates"] >= 1  # 2 participants: overall only


def test_bids_app_errors_name_the_problem(tmp_path, capsys):
    assert main([str(tmp_path), str(tmp_path / "out"), "participant"]) == 2
    assert "no sub-* folders" in capsys.readouterr().err


def test_group_report_renders_in_chromium(processed, tmp_path):
    from test_report_browser import rendered

    out = processed / "out"
    if not (out / "group.html").exists():
        assert main([str(processed / "bids"), str(out), "group", "--nprocs", "1"]) == 0
    seen = rendered(out / "group.html", tmp_path)
    forest = len(list((out / "group").glob("forest_week*.png")))
    assert forest == 2
    # disc summary, moderators, agreement, ground-truth check (+ the interaction tests and the
    # check's misses, when there are any)
    assert seen["images"] == seen["images-ok"] == forest
    check = json.loads((out / "group" / "groundtruth_check.json").read_text())
    interactions = (out / "group" / "interactions.tsv").exists()
    misses = any(m["misses"] for m in check["moderators"].values())
    assert seen["tables"] == 4 + interactions + misses


def test_report_of_a_session_without_labels_says_so(processed, tmp_path):
    from t2quant.reports.participant import write_participant_report

    out = tmp_path / "out"
    shutil.copytree(processed / "out" / "sub-01" / "ses-baseline", out / "sub-01" / "ses-baseline")
    shutil.copy(processed / "out" / "dataset_description.json", out)
    dseg = out / "sub-01/ses-baseline/anat/sub-01_ses-baseline_dseg.nii.gz"
    img = nib.load(dseg)
    nib.save(nib.Nifti1Image(np.zeros(img.shape, np.uint8), img.affine, img.header), dseg)
    files = sorted((out / "sub-01" / "ses-baseline" / "anat").iterdir())
    report = write_participant_report(out / "sub-01.html", "01", files)
    text = report.read_text()
    assert "No disc was labelled in this session" in text and "No disc to show." in text
    # the mid slice and its two neighbours (no other slice holds a disc), the B1 and R² maps
    assert text.count("data:image/png;base64") == 3 + 2
