"""Agreement statistics against hand-computed values and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest

from t2quant.validation import agreement as ag

# Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges; ICC(2,1) = 0.29.
SHROUT_FLEISS = np.array(
    [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
)


def test_kappa_by_hand():
    a = [1, 1, 2, 2, 3, 3]
    b = [1, 2, 2, 2, 3, 1]
    # observed agreement 4/6; marginals a (2,2,2), b (2,3,1): expected (4+6+2)/36 = 1/3
    assert ag.weighted_kappa(a, b, weights=None, categories=(1, 2, 3)) == pytest.approx(0.5)
    # quadratic, in counts: observed sum of w*O = 1 + 4 = 5; expected E_ij = 2 b_j / 6, so
    # sum of w*E = (5 * 2 + 2 * 3 + 5 * 1) / 3 = 7
    assert ag.weighted_kappa(a, b, weights="quadratic", categories=(1, 2, 3)) == pytest.approx(
        1 - 5 / 7
    )


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_kappa_matches_scikit_learn(weights):
    sklearn = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(4)
    a = rng.integers(1, 6, 300)
    b = np.clip(a + rng.integers(-1, 2, 300) * (rng.random(300) < 0.4), 1, 5)
    assert ag.weighted_kappa(a, b, weights=weights) == pytest.approx(
        sklearn.cohen_kappa_score(a, b, weights=weights), abs=1e-12
    )


def test_exact_within_one_and_confusion():
    a, b = [1, 2, 3, 4, 5], [1, 3, 5, 4, 4]
    assert ag.exact_agreement(a, b) == pytest.approx(0.4)
    assert ag.within_one(a, b) == pytest.approx(0.8)
    c = ag.confusion(a, b)
    assert c[1, 2] == 1 and c[2, 4] == 1 and np.trace(c) == 2 and c.sum() == 5
    with pytest.raises(ValueError, match="among"):
        ag.confusion([0], [1])


def test_icc_2_1_reproduces_shrout_and_fleiss():
    assert ag.icc_2_1(SHROUT_FLEISS) == pytest.approx(0.2898, abs=5e-4)
    assert ag.icc_2_1(np.column_stack([np.arange(10.0)] * 2)) == pytest.approx(1.0)


def test_lin_ccc_by_hand():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    assert ag.lin_ccc(x, x) == pytest.approx(1.0)
    # y = x + 1: cov 1.25, var 1.25 each, mean shift 1: 2.5 / (2.5 + 1)
    assert ag.lin_ccc(x, x + 1) == pytest.approx(2.5 / 3.5)


def test_bland_altman_and_dice():
    ba = ag.bland_altman([10.0, 12.0, 14.0], [9.0, 10.0, 11.0])
    assert ba["bias"] == pytest.approx(2.0)
    assert ba["sd"] == pytest.approx(1.0)
    assert ba["loa_high"] == pytest.approx(3.96)
    a = np.zeros(10, bool)
    a[:4] = True
    b = np.zeros(10, bool)
    b[2:6] = True
    assert ag.dice(a, b) == pytest.approx(0.5)
