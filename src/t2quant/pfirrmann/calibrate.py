"""Fit the assistant to a lab's own manual grades, with honest (cross-validated) agreement.

Two models:

- ``thresholds``: the Pfirrmann walk of :mod:`t2quant.pfirrmann.suggest` with its threshold
  values fitted by coordinate search (each threshold in turn over the quantiles of its
  feature, keeping the order black < intermediate < hyperintense < bright white) to
  maximise quadratic-weighted kappa;
- ``ordinal``: a proportional-odds logistic model (statsmodels ``OrderedModel``) of the grade
  on the criteria of :data:`ORDINAL_INPUTS` (the disc-appearance network's score, nucleus
  signal relative to CSF and to the vertebral bodies, nucleus/annulus contrast, homogeneity,
  height), graded by :mod:`t2quant.pfirrmann.ordinal`.

Agreement is cross-validated with folds that keep each participant's discs together, so a
participant's discs are never graded by a model that saw them.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pandas as pd

from t2quant.errors import InputError
from t2quant.pfirrmann.ordinal import OrdinalModel, design, predict_grades
from t2quant.pfirrmann.suggest import Thresholds, default_thresholds
from t2quant.validation.agreement import exact_agreement, weighted_kappa, within_one

__all__ = [
    "ORDINAL_INPUTS",
    "agreement_of",
    "cross_validate",
    "fit_ordinal",
    "fit_thresholds",
    "participant_folds",
    "predict_thresholds",
]

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


ORDINAL_INPUTS = (
    "appearance_score",
    "log_nucleus_csf_ratio",
    "log_nucleus_vertebra_ratio",
    "nucleus_annulus_contrast",
    "nucleus_signal_cv",
    "disc_height_index",
)
"""The criteria of the ordinal model ``t2quant calibrate`` fits (see
:data:`t2quant.pfirrmann.ordinal.CRITERIA`): the disc's overall look read as a grade by the
disc-appearance network, the nucleus's signal relative to CSF and to the vertebral bodies,
the nucleus/annulus distinction, homogeneity and height. Left out on the SPIDER slices
(docs/pfirrmann_calibration.md): the signal relative to the brightest disc (its coefficient
was 0.03 of a standard deviation) and the height relative to the spine's median disc (it
entered with the sign opposite to Pfirrmann's, a taller disc looking more degenerated, as a
stand-in for the level: the lower discs are taller and more degenerated). Feature tables
without ``appearance_score`` (older ones) are fitted on the other criteria."""


def fit_ordinal(
    features: pd.DataFrame, grades: np.ndarray, *, inputs=ORDINAL_INPUTS
) -> OrdinalModel:
    """A proportional-odds (logit) model of the grade on standardised ``inputs`` (missing
    values take the training median; an input never measured or constant in ``features``
    is left out), fitted by maximum likelihood (statsmodels ``OrderedModel``), as an
    :class:`OrdinalModel`."""
    from statsmodels.miscmodels.ordinal_model import OrderedModel

    x = design(features, inputs)
    x = x.loc[:, x.notna().any() & x.std(ddof=0).gt(0)]  # a feature never measured, or
    inputs = tuple(x.columns)  # constant, cannot be fitted: it is left out of the model
    fill = x.median()
    x = x.fillna(fill)
    centre, scale = x.mean(), x.std(ddof=0)
    z = ((x - centre) / scale).reset_index(drop=True)
    y = pd.Series(pd.Categorical(np.asarray(grades, dtype=int), categories=[1, 2, 3, 4, 5],
                                 ordered=True)).cat.remove_unused_categories()  # fmt: skip
    seen = [int(g) for g in y.cat.categories]
    if len(seen) < 2:
        raise InputError(f"an ordinal model needs at least two grades; the manual ones are {seen}")
    model = OrderedModel(y, z, distr="logit")
    result = model.fit(method="bfgs", disp=False, maxiter=5000)
    params = np.asarray(result.params, dtype=float)
    k = len(inputs)
    cuts = _five_grade_cuts(seen, model.transform_threshold_params(params)[1:-1])
    return OrdinalModel(
        inputs, tuple(float(b) for b in params[:k]), tuple(map(float, centre)),
        tuple(map(float, scale)), tuple(map(float, fill)), tuple(float(c) for c in cuts),  # type: ignore[arg-type]
    )  # fmt: skip


UNSEEN_CUT = 50.0  # a grade no manual grade used is never suggested: its cut lies out here


def _five_grade_cuts(seen: list[int], cuts) -> tuple[float, ...]:
    """The four cuts between grades 1..5 from the cuts between the ``seen`` grades: a cut
    between grades k and k+1 is the fitted cut between the highest seen grade <= k and the
    lowest above it; ``+-UNSEEN_CUT`` beyond the seen range."""
    out = []
    for k in range(1, 5):
        below = [i for i, g in enumerate(seen) if g <= k]
        if not below:
            out.append(-UNSEEN_CUT)
        elif len(below) == len(seen):
            out.append(UNSEEN_CUT)
        else:
            out.append(float(cuts[below[-1]]))
    return tuple(out)


def participant_folds(participants, folds: int, seed: int) -> np.ndarray:
    """Fold number of each row: participants shuffled (``seed``) and dealt into ``folds``
    folds, so that all of a participant's discs share one fold."""
    ids = np.asarray(participants, dtype=str)
    unique = np.unique(ids)
    order = np.random.default_rng(seed).permutation(unique.size)
    n = max(2, min(folds, unique.size))
    fold_of = dict(zip(unique[order], np.arange(unique.size) % n, strict=True))
    return np.array([fold_of[p] for p in ids], dtype=int)


def _fit(model: str, train: pd.DataFrame, truth: np.ndarray):
    """The grading function of ``model`` fitted on ``train``: features -> grades."""
    if model == "thresholds":
        t = fit_thresholds(train, truth)
        return lambda rows: predict_thresholds(rows, t)
    if model == "ordinal":
        fitted = fit_ordinal(train, truth)
        return lambda rows: predict_grades(rows, fitted)
    raise InputError(f"model must be 'thresholds' or 'ordinal', got {model!r}")


def cross_validate(
    features: pd.DataFrame, grades: np.ndarray, *, model: str, folds: int = 5, seed: int = 0,
    predict_on: pd.DataFrame | None = None,
) -> tuple[dict, np.ndarray] | tuple[dict, np.ndarray, np.ndarray]:  # fmt: skip
    """Out-of-fold predictions with participant-grouped folds, and their agreement: each
    participant's discs are graded by a model fitted on the other folds' participants only.

    With ``predict_on`` (any feature rows, e.g. every disc of the graded participants, also
    those without a manual grade or not measured), its rows are also graded out of fold
    (rows of participants not in ``features`` get NaN) and returned third."""
    truth = np.asarray(grades, dtype=float)
    fold = participant_folds(features["participant_id"], folds, seed)
    pred = np.full(truth.size, np.nan)
    fold_of = dict(zip(features["participant_id"].astype(str), fold, strict=False))
    other = None
    if predict_on is not None:
        other = np.full(len(predict_on), np.nan)
        other_fold = predict_on["participant_id"].astype(str).map(fold_of).to_numpy()
    for k in np.unique(fold):
        train, test = fold != k, fold == k
        grade = _fit(model, features[train], truth[train])  # fitted once per fold
        pred[test] = grade(features[test])
        if other is not None:
            rows = other_fold == k
            if rows.any():
                other[rows] = grade(predict_on[rows])
    if other is not None:
        return agreement_of(pred, truth), pred, other
    return agreement_of(pred, truth), pred


def agreement_of(pred: np.ndarray, truth: np.ndarray) -> dict:
    ok = np.isfinite(pred) & np.isfinite(truth)
    p, t = pred[ok].astype(int), truth[ok].astype(int)
    return {
        "n_discs": int(ok.sum()),
        "n_not_graded": int((~ok).sum()),
        "kappa_quadratic": weighted_kappa(t, p, weights="quadratic"),
        "kappa_linear": weighted_kappa(t, p, weights="linear"),
        "kappa_unweighted": weighted_kappa(t, p, weights=None),
        "exact_agreement": exact_agreement(t, p),
        "within_one": within_one(t, p),
    }
