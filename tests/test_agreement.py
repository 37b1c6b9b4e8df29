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


def test_cluster_bootstrap_resamples_whole_clusters():
    clusters = np.array(["a", "a", "b", "b", "c", "c"])
    values = np.array([1.0, 1.0, 2.0, 2.0, 3.0, 3.0])
    seen = []

    def mean(idx):
        seen.append(len(idx))
        return float(values[idx].mean())

    low, high = ag.cluster_bootstrap(clusters, mean, n_resamples=500, seed=1)
    assert set(seen) == {6}  # three clusters of two items drawn each time
    assert 1.0 <= low < 2.0 < high <= 3.0
    assert ag.cluster_bootstrap(clusters, lambda idx: 0.7, n_resamples=50) == (0.7, 0.7)
    again = ag.cluster_bootstrap(clusters, mean, n_resamples=500, seed=1)
    assert again == (low, high)  # reproducible for a seed
    assert np.isnan(ag.cluster_bootstrap(clusters, lambda idx: np.nan, n_resamples=5)[0])


def test_validate_reports_intervals_levels_and_scanners(tmp_path):
    import json

    import pandas as pd

    from t2quant.cli import main
    from t2quant.io import write_tsv

    levels = ["L3/L4", "L4/L5", "L5/S1"]
    rows = [(f"sub-{p}", lvl, g) for p in range(6) for lvl, g in zip(levels, (1, 3, 5),
                                                                    strict=True)]  # fmt: skip
    manual = pd.DataFrame(rows, columns=["participant_id", "level", "pfirrmann"])
    auto = manual.rename(columns={"pfirrmann": "pfirrmann_suggested"})
    auto.loc[auto["participant_id"] == "sub-0", "pfirrmann_suggested"] = [2, 3, 5]
    write_tsv(manual, tmp_path / "m.tsv")
    write_tsv(auto, tmp_path / "a.tsv")
    scanners = pd.DataFrame({"participant_id": [f"sub-{p}" for p in range(6)],
                             "manufacturer": ["SIEMENS"] * 3 + ["Philips Healthcare"] * 3,
                             "field_strength_t": [1.5] * 3 + [3.0] * 3})  # fmt: skip
    write_tsv(scanners, tmp_path / "p.tsv")
    assert main(["validate", "--manual", str(tmp_path / "m.tsv"), "--auto",
                 str(tmp_path / "a.tsv"), "-o", str(tmp_path / "v"), "--participants",
                 str(tmp_path / "p.tsv"), "--bootstrap", "300"]) == 0  # fmt: skip
    result = json.loads((tmp_path / "v" / "agreement.json").read_text())
    assert result["n_discs"] == 18 and result["exact_agreement"] == pytest.approx(17 / 18)
    low, high = result["ci95"]["exact_agreement"]
    assert low < 17 / 18 <= high == 1.0  # sub-0's miss is drawn in some resamples, not all
    assert list(result["by_level"]) == levels
    assert result["by_level"]["L3/L4"]["exact_agreement"] == pytest.approx(5 / 6)
    assert result["by_level"]["L5/S1"]["exact_agreement"] == 1.0
    assert set(result["by_scanner"]) == {"Siemens 1.5 T", "Philips 3 T"}
    assert result["by_scanner"]["Philips 3 T"]["exact_agreement"] == 1.0
    assert result["confusion"]["counts"][0][:2] == [5, 1]
    assert result["grade_1_4or5_swaps"] == 0
