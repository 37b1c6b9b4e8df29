"""The ground-truth check of a synthetic study: exact values on small tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from t2quant.validation.groundtruth import disc_t2_errors, moderator_coverage, summarise_coverage


def test_disc_t2_errors_pair_discs_by_participant_session_level():
    truth = pd.DataFrame({"participant_id": ["sub-01"] * 3, "session": ["baseline"] * 3,
                          "level": ["L3/L4", "L4/L5", "L5/S1"],
                          "t2_true_ms": [80.0, 70.0, 60.0]})  # fmt: skip
    measured = pd.DataFrame({"participant_id": ["sub-01"] * 3, "session": ["baseline"] * 3,
                             "level": ["L5/S1", "L4/L5", "L3/L4"],
                             "t2_mean_ms": [61.5, np.nan, 79.0]})  # fmt: skip
    errors = disc_t2_errors(measured, truth, "t2_mean_ms")
    assert sorted(errors.tolist()) == [-1.0, 1.5]  # the unmeasured disc is not an error of 0


def _moderators() -> pd.DataFrame:
    return pd.DataFrame({
        "moderator": ["overall", "overall", "sex", "sex", "bmi"],
        "subgroup": ["all", "all", "F", "F", "per unit"],
        "timepoint_weeks": [6, 12, 6, 12, 12],
        "estimate_ms": [1.0, 2.0, 0.5, 4.0, 0.1],
        "se_ms": [0.5, 0.5, 0.5, 0.5, 0.1],
        "ci_low_ms": [0.0, 1.0, -0.5, 3.0, -0.1],
        "ci_high_ms": [2.0, 3.0, 1.5, 5.0, 0.3],
    })  # fmt: skip


def test_moderator_coverage_compares_each_row_with_its_true_effect():
    truth = {("overall", "all", 6): 1.2, ("overall", "all", 12): 2.4, ("sex", "F", 6): 0.0,
             ("sex", "F", 12): 2.0}  # fmt: skip
    cov = moderator_coverage(_moderators(), truth)
    assert len(cov) == 4  # the continuous per-unit row has no true effect
    assert cov["covered"].tolist() == [True, True, True, False]
    assert cov["z"].tolist() == pytest.approx([-0.4, -0.8, 1.0, 4.0])


def test_summarise_coverage_explains_misses_by_the_binomial_limit():
    truth = {("overall", "all", 12): 2.4, ("sex", "F", 12): 2.0}
    summary = summarise_coverage(moderator_coverage(_moderators(), truth), 12)
    assert (summary["n_estimates"], summary["n_covered"]) == (2, 1)
    # 2 intervals at 95%: P(no miss) = 0.9025 < 0.95, so the binomial 95% limit is 1 miss
    assert summary["misses_expected_by_chance_up_to"] == 1
    assert summary["all_covered_or_explained_by_chance"]
    assert summary["misses"][0]["subgroup"] == "F"
    assert "4.00 SE" in summary["misses"][0]["explanation"]
    many = pd.concat([moderator_coverage(_moderators(), truth)] * 20, ignore_index=True)
    summary = summarise_coverage(many, 12)  # 40 intervals, 20 misses: far more than chance
    assert summary["misses_expected_by_chance_up_to"] == 4
    assert not summary["all_covered_or_explained_by_chance"]
