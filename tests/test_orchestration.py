"""The participant level never serves stale results, never hangs, and fails in one line.

Each test runs the BIDS-Apps participant level on a copy of a tiny synthetic study (2
participants x 3 sessions, 112 x 144 x 5 voxels, 6 echoes) with the fast log-linear fit.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from t2quant.cli import main

pytestmark = pytest.mark.slow

ENV = os.environ | {"NIPYPE_NO_ET": "1"}


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory) -> Path:
    from t2quant.synth.protocol import TINY
    from t2quant.synth.writer import StudySettings, write_synthetic_study

    root = tmp_path_factory.mktemp("tiny")
    write_synthetic_study(root / "bids", StudySettings(n_participants=2, seed=8, protocol=TINY),
                          jobs=2)  # fmt: skip
    return root / "bids"


@pytest.fixture
def study(tiny_study, tmp_path) -> Path:
    shutil.copytree(tiny_study, tmp_path / "bids")
    return tmp_path / "bids"


def _args(bids: Path, *extra: str, label: str = "01", session: str = "baseline") -> list[str]:
    root = bids.parent
    return [str(bids), str(root / "out"), "participant", "--work-dir", str(root / "work"),
            "--t2-method", "loglinear", "--plugin", "Linear", "--participant-label", label,
            "--session-label", session, *extra]  # fmt: skip


def _t2_median(bids: Path, label: str = "01", session: str = "baseline") -> float:
    stem = f"sub-{label}_ses-{session}"
    path = bids.parent / "out" / f"sub-{label}/ses-{session}/anat/{stem}_desc-loglinear_T2ms.nii.gz"
    t2 = nib.load(path).get_fdata()
    return float(np.nanmedian(t2[np.isfinite(t2) & (t2 > 0)]))


def _fit_result(bids: Path, label: str = "01", session: str = "baseline") -> Path:
    node = f"t2quant_wf/sub_{label}_wf/ses_{session}_wf/t2map_wf/fit_t2/result_fit_t2.pklz"
    return bids.parent / "work" / node


def _sidecars(bids: Path, label: str = "01", session: str = "baseline") -> list[Path]:
    return sorted((bids / f"sub-{label}/ses-{session}/anat").glob("*_echo-*_MESE.json"))


def test_a_corrected_sidecar_is_refitted(study):
    assert main(_args(study)) == 0
    before = _t2_median(study)
    stamp = _fit_result(study).stat().st_mtime_ns
    assert main(_args(study)) == 0  # unchanged: nothing recomputed
    assert _fit_result(study).stat().st_mtime_ns == stamp
    for side in _sidecars(study):  # every echo time doubled, as if it had been entered wrong
        record = json.loads(side.read_text())
        record["EchoTime"] *= 2
        side.write_text(json.dumps(record))
    assert main(_args(study)) == 0
    assert _fit_result(study).stat().st_mtime_ns != stamp
    assert _t2_median(study) == pytest.approx(2 * before, rel=1e-3)  # log-linear: T2 scales


def test_a_replaced_echo_is_refitted(study):
    assert main(_args(study)) == 0
    before = _t2_median(study)
    last = sorted((study / "sub-01/ses-baseline/anat").glob("*_echo-*_MESE.nii.gz"))[-1]
    img = nib.load(last)
    half = np.asarray(img.dataobj, dtype=np.float32) * 0.5
    nib.save(nib.Nifti1Image(half, img.affine, img.header), last)
    assert main(_args(study)) == 0
    assert _t2_median(study) < 0.95 * before


def test_a_second_run_on_the_work_folder_is_refused_and_the_first_completes(study, capsys):
    cmd = [sys.executable, "-m", "t2quant.cli", *_args(study)]
    first = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lock = study.parent / "work" / ".t2quant.lock"
    deadline = time.monotonic() + 60
    while not (lock.exists() and lock.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert main(_args(study)) == 2
    err = capsys.readouterr().err
    assert err.startswith("t2quant: error: ") and "in use by another t2quant run" in err
    assert f"pid {first.pid}" in err and err.count("\n") == 1
    assert first.wait(timeout=600) == 0
    assert main(_args(study)) == 0  # the lock went with its holder


def test_a_half_written_cache_is_recomputed_to_identical_outputs(study):
    assert main(_args(study)) == 0
    out = study.parent / "out" / "sub-01" / "ses-baseline" / "anat"
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.suffix != ".png"}
    work = study.parent / "work" / "t2quant_wf" / "sub_01_wf" / "ses_baseline_wf"
    (work / "t2map_wf" / "fit_t2" / "result_fit_t2.pklz").write_bytes(b"")  # truncated
    segment = work / "discs_wf" / "segment"
    (segment / "result_segment.pklz").write_bytes(b"\x1f\x8b garbage")  # unreadable
    [hashfile] = segment.glob("_0x*.json")
    hashfile.rename(hashfile.with_name(hashfile.stem + "_unfinished.json"))
    features = work / "disc_features_wf" / "features"
    next(features.glob("*_discfeatures.tsv")).unlink()  # an output that went missing
    assert main(_args(study)) == 0
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.suffix != ".png"}
    assert after == before


def test_a_missing_echo_fails_in_one_line_and_the_rest_completes(study, capsys):
    anat = study / "sub-01" / "ses-wk06" / "anat"
    for path in anat.glob("*_echo-3_MESE.*"):
        path.unlink()
    args = [str(study), str(study.parent / "out"), "participant", "--work-dir",
            str(study.parent / "work"), "--t2-method", "loglinear", "--nprocs", "2",
            "--participant-label", "01", "--skip-bids-validation"]  # fmt: skip
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("t2quant: failed: sub-01/ses-wk06 fit_t2: ")
    assert "echo entities [1, 2, 4, 5, 6] are not 1..5; an echo is missing" in err[0]
    crash = Path(err[0].rsplit("(crash file: ", 1)[1].rstrip(")"))
    assert crash.is_file()
    out = study.parent / "out" / "sub-01"
    for ses in ("baseline", "wk12"):
        assert (out / f"ses-{ses}" / "anat" / f"sub-01_ses-{ses}_discfeatures.tsv").is_file()
    assert not (out / "ses-wk06").exists()
    report = (study.parent / "out" / "sub-01.html").read_text()
    assert "Failed" in report and "ses-wk06 fit_t2" in report
    assert "sub-01 / ses-baseline" in report and "sub-01 / ses-wk12" in report


def test_verbose_prints_the_traceback(study, capsys):
    for path in (study / "sub-01" / "ses-baseline" / "anat").glob("*_echo-2_MESE.*"):
        path.unlink()
    assert main(_args(study, "--verbose", "--skip-bids-validation")) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "an echo is missing" in err


def test_the_input_checks_stop_a_run_with_every_problem_listed(study, capsys):
    for path in (study / "sub-01" / "ses-wk06" / "anat").glob("*_echo-3_MESE.*"):
        path.unlink()
    side = study / "sub-02" / "ses-wk12" / "anat" / "sub-02_ses-wk12_echo-2_MESE.json"
    side.write_text(json.dumps({"EchoTime": 24}))
    assert main([str(study), str(study.parent / "out"), "participant"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("t2quant: error: ") and "2 problem(s) in the input dataset" in err
    assert "sub-01/ses-wk06/anat: echo entities [1, 2, 4, 5, 6] are not 1..5" in err
    assert f"{side}: EchoTime 24 looks like milliseconds" in err
    assert "--skip-bids-validation" in err
    assert not (study.parent / "work").exists()  # nothing ran


def test_the_bids_validator_stops_a_run_on_an_invalid_dataset(study, capsys):
    (study / "dataset_description.json").unlink()
    assert main([str(study), str(study.parent / "out"), "participant"]) == 2
    err = capsys.readouterr().err
    assert "BIDS validator MISSING_DATASET_DESCRIPTION" in err


def test_a_filter_file_chooses_between_two_series(study, capsys):
    anat = study / "sub-01" / "ses-baseline" / "anat"
    for path in list(anat.glob("*_echo-*_MESE.*")):
        copy = path.name.replace("_echo-", "_acq-fast_echo-")
        (anat / copy).write_bytes(path.read_bytes())
    args = _args(study)
    assert main(args) == 2
    assert "several MESE series" in capsys.readouterr().err
    filters = study.parent / "filters.json"
    filters.write_text(json.dumps({"mese": {"acquisition": None}}))
    assert main([*args, "--bids-filter-file", str(filters)]) == 0
    features = study.parent / "out/sub-01/ses-baseline/anat/sub-01_ses-baseline_discfeatures.tsv"
    assert features.is_file()
    filters.write_text(json.dumps({"mese": {"acquisition": "fast"}}))
    assert main([*args, "--bids-filter-file", str(filters)]) == 0
    fast = (
        study.parent / "out/sub-01/ses-baseline/anat/sub-01_ses-baseline_acq-fast_discfeatures.tsv"
    )
    assert fast.is_file()
    filters.write_text(json.dumps({"mese": {"acquisiton": "fast"}}))
    assert main([*args, "--bids-filter-file", str(filters)]) == 2
    assert "unknown entities ['acquisiton']" in capsys.readouterr().err


def test_reports_only_rebuilds_the_report_without_running(study):
    assert main(_args(study)) == 0
    report = study.parent / "out" / "sub-01.html"
    report.unlink()
    work = study.parent / "work"
    shutil.rmtree(work)
    assert main(_args(study, "--reports-only")) == 0
    assert "sub-01 / ses-baseline" in report.read_text()
    assert not work.exists()  # nothing was run


def test_the_methods_text_follows_the_settings(study):
    assert main(_args(study)) == 0
    logs = study.parent / "out" / "logs"
    text = (logs / "CITATION.md").read_text()
    assert "weighted log-linear least-squares fit" in text and "EPG" not in text
    assert "@pfirrmann2001" in text and "default ordinal (proportional-odds) grader" in text
    assert "@vandergraaf2024" in text  # the packaged grader was fitted on SPIDER
    assert "@article{pfirrmann2001" in (logs / "CITATION.bib").read_text()
    assert "<h1>Methods</h1>" in (logs / "CITATION.html").read_text()
    thresholds = study.parent / "thr.json"
    from t2quant.pfirrmann.suggest import default_thresholds

    thresholds.write_text(json.dumps({"thresholds": default_thresholds().as_dict()}))
    assert main(_args(study, "--t2-method", "epg", "--thresholds", str(thresholds))) == 0
    text = (logs / "CITATION.md").read_text()
    assert "extended phase graph" in text and "@lebel2010" in text
    assert f"a grader calibrated to the lab's own grades ({thresholds})" in text
    assert "@vandergraaf2024" not in text
    assert "@article{lebel2010" in (logs / "CITATION.bib").read_text()
    description = json.loads((study.parent / "out" / "dataset_description.json").read_text())
    assert "logs/CITATION.md" in description["HowToAcknowledge"]


def test_bids_app_options_before_the_positionals(study):
    root = study.parent
    args = ["--work-dir", str(root / "work"), "--t2-method", "loglinear", "--plugin", "Linear",
            str(study), str(root / "out"), "participant", "--participant-label", "02",
            "--session-label", "wk12"]  # fmt: skip
    assert main(args) == 0
    assert (root / "out/sub-02/ses-wk12/anat/sub-02_ses-wk12_discfeatures.tsv").is_file()
