"""The study's generative model: participants, grades, moderators, effects."""

from __future__ import annotations

import json
from collections import Counter
from importlib import resources

import numpy as np
import pandas as pd
import pytest

from t2quant.levels import LEVELS
from t2quant.synth.grades import sample_grades
from t2quant.synth.study import (
    SESSIONS,
    TrueEffects,
    disc_offsets_ms,
    draw_participants,
    participant_truth,
)


@pytest.fixture(scope="module")
def trial():
    return draw_participants(40, seed=0)


def test_default_study_mirrors_the_trial(trial):
    assert len(trial) == 40
    assert Counter(trial.group) == {"run": 20, "control": 20}
    for g in ("run", "control"):
        assert Counter(trial.sex[trial.group == g]) == {"F": 10, "M": 10}
    assert trial.age.between(18, 45).all()
    assert trial.participant_id.tolist()[:2] == ["sub-01", "sub-02"]


def test_running_exposure_only_for_runners(trial):
    run = trial[trial.group == "run"]
    ctl = trial[trial.group == "control"]
    assert run.running_volume_km.between(1.8, 109.8).all()
    assert (run.running_volume_6_12_km < run.running_volume_km).all()
    assert run.mean_speed_kmh.between(4.4, 11.7).all()
    assert Counter(run.dominant_surface) == {"grass": 5, "gravel": 5, "pavement": 5, "trail": 5}
    assert ctl[["running_volume_km", "mean_speed_kmh"]].isna().all().all()
    assert ctl.dominant_surface.isna().all()


def test_grades_follow_spider_marginals_by_level():
    model = json.loads(
        resources.files("t2quant.data").joinpath("spider_grade_model.json").read_text()
    )
    rng = np.random.default_rng(1)
    draws = [sample_grades(rng) for _ in range(6000)]
    for level in ("L5/S1", "L3/L4", "T12/L1"):
        counts = np.array(model["grade_counts_by_level"][level])
        expected = counts / counts.sum()
        got = np.bincount([d[level] for d in draws], minlength=6)[1:] / len(draws)
        np.testing.assert_allclose(got, expected, atol=0.025)
    # One spine degenerates as a whole: grades of two levels are positively correlated.
    a = np.array([d["L4/L5"] for d in draws])
    b = np.array([d["L1/L2"] for d in draws])
    assert np.corrcoef(a, b)[0, 1] > 0.3


def test_runner_effect_has_sweet_spot_grass_top_quartile_and_no_bmi_effect():
    e = TrueEffects()
    kw = {"aggregated_pfirrmann": 18, "surface": "pavement", "speed_kmh": 8.0, "bmi": 25.0}
    at_peak = e.runner_effect_ms(volume_km=37.0, **kw)
    assert at_peak == pytest.approx(e.base_ms + e.volume_peak_ms)
    assert e.runner_effect_ms(volume_km=100.0, **kw) < at_peak - 3.5
    assert e.runner_effect_ms(volume_km=5.0, **kw) < at_peak - 3.0
    grass = e.runner_effect_ms(volume_km=37.0, **{**kw, "surface": "grass"})
    assert grass - at_peak == pytest.approx(2.0)
    top = e.runner_effect_ms(volume_km=37.0, **{**kw, "aggregated_pfirrmann": 23})
    assert top - at_peak == pytest.approx(2.5)
    heavy = e.runner_effect_ms(volume_km=37.0, **{**kw, "bmi": 35.0})
    assert heavy == at_peak


def test_effect_at_12_weeks_is_twice_that_at_6_and_controls_have_none(trial):
    truth = participant_truth(trial, TrueEffects(), seed=0)
    run = truth[truth.group == "run"]
    ctl = truth[truth.group == "control"]
    np.testing.assert_allclose(run.true_effect_wk12_ms, 2 * run.true_effect_wk06_ms)
    assert (run.true_effect_baseline_ms == 0).all()
    assert (ctl[[f"true_effect_{s}_ms" for s in SESSIONS]] == 0).all().all()
    assert run.true_effect_wk12_ms.mean() > 2.0
    agg = truth.aggregated_pfirrmann
    assert agg.between(7, 35).all()


def test_disc_offsets_combine_random_effects_drift_effect_and_noise(trial):
    e = TrueEffects(measurement_sd_ms=0.0, disc_sd_ms=0.0)
    truth = participant_truth(trial, e, seed=0)
    row = truth.iloc[0]
    offsets = disc_offsets_ms(row, e, seed=0, participant_index=0)
    base = row.participant_effect_ms
    for level in LEVELS:
        assert offsets["baseline"][level] == pytest.approx(base)
        assert offsets["wk12"][level] == pytest.approx(base + e.drift_ms + row.true_effect_wk12_ms)


def test_bad_study_arguments():
    with pytest.raises(ValueError, match="participants >= 2"):
        draw_participants(1, seed=0)
    with pytest.raises(ValueError, match="unknown group"):
        draw_participants(2, seed=0, groups=["run", "placebo"])
    with pytest.raises(ValueError, match="unknown running surface"):
        TrueEffects().runner_effect_ms(
            volume_km=10, aggregated_pfirrmann=20, surface="ice", speed_kmh=9, bmi=22
        )
    given = draw_participants(3, seed=0, groups=["control", "control", "run"])
    assert given.group.tolist() == ["control", "control", "run"]
    assert isinstance(given, pd.DataFrame)
