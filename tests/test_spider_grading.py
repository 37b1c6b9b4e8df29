"""Assisted grades against radiologists on real patients: the shared SPIDER slices end to end.

The 87 mid-sagittal SPIDER slices in ``../shared/data`` (van der Graaf et al., Sci Data
11:264, 2024, CC BY 4.0) go through the commands a lab runs: ``t2quant segment`` (the
packaged segmenter, automatic masks), ``features``, ``calibrate`` (folds by patient) and
``validate`` on the out-of-fold grades.

The packaged disc-appearance network was trained on these patients, so its score on them is
in sample. Before ``calibrate``, the test puts in each disc's out-of-fold score
(``fixtures/spider_appearance_oof.tsv``, written by ``make train-grader``: the network of the
fold that did not see the patient), so the network's part of the figure is held out. The
fully nested figure (network and ordinal model both refitted inside the folds; needs
PyTorch) is ``bench/bench_spider_grading.py``'s: kappa_q 0.731, within one 0.924
(docs/validation.md). The floors are a little below what this test's protocol measured
(kappa_q 0.740, exact 0.543, within one 0.940); the issue's kappa, within-one and
no-confusion targets (0.80, 0.95, none) are not met, and this test guards the measured
level, not the targets. Skipped without the shared data.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from t2quant.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]
OOF = Path(__file__).resolve().parents[1] / "fixtures" / "spider_appearance_oof.tsv"

FLOORS = {  # measured: 0.740, 0.594, 0.543, 0.940, 0.976, 0.844
    "kappa_quadratic": 0.70,
    "kappa_linear": 0.55,
    "exact_agreement": 0.51,
    "within_one": 0.91,
    "fraction_manual_graded": 0.95,
    "ccc_aggregated": 0.78,
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
    _out_of_fold_appearance(root / "features")
    assert main(["calibrate", "--manual", str(grades), "--features",
                 str(root / "features"), "-o", str(root / "calibrate")]) == 0  # fmt: skip
    assert main(["validate", "--manual", str(grades), "--auto",
                 str(root / "calibrate" / "cv_grades.tsv"), "-o", str(root / "validate"),
                 "--participants", str(slices / "participants.tsv"),
                 "--bootstrap", "200"]) == 0  # fmt: skip
    return root, len(people)


def _out_of_fold_appearance(features: Path) -> None:
    """Each graded disc's appearance score from the network that did not see its patient."""
    oof = pd.read_csv(OOF, sep="\t", keep_default_na=False, dtype={"session": str})
    score = {(r.participant_id, r.level): float(r.appearance_score) for r in oof.itertuples()}
    for path in features.glob("*_discfeatures.tsv"):
        table = pd.read_csv(path, sep="\t")
        keys = zip(table["participant_id"], table["level"], strict=True)
        table["appearance_score"] = [score.get(key, np.nan) for key in keys]
        table.to_csv(path, sep="\t", index=False, na_rep="n/a")


def test_cross_validated_agreement_holds_its_measured_floor(spider):
    root, n_patients = spider
    result = json.loads((root / "validate" / "agreement.json").read_text())
    for name, floor in FLOORS.items():
        assert result[name] >= floor, f"{name} {result[name]:.3f} fell below {floor}"
    assert result["grade_1_4or5_swaps"] <= 3  # 2 measured
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
    # an input fitted against Pfirrmann's sign may only be one that carries almost no weight
    # (nucleus/CSF: +0.02 SD; the vertebral-body ratio carries the signal criterion), and the
    # appearance network's score (out of fold) carries the most weight
    inputs = calibration["ordinal_model"]["inputs"]
    for name in calibration["ordinal_against_pfirrmann"]:
        assert abs(inputs[name]["coefficient"]) < 0.05, name
    weights = {name: abs(v["coefficient"]) for name, v in inputs.items()}
    assert max(weights, key=weights.get) == "appearance_score"
    cv = calibration["ordinal_cross_validated"]
    assert cv["kappa_quadratic"] >= FLOORS["kappa_quadratic"]
    # the in-sample fit of the packaged model scores higher than cross-validation: the honest
    # figure is the cross-validated one
    assert calibration["default_ordinal"]["kappa_quadratic"] >= cv["kappa_quadratic"] - 0.02
    grades = pd.read_csv(root / "calibrate" / "cv_grades.tsv", sep="\t")
    assert grades["pfirrmann_model"].str.startswith("ordinal, cross-validated").all()
