"""Fit the assistant to a lab's own manual grades, with honest (cross-validated) agreement.

Two models:

- ``thresholds``: the Pfirrmann walk of :mod:`t2quant.pfirrmann.suggest` with its threshold
  values fitted by coordinate search (each threshold in turn over the quantiles of its
  feature, keeping the order black < intermediate < hyperintense < bright white) to
  maximise quadratic-weighted kappa;
- ``ordinal``: a proportional-odds logistic model (statsmodels ``OrderedModel``) of the grade
  on log nucleus/CSF ratio, nucleus/annulus contrast, band depth and disc height index.

Agreement is cross-validated with folds that keep each participant's discs together, so a
participant's discs are never graded by a model that saw them.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pandas as pd

from t2quant.errors import InputError
from t2quant.pfirrmann.suggest import Thresholds, default_thresholds
from t2quant.validation.agreement import exact_agreement, weighted_kappa, within_one

__all__ = ["ORDINAL_FEATURES", "cross_validate", "fit_ordinal", "fit_thresholds"]

RATIO_ORDER = (
    "black_csf_ratio",
    "intermediate_csf_ratio",
    "hyperintense_csf_ratio",
    "bright_white_csf_ratio",
)
FEATURE_OF = dict.fromkeys(RATIO_ORDER, "nucleus_csf_ratio") | {
    "clear_distinction_contrast": "nucleus_annulus_contrast",
    "band_depth": "band_depth",
    "collapsed_height_index": "disc_height_index",
}
ORDINAL_FEATURES = ("log_nucleus_csf_ratio", "nucleus_annulus_contrast", "band_depth",
                    "disc_height_index")  # fmt: skip


def predict_thresholds(features: pd.DataFrame, t: Thresholds) -> np.ndarray:
    """Grades (float, NaN where not graded) of the walk with thresholds ``t``: the same
    decisions as :func:`~t2quant.pfirrmann.suggest.grade_disc`, on whole columns at once."""

    def col(name: str) -> np.ndarray:
        return pd.to_numeric(features[name], errors="coerce").to_numpy(dtype=float)

    r, c = col("nucleus_csf_ratio"), col("nucleus_annulus_contrast")
    band, dhi = col("band_depth"), col("disc_height_index")
    ok = features["qc_status"].eq("ok").to_numpy() & np.isfinite(r) & np.isfinite(c)
    with np.errstate(invalid="ignore"):
        bright = np.where(
            (r >= t.bright_white_csf_ratio.value) & ~(band >= t.band_depth.value), 1, 2
        )
        dark = np.where(
            (r < t.black_csf_ratio.value) | (dhi < t.collapsed_height_index.value), 5, 4
        )
        unclear = np.where(r >= t.intermediate_csf_ratio.value, 3, dark)
        grade = np.where(c >= t.clear_distinction_contrast.value, bright, unclear)
    return np.where(ok, grade, np.nan).astype(float)


def _score(pred: np.ndarray, truth: np.ndarray) -> float:
    ok = np.isfinite(pred)
    if ok.sum() < 2:
        return -np.inf
    k = weighted_kappa(truth[ok].astype(int), pred[ok].astype(int), weights="quadratic")
    return (k if np.isfinite(k) else -1.0) - (~ok).mean()  # ungraded discs count against


def _ordered(t: Thresholds, name: str, value: float) -> bool:
    if name not in RATIO_ORDER:
        return True
    values = [value if n == name else getattr(t, n).value for n in RATIO_ORDER]
    return all(a < b for a, b in pairwise(values))


def fit_thresholds(
    features: pd.DataFrame, grades: np.ndarray, *, start: Thresholds | None = None,
    sweeps: int = 3, n_candidates: int = 40,
) -> Thresholds:  # fmt: skip
    """Threshold values maximising quadratic kappa with ``grades`` (coordinate search)."""
    t = start or default_thresholds()
    truth = np.asarray(grades, dtype=float)
    best = _score(predict_thresholds(features, t), truth)
    for _ in range(sweeps):
        changed = False
        for name, column in FEATURE_OF.items():
            values = pd.to_numeric(features[column], errors="coerce").dropna().to_numpy()
            if values.size == 0:
                continue
            for v in np.unique(np.quantile(values, np.linspace(0.01, 0.99, n_candidates))):
                if not _ordered(t, name, v):
                    continue
                trial = t.replace(**{name: float(v)})
                score = _score(predict_thresholds(features, trial), truth)
                if score > best + 1e-12:
                    t, best, changed = trial, score, True
        if not changed:
            break
    return t


def _design(features: pd.DataFrame, fill: pd.Series | None = None) -> pd.DataFrame:
    x = pd.DataFrame(
        {
            "log_nucleus_csf_ratio": np.log(
                pd.to_numeric(features["nucleus_csf_ratio"], errors="coerce").clip(lower=1e-3)
            ),
            "nucleus_annulus_contrast": features["nucleus_annulus_contrast"],
            "band_depth": features["band_depth"],
            "disc_height_index": features["disc_height_index"],
        }
    ).astype(float)
    return x.fillna(fill if fill is not None else x.median())


def fit_ordinal(features: pd.DataFrame, grades: np.ndarray):
    """A proportional-odds (logit) model of the grade; returns ``(result, column medians)``
    (the medians fill missing features at prediction)."""
    from statsmodels.miscmodels.ordinal_model import OrderedModel

    x = _design(features)
    y = pd.Series(pd.Categorical(np.asarray(grades, dtype=int), categories=[1, 2, 3, 4, 5],
                                 ordered=True))  # fmt: skip
    y = y.cat.remove_unused_categories()
    model = OrderedModel(y, x.reset_index(drop=True), distr="logit")
    result = model.fit(method="bfgs", disp=False, maxiter=2000)
    return result, x.median()


def predict_ordinal(fitted, features: pd.DataFrame) -> np.ndarray:
    result, medians = fitted
    probs = np.asarray(result.predict(_design(features, medians).reset_index(drop=True)))
    levels = np.asarray(result.model.labels)
    return levels[np.argmax(probs, axis=1)].astype(float)


def cross_validate(
    features: pd.DataFrame, grades: np.ndarray, *, model: str, folds: int = 5, seed: int = 0
) -> tuple[dict, np.ndarray]:
    """Out-of-fold predictions with participant-grouped folds, and their agreement."""
    truth = np.asarray(grades, dtype=float)
    participants = features["participant_id"].astype(str).to_numpy()
    unique = np.unique(participants)
    order = np.random.default_rng(seed).permutation(unique.size)
    fold_of = dict(zip(unique[order], np.arange(unique.size) % max(2, min(folds, unique.size)),
                       strict=True))  # fmt: skip
    fold = np.array([fold_of[p] for p in participants])
    pred = np.full(truth.size, np.nan)
    for k in np.unique(fold):
        train, test = fold != k, fold == k
        if model == "thresholds":
            t = fit_thresholds(features[train], truth[train])
            pred[test] = predict_thresholds(features[test], t)
        elif model == "ordinal":
            pred[test] = predict_ordinal(fit_ordinal(features[train], truth[train]), features[test])
        else:
            raise InputError(f"model must be 'thresholds' or 'ordinal', got {model!r}")
    return agreement_of(pred, truth), pred


def agreement_of(pred: np.ndarray, truth: np.ndarray) -> dict:
    ok = np.isfinite(pred) & np.isfinite(truth)
    p, t = pred[ok].astype(int), truth[ok].astype(int)
    return {
        "n_discs": int(ok.sum()),
        "n_not_graded": int((~ok).sum()),
        "kappa_quadratic": weighted_kappa(t, p, weights="quadratic"),
        "kappa_linear": weighted_kappa(t, p, weights="linear"),
        "exact_agreement": exact_agreement(t, p),
        "within_one": within_one(t, p),
    }
