"""Agreement statistics between two readers, or between t2quant and a reader (pure functions).

Grades are integers 1..5 (Pfirrmann). Continuous measures (mean T2, aggregated scores) are
compared with Lin's concordance, the two-way random-effects ICC(2,1) of Shrout and Fleiss
(1979), and Bland-Altman limits of agreement.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "GRADES",
    "bland_altman",
    "cluster_bootstrap",
    "confusion",
    "dice",
    "exact_agreement",
    "icc_2_1",
    "lin_ccc",
    "weighted_kappa",
    "within_one",
]

GRADES = (1, 2, 3, 4, 5)


def _pair(a: ArrayLike, b: ArrayLike) -> tuple[NDArray, NDArray]:
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"the two raters' arrays differ in shape: {x.shape} and {y.shape}")
    return x, y


def confusion(a: ArrayLike, b: ArrayLike, categories=GRADES) -> NDArray[np.int64]:
    """Counts ``C[i, j]`` of items rated ``categories[i]`` by ``a`` and ``categories[j]`` by
    ``b``. Values outside ``categories`` raise."""
    x, y = _pair(a, b)
    cats = np.asarray(categories, dtype=np.float64)
    ix, iy = np.searchsorted(cats, x), np.searchsorted(cats, y)
    ok = (ix < cats.size) & (iy < cats.size)
    if not ok.all() or not (np.all(cats[ix] == x) and np.all(cats[iy] == y)):
        raise ValueError(f"ratings must be among {tuple(categories)}")
    out = np.zeros((cats.size, cats.size), np.int64)
    np.add.at(out, (ix, iy), 1)
    return out


def weighted_kappa(
    a: ArrayLike, b: ArrayLike, *, weights: str | None = "quadratic", categories=GRADES
) -> float:
    """Cohen's kappa, unweighted (``weights=None``) or with ``"linear"`` or ``"quadratic"``
    disagreement weights ``|i - j|`` or ``(i - j)**2`` over the category positions.

    ``kappa = 1 - sum(w * observed) / sum(w * expected)``, expected from the two raters'
    marginals. NaN when the expected disagreement is zero (both raters use one category).
    """
    c = confusion(a, b, categories).astype(np.float64)
    n = c.sum()
    if n == 0:
        return float("nan")
    k = c.shape[0]
    i, j = np.indices((k, k))
    w = {None: (i != j).astype(float), "linear": np.abs(i - j), "quadratic": (i - j) ** 2}
    if weights not in w:
        raise ValueError(f"weights must be None, 'linear' or 'quadratic', got {weights!r}")
    expected = np.outer(c.sum(axis=1), c.sum(axis=0)) / n
    denominator = float((w[weights] * expected).sum())
    if denominator == 0:
        return float("nan")
    return float(1.0 - (w[weights] * c).sum() / denominator)


def exact_agreement(a: ArrayLike, b: ArrayLike) -> float:
    """Share of items rated the same."""
    x, y = _pair(a, b)
    return float(np.mean(x == y)) if x.size else float("nan")


def within_one(a: ArrayLike, b: ArrayLike) -> float:
    """Share of items whose ratings differ by at most one grade."""
    x, y = _pair(a, b)
    return float(np.mean(np.abs(x - y) <= 1)) if x.size else float("nan")


def lin_ccc(a: ArrayLike, b: ArrayLike) -> float:
    """Lin's concordance correlation coefficient,
    ``2 cov(x, y) / (var x + var y + (mean x - mean y)**2)`` with population moments."""
    x, y = _pair(a, b)
    if x.size < 2:
        return float("nan")
    sxy = float(np.mean((x - x.mean()) * (y - y.mean())))
    denominator = float(x.var() + y.var() + (x.mean() - y.mean()) ** 2)
    return 2.0 * sxy / denominator if denominator > 0 else float("nan")


def icc_2_1(ratings: ArrayLike) -> float:
    """ICC(2,1): two-way random effects, absolute agreement, single rater (Shrout & Fleiss).

    ``ratings`` is ``(n_targets, k_raters)``; from the two-way ANOVA mean squares,
    ``(BMS - EMS) / (BMS + (k - 1) EMS + k (JMS - EMS) / n)``.
    """
    y = np.asarray(ratings, dtype=np.float64)
    if y.ndim != 2 or y.shape[0] < 2 or y.shape[1] < 2:
        raise ValueError(f"ratings must be (targets >= 2, raters >= 2), got shape {y.shape}")
    n, k = y.shape
    grand = y.mean()
    bms = k * ((y.mean(axis=1) - grand) ** 2).sum() / (n - 1)
    jms = n * ((y.mean(axis=0) - grand) ** 2).sum() / (k - 1)
    resid = y - y.mean(axis=1, keepdims=True) - y.mean(axis=0, keepdims=True) + grand
    ems = (resid**2).sum() / ((n - 1) * (k - 1))
    denominator = bms + (k - 1) * ems + k * (jms - ems) / n
    return float((bms - ems) / denominator) if denominator != 0 else float("nan")


def bland_altman(a: ArrayLike, b: ArrayLike) -> dict[str, float]:
    """Mean difference ``a - b`` (bias), its SD (ddof=1) and the 95% limits of agreement
    ``bias +/- 1.96 SD``."""
    x, y = _pair(a, b)
    d = x - y
    if d.size < 2:
        return {"bias": float("nan"), "sd": float("nan"), "loa_low": np.nan, "loa_high": np.nan}
    bias, sd = float(d.mean()), float(d.std(ddof=1))
    return {"bias": bias, "sd": sd, "loa_low": bias - 1.96 * sd, "loa_high": bias + 1.96 * sd}


def dice(a: ArrayLike, b: ArrayLike) -> float:
    """Dice overlap of two boolean masks (NaN when both are empty)."""
    x, y = np.asarray(a, bool), np.asarray(b, bool)
    total = int(x.sum()) + int(y.sum())
    return 2.0 * float((x & y).sum()) / total if total else float("nan")


def cluster_bootstrap(
    clusters: ArrayLike,
    statistic,
    *,
    n_resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(indices)`` resampling whole clusters.

    ``clusters`` (n,) labels the items (e.g. the patient of each disc); each resample draws
    as many clusters as there are, with replacement, and passes the indices of their items
    (a cluster drawn twice contributes twice) to ``statistic``, which returns a float (NaN
    allowed: such resamples are left out). Discs of one patient are not independent, so the
    patient, not the disc, is the unit resampled.
    """
    labels = np.asarray(clusters)
    names, inverse = np.unique(labels, return_inverse=True)
    members = [np.flatnonzero(inverse == k) for k in range(names.size)]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_resamples):
        drawn = rng.integers(0, names.size, names.size)
        value = statistic(np.concatenate([members[k] for k in drawn]))
        if np.isfinite(value):
            values.append(value)
    if not values:
        return float("nan"), float("nan")
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)
