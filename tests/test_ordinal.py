"""The ordinal Pfirrmann grader: score, cut-points, words, model files, calibration folds."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from t2quant.errors import InputError
from t2quant.pfirrmann import default_model, load_grader, suggest_pfirrmann
from t2quant.pfirrmann.calibrate import (
    UNSEEN_CUT,
    _five_grade_cuts,
    cross_validate,
    fit_ordinal,
    participant_folds,
)
from t2quant.pfirrmann.ordinal import OrdinalModel, grade_ordinal, model_from_dict, predict_grades

MODEL = OrdinalModel(
    inputs=("log_nucleus_csf_ratio", "nucleus_annulus_contrast", "disc_height_index"),
    coef=(-1.0, -2.0, -0.5),
    centre=(0.0, 0.0, 0.3),
    scale=(1.0, 1.0, 0.1),
    fill=(0.0, 0.0, 0.3),
    cuts=(-2.0, -1.0, 1.0, 2.0),
)


def disc(ratio, contrast, dhi=0.3, status="ok", reason=""):
    return {"nucleus_csf_ratio": ratio, "nucleus_annulus_contrast": contrast,
            "disc_height_index": dhi, "qc_status": status, "qc_reason": reason}  # fmt: skip


def test_score_against_the_cuts_gives_the_grade_its_probability_and_words():
    # log(ratio) = -1.5 -> term +1.5; contrast 0 -> 0; height index at its centre -> 0
    table = pd.DataFrame([disc(math.exp(-1.5), 0.0)])
    ((grade, conf, words),) = grade_ordinal(table, MODEL)
    assert grade == 4.0
    sigmoid = 1 / (1 + math.exp(-0.5))
    assert conf == pytest.approx(sigmoid - (1 - sigmoid))  # P(<=4) - P(<=3) at eta 1.5
    assert words.startswith("degeneration score +1.00 < +1.50 <= +2.00: grade 4 (gray to black")
    assert "nucleus signal 0.22 x CSF: toward degeneration (100%)" in words
    assert "nucleus/annulus contrast 0.00: neutral (0%)" in words


@pytest.mark.parametrize(
    ("contrast", "grade"), [(1.5, 1), (0.75, 2), (0.0, 3), (-0.75, 4), (-1.5, 5)]
)
def test_each_grade_between_its_cuts(contrast, grade):
    # eta = -2 x contrast: -3, -1.5, 0, 1.5, 3
    table = pd.DataFrame([disc(1.0, contrast)])
    assert predict_grades(table, MODEL).tolist() == [grade]
    assert grade_ordinal(table, MODEL)[0][0] == grade


def test_a_missing_height_takes_the_typical_value_and_says_so():
    table = pd.DataFrame([disc(math.exp(-1.5), 0.0, dhi=np.nan)])
    ((grade, _, words),) = grade_ordinal(table, MODEL)
    assert grade == 4.0 and "disc height index not measured (typical value assumed)" in words


def test_a_disc_without_signal_or_not_measured_is_not_graded_and_says_why():
    table = pd.DataFrame([disc(np.nan, 0.3), disc(np.nan, np.nan, status="failed",
                                                  reason="not segmented")])  # fmt: skip
    out = grade_ordinal(table, MODEL)
    assert np.isnan(out[0][0]) and out[0][2].startswith("not graded: no nucleus")
    assert out[1] == (pytest.approx(np.nan, nan_ok=True), 0.0, "not graded: not segmented")
    graded = suggest_pfirrmann(table, MODEL)
    assert graded["pfirrmann_suggested"].isna().all()


def test_model_file_round_trip_and_checks(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps(MODEL.as_dict()))
    assert load_grader(path) == MODEL
    bad = MODEL.as_dict()
    bad["ordinal"]["cuts"] = [0, -1, 1, 2]
    with pytest.raises(InputError, match="must not decrease"):
        model_from_dict(bad, "m.json")
    bad = MODEL.as_dict()
    bad["ordinal"]["inputs"]["shoe_size"] = bad["ordinal"]["inputs"].pop("disc_height_index")
    with pytest.raises(InputError, match="unknown criterion 'shoe_size'"):
        model_from_dict(bad, "m.json")
    bad = MODEL.as_dict()
    bad["ordinal"]["inputs"]["disc_height_index"]["scale"] = 0
    with pytest.raises(InputError, match="positive 'scale'"):
        model_from_dict(bad, "m.json")


def test_the_packaged_model_is_the_default_and_grades_dark_discs_higher():
    model = default_model()
    assert model.fitted_on["n_participants"] >= 50
    bright = disc(0.6, 0.5) | {"nucleus_vertebra_ratio": 1.2, "nucleus_brightest_ratio": 1.0,
                               "appearance_score": 1.5}  # fmt: skip
    dark = disc(0.12, 0.1) | {"nucleus_vertebra_ratio": 0.25, "nucleus_brightest_ratio": 0.4,
                              "appearance_score": 4.2}  # fmt: skip
    out = suggest_pfirrmann(pd.DataFrame([bright, dark]))
    grades = out["pfirrmann_suggested"].tolist()
    assert grades[0] <= 2 and grades[1] >= 4
    assert "overall look reads as grade 1.5: toward a healthy disc" in out["pfirrmann_criteria"][0]
    # without the network's score the criteria-only fallback grades the disc: the same
    # grades, from the measured criteria alone (no typical value stands in for the network)
    del bright["appearance_score"], dark["appearance_score"]
    out = suggest_pfirrmann(pd.DataFrame([bright, dark]))
    assert out["pfirrmann_suggested"].tolist() == grades
    assert not out["pfirrmann_criteria"].str.contains("overall look").any()
    assert "nucleus signal 1.20 x the adjacent vertebral bodies" in out["pfirrmann_criteria"][0]
    # a model given explicitly is used as it is: the network's typical value (its training
    # median) then outweighs the criteria and leaves both discs in the middle, which is
    # why the packaged default falls back to the criteria-only model
    mixed = suggest_pfirrmann(pd.DataFrame([bright, dark]), model)
    assert mixed["pfirrmann_suggested"].tolist() == [3, 3]


def test_cuts_of_grades_never_seen():
    assert _five_grade_cuts([1, 2, 3, 4, 5], [-2, -1, 1, 2]) == (-2, -1, 1, 2)
    assert _five_grade_cuts([2, 3, 4], [-1, 1]) == (-UNSEEN_CUT, -1, 1, UNSEEN_CUT)
    assert _five_grade_cuts([1, 2, 4, 5], [-2, 0, 2]) == (-2, 0, 0, 2)


def test_folds_keep_a_participant_together_and_fit_recovers_the_order():
    rng = np.random.default_rng(3)
    n = 400
    pid = np.repeat([f"sub-{i:02d}" for i in range(40)], 10)
    latent = rng.normal(size=n)
    grade = np.digitize(latent + 0.3 * rng.normal(size=n), [-1.0, -0.3, 0.3, 1.0]) + 1
    table = pd.DataFrame({
        "participant_id": pid, "qc_status": "ok", "qc_reason": "",
        "nucleus_csf_ratio": np.exp(-1.0 - 0.5 * latent),
        "nucleus_annulus_contrast": 0.4 - 0.1 * latent + 0.05 * rng.normal(size=n),
    })  # fmt: skip
    folds = participant_folds(table["participant_id"], 5, seed=0)
    assert (table.groupby("participant_id")["participant_id"].transform("size") == 10).all()
    assert pd.Series(folds).groupby(pid).nunique().eq(1).all()
    assert sorted(np.bincount(folds).tolist()) == [80] * 5
    model = fit_ordinal(table, grade, inputs=("log_nucleus_csf_ratio", "nucleus_annulus_contrast"))
    assert model.coef[0] < 0  # a brighter nucleus: a healthier disc
    stats, pred = cross_validate(table, grade, model="ordinal", folds=5)
    assert stats["kappa_quadratic"] > 0.8 and np.isfinite(pred).all()
