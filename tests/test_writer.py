"""End to end: the synthetic BIDS study on disk, its sidecars, ground truth and resume."""

from __future__ import annotations

import json
import re

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from t2quant.cli import main
from t2quant.io import read_tsv
from t2quant.levels import LEVEL_INDEX, LEVELS
from t2quant.synth.protocol import TINY
from t2quant.synth.writer import StudySettings, write_synthetic_study

SETTINGS = StudySettings(n_participants=2, seed=5, protocol=TINY)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    discs = write_synthetic_study(out, SETTINGS)
    return out, discs


def test_bids_layout_and_names(study):
    out, _ = study
    desc = json.loads((out / "dataset_description.json").read_text())
    assert desc["DatasetType"] == "raw" and desc["BIDSVersion"]
    deriv = json.loads((out / "derivatives/groundtruth/dataset_description.json").read_text())
    assert deriv["DatasetType"] == "derivative" and deriv["GeneratedBy"][0]["Name"] == "t2quant"
    participants = read_tsv(out / "participants.tsv")
    assert list(participants.columns) == [
        "participant_id",
        "group",
        "sex",
        "age",
        "bmi",
        "running_volume_km",
        "running_volume_6_12_km",
        "mean_speed_kmh",
        "dominant_surface",
    ]
    pattern = re.compile(r"^sub-\d+_ses-(baseline|wk06|wk12)_echo-([1-6])_MESE\.nii\.gz$")
    mese = sorted((out).glob("sub-*/ses-*/anat/*_MESE.nii.gz"))
    assert len(mese) == 2 * 3 * TINY.n_echoes
    assert all(pattern.match(p.name) for p in mese)
    sessions = read_tsv(out / "sub-01" / "sub-01_sessions.tsv")
    assert sessions.session_id.tolist() == ["ses-baseline", "ses-wk06", "ses-wk12"]
    lut = read_tsv(out / "derivatives/groundtruth/desc-discs_dseg.tsv")
    assert list(lut.columns) == ["index", "name", "abbreviation", "color"]
    assert dict(zip(lut["index"], lut["name"], strict=True))[7] == "L5/S1"


def test_echo_sidecars_hold_increasing_echo_times_in_seconds(study):
    out, _ = study
    anat = out / "sub-01/ses-wk06/anat"
    tes = [
        json.loads((anat / f"sub-01_ses-wk06_echo-{n}_MESE.json").read_text())["EchoTime"]
        for n in range(1, TINY.n_echoes + 1)
    ]
    np.testing.assert_allclose(tes, TINY.echo_times_ms / 1000.0)
    img = nib.load(anat / "sub-01_ses-wk06_echo-1_MESE.nii.gz")
    assert nib.aff2axcodes(img.affine) == ("P", "I", "R")
    assert img.get_data_dtype() == np.uint16


def test_truth_table_equals_the_truth_maps_on_disk(study):
    out, discs = study
    assert len(discs) == 2 * 3 * 7
    assert set(discs.level) == set(LEVELS)
    for (pid, ses), rows in discs.groupby(["participant_id", "session"]):
        gt = out / "derivatives/groundtruth" / pid / f"ses-{ses}" / "anat"
        t2map = nib.load(gt / f"{pid}_ses-{ses}_desc-true_T2map.nii.gz")
        labels = np.asarray(nib.load(gt / f"{pid}_ses-{ses}_desc-discs_dseg.nii.gz").dataobj)
        t2_ms = 1000.0 * np.asarray(t2map.dataobj, dtype=np.float64)
        for row in rows.itertuples():
            mask = labels == LEVEL_INDEX[row.level]
            assert row.t2_true_ms == pytest.approx(t2_ms[mask].mean(), rel=1e-5)
            assert row.disc_voxels == mask.sum()
    sidecar = json.loads((gt / f"{pid}_ses-{ses}_desc-true_T2map.json").read_text())
    assert sidecar["Units"] == "s"
    assert 0.02 < np.nanmax(t2_ms[labels > 0]) / 1000.0 < 0.5  # seconds, not ms


def test_true_changes_follow_the_generative_model(study):
    out, discs = study
    truth = read_tsv(out / "derivatives/groundtruth/participants_truth.tsv")
    effects = json.loads((out / "derivatives/groundtruth/effects.json").read_text())
    assert effects["time_fraction"] == {"baseline": 0.0, "wk06": 0.5, "wk12": 1.0}
    merged = discs.merge(truth[["participant_id", "true_effect_wk12_ms"]], on="participant_id")
    wk12 = merged[merged.session == "wk12"]
    np.testing.assert_allclose(wk12.true_effect_ms, wk12.true_effect_wk12_ms)
    grades = truth.filter(like="pfirrmann_").iloc[0]
    first = discs[(discs.participant_id == "sub-01") & (discs.session == "baseline")]
    assert first.pfirrmann_true.tolist() == grades.tolist()


def test_rerun_resumes_and_other_settings_are_refused(study):
    out, discs = study
    probe = out / "sub-02/ses-wk12/anat/sub-02_ses-wk12_echo-1_MESE.nii.gz"
    before = probe.stat().st_mtime_ns
    again = write_synthetic_study(out, SETTINGS)
    assert probe.stat().st_mtime_ns == before
    pd.testing.assert_frame_equal(
        again.reset_index(drop=True), discs.reset_index(drop=True), check_dtype=False
    )
    with pytest.raises(FileExistsError, match="other settings"):
        write_synthetic_study(out, StudySettings(n_participants=2, seed=6, protocol=TINY))


def test_cli_writes_a_study_and_rejects_bad_arguments(tmp_path, capsys):
    def study(seed: str) -> list[str]:
        out = str(tmp_path / "s")
        return ["synth-study", out, "--participants", "2", "--protocol", "tiny", "--seed", seed]

    assert main(study("3")) == 0
    assert "wrote 6 sessions of 2 participants" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["synth-study", str(tmp_path / "t"), "--participants", "0"])
    assert main(study("4")) == 2  # same folder, other settings: refused
    assert "other settings" in capsys.readouterr().err


@pytest.mark.shared_data
def test_cli_simulates_a_session_on_the_real_anatomy(shared_data, tmp_path, capsys):
    real = shared_data / "real" / "menezes-reis-ivd-11"
    out = tmp_path / "real"
    code = main(
        [
            "synth-real",
            str(real / "T2w.nii.gz"),
            str(real / "discs_manual.nii.gz"),
            "-o",
            str(out),
            "--orientation",
            "IPR",
            "--n-echoes",
            "8",
        ]
    )
    assert code == 0
    assert "L5/S1" in capsys.readouterr().out
    anat = out / "sub-real/ses-baseline/anat"
    assert len(list(anat.glob("*_MESE.nii.gz"))) == 8
    te = json.loads((anat / "sub-real_ses-baseline_echo-8_MESE.json").read_text())["EchoTime"]
    assert te == pytest.approx(0.080)
    img = nib.load(anat / "sub-real_ses-baseline_echo-1_MESE.nii.gz")
    assert nib.aff2axcodes(img.affine) == ("I", "P", "R")
    gt = out / "derivatives/groundtruth/sub-real/ses-baseline/anat"
    table = read_tsv(gt / "sub-real_ses-baseline_desc-truth_discs.tsv").set_index("level")
    manual = np.asarray(nib.load(real / "discs_manual.nii.gz").dataobj)
    assert table.loc["L5/S1", "disc_voxels"] == (manual == 1).sum()
    assert table.loc["L1/L2", "disc_voxels"] == (manual == 5).sum()
    assert table.loc["T12/L1", "qc_reason"] == "not labelled in the source segmentation"
    labels = np.asarray(nib.load(gt / "sub-real_ses-baseline_desc-discs_dseg.nii.gz").dataobj)
    t2 = 1000.0 * np.asarray(nib.load(gt / "sub-real_ses-baseline_desc-true_T2map.nii.gz").dataobj)
    assert table.loc["L4/L5", "t2_true_ms"] == pytest.approx(t2[labels == 6].mean(), rel=1e-5)


def test_cli_names_a_missing_input_file(tmp_path, capsys):
    code = main(
        [
            "synth-real",
            str(tmp_path / "none.nii.gz"),
            str(tmp_path / "none2.nii.gz"),
            "-o",
            str(tmp_path / "o"),
            "--orientation",
            "IPR",
        ]
    )
    assert code == 2
    assert "none.nii.gz: no such file" in capsys.readouterr().err
