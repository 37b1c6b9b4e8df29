"""Assisted grades against radiologists on real patients: the shared SPIDER slices end to end.

The 87 mid-sagittal SPIDER slices in ``../shared/data`` (van der Graaf et al., Sci Data
11:264, 2024, CC BY 4.0) go through the commands a lab runs: ``t2quant segment`` (the
packaged segmenter, automatic masks), ``features``, ``calibrate`` (folds by patient) and
``validate`` on the out-of-fold grades. The floors are a little below what was measured
when the packaged model was fitted (docs/validation.md: kappa_q 0.635, kappa_lin 0.509,
exact 0.515, within one 0.897, 97.6% of the radiologists' discs graded, CCC 0.817, 3 grade
1 <-> 4/5 confusions); the issue's kappa, within-one and no-confusion targets (0.80, 0.95,
none) are not met, and this test guards the measured level, not the targets. Skipped
without the shared data.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from t2quant.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]

FLOORS = {
    "kappa_quadratic": 0.58,
    "kappa_linear": 0.46,
    "exact_agreement": 0.47,
    "within_one": 0.87,
    "fraction_manual_graded": 0.95,
    "ccc_aggregated": 0.75,
}


@pytest.fixture(scope="module")
def spider(shared_data, tmp_path_factory):
    slices = shared_data / "real" / "spider-midsagittal-t2"
    grades = shared_data / "reference" / "spider-gradings" / "radiological_gradings.csv"
    if not slices.is_dir() or not grades.is_file():
        pytest.skip("the SPIDER slices or gradings are not in ../shared/data")
    root = tmp_path_factory.mktemp("spider")
    people = pd.read_csv(slices / "participants.tsv", sep="\t")
    for pid in people["participant_id"]:
        image = str(slices / pid / f"{pid}_T2w.nii.gz")
        assert main(["segment", image, "-o", str(root / "seg")]) == 0
        labels = str(root / "seg" / f"{pid}_dseg.nii.gz")
        assert main(["features", image, "--labels", labels, "-o", str(root / "features")]) == 0
    assert main(["calibrate", "--manual", str(grades), "--features",
                 str(root / "features"), "-o", str(root / "calibrate")]) == 0  # fmt: skip
    assert main(["validate", "--manual", str(grades), "--auto",
                 str(root / "calibrate" / "cv_grades.tsv"), "-o", str(root / "validate"),
                 "--participants", str(slices / "participants.tsv"),
                 "--bootstrap", "200"]) == 0  # fmt: skip
    return root, len(people)


def test_cross_validated_agreement_holds_its_measured_floor(spider):
    root, n_patients = spider
    result = json.loads((root / "validate" / "agreement.json").read_text())
    for name, floor in FLOORS.items():
        assert result[name] >= floor, f"{name} {result[name]:.3f} fell below {floor}"
    assert result["grade_1_4or5_swaps"] <= 4  # 3 measured
    assert result["n_participants"] >= 0.85 * n_patients
    assert set(result["by_scanner"]) >= {"Philips 3 T", "Siemens 1.5 T"}
    # every radiologist-graded disc keeps its row; an ungraded one says why
    assert sum(result["not_graded_reasons"].values()) == result["n_manual"] - result["n_discs"]
    low, high = result["ci95"]["kappa_quadratic"]
    assert low < result["kappa_quadratic"] < high


def test_calibration_folds_never_grade_a_patient_with_a_model_that_saw_them(spider):
    root, _ = spider
    calibration = json.loads((root / "calibrate" / "calibration.json").read_text())
    assert calibration["chosen"] == "ordinal"
    # an input fitted against Pfirrmann's sign may only be one that carries no weight
    # (nucleus/CSF: +0.003 SD, the vertebral-body ratio carries the signal criterion)
    inputs = calibration["ordinal_model"]["inputs"]
    for name in calibration["ordinal_against_pfirrmann"]:
        assert abs(inputs[name]["coefficient"]) < 0.05, name
    cv = calibration["ordinal_cross_validated"]
    assert cv["kappa_quadratic"] >= FLOORS["kappa_quadratic"]
    # the in-sample fit of the packaged model scores higher than cross-validation: the honest
    # figure is the cross-validated one
    assert calibration["default_ordinal"]["kappa_quadratic"] >= cv["kappa_quadratic"] - 0.02
    grades = pd.read_csv(root / "calibrate" / "cv_grades.tsv", sep="\t")
    assert grades["pfirrmann_model"].str.startswith("ordinal, cross-validated").all()
