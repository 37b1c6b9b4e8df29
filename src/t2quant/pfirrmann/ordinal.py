"""The ordinal grader: a proportional-odds model of the Pfirrmann grade, stated in words.

A disc's *degeneration score* is ``eta = sum_j beta_j * (x_j - centre_j) / scale_j`` over
the criteria of :data:`CRITERIA` (each a Pfirrmann criterion measured on the T2-weighted
image: the nucleus's signal relative to CSF, to the adjacent vertebral bodies and to the
brightest disc of the same spine; the nucleus/annulus distinction; homogeneity; height) and
the disc's overall look read as a grade by the disc-appearance network
(:mod:`t2quant.features.appearance`).
The model (McCullagh's proportional odds, logit link) gives
``P(grade <= k) = 1 / (1 + exp(-(cut_k - eta)))``; the suggested grade is the median of
that distribution, ``1 + #{k : cut_k < eta}``: the score read against four cut-points.
Its confidence is the model's probability of the grade it suggests.

Every suggestion names the criteria that decided it: each criterion's value in a
radiologist's words and how far it pushed the score toward a healthier or a more
degenerated grade. The coefficients come from ``t2quant calibrate`` (the packaged model:
:file:`docs/pfirrmann_calibration.md`). Pure functions: no file I/O.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from importlib import resources
from itertools import pairwise

import numpy as np
import pandas as pd

from t2quant.errors import InputError

__all__ = [
    "CRITERIA",
    "OrdinalModel",
    "against_pfirrmann",
    "criteria_model",
    "default_model",
    "design",
    "grade_ordinal",
    "model_from_dict",
    "predict_grades",
]


@dataclass(frozen=True)
class Criterion:
    """One input of the model: the feature column, whether its log is used, how a
    radiologist would say its value (``{x}`` is the value), and the sign of its coefficient
    that Pfirrmann's definitions imply (+1: a larger value, a more degenerated disc; 0: none)."""

    column: str
    log: bool
    words: str
    pfirrmann_sign: int = 0


CRITERIA: dict[str, Criterion] = {
    "log_nucleus_csf_ratio": Criterion(
        "nucleus_csf_ratio", True, "nucleus signal {x:.2f} x CSF", -1
    ),
    "log_nucleus_vertebra_ratio": Criterion(
        "nucleus_vertebra_ratio",
        True,
        "nucleus signal {x:.2f} x the adjacent vertebral bodies",
        -1,
    ),
    "log_nucleus_brightest_ratio": Criterion(
        "nucleus_brightest_ratio",
        True,
        "nucleus signal {x:.2f} x the brightest disc of the spine",
        -1,
    ),
    "nucleus_annulus_contrast": Criterion(
        "nucleus_annulus_contrast", False, "nucleus/annulus contrast {x:.2f}", -1
    ),
    "nucleus_signal_cv": Criterion(
        "nucleus_signal_cv", False, "nucleus inhomogeneity (CV) {x:.2f}", 1
    ),
    "band_depth": Criterion("band_depth", False, "horizontal band depth {x:.2f}"),
    "disc_height_index": Criterion("disc_height_index", False, "disc height index {x:.2f}", -1),
    "height_ratio": Criterion(
        "height_ratio", False, "height {x:.2f} x the spine's median disc", -1
    ),
    "peak_separation_csf": Criterion(
        "peak_separation_csf", False, "nucleus/annulus peak separation {x:.2f} x CSF", -1
    ),
    "appearance_score": Criterion(
        "appearance_score", False, "the disc's overall look reads as grade {x:.1f}", 1
    ),
}
"""The criteria an ordinal model may use, by the name of its model input."""

REQUIRED = ("nucleus_csf_ratio", "nucleus_annulus_contrast")
"""Without these a disc is not graded (its signal and distinction are unknown)."""

GRADE_WORDS = {
    1: "homogeneous, bright white; distinction clear",
    2: "inhomogeneous, hyperintense; distinction clear",
    3: "gray, intermediate signal; distinction unclear",
    4: "gray to black; distinction lost",
    5: "black; distinction lost; collapsed",
}
FLOOR = 1e-3  # a ratio is floored here before its log


@dataclass(frozen=True)
class OrdinalModel:
    """A fitted proportional-odds grader (see the module docstring)."""

    inputs: tuple[str, ...]
    coef: tuple[float, ...]  # per input, on the standardised scale
    centre: tuple[float, ...]
    scale: tuple[float, ...]
    fill: tuple[float, ...]  # a missing input takes this value (the training median)
    cuts: tuple[float, float, float, float]  # between grades 1|2, 2|3, 3|4, 4|5
    about: str = ""
    fitted_on: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        inputs = {
            name: {"coefficient": b, "centre": c, "scale": s, "fill": f}
            for name, b, c, s, f in zip(
                self.inputs, self.coef, self.centre, self.scale, self.fill, strict=True
            )
        }
        return {
            "about": self.about,
            "fitted_on": self.fitted_on,
            "ordinal": {"inputs": inputs, "cuts": list(self.cuts)},
        }


def model_from_dict(raw: object, name: str) -> OrdinalModel:
    """An :class:`OrdinalModel` from the parsed content of a model file named ``name``.

    Raises
    ------
    InputError
        If the content is not ``{"ordinal": {"inputs": {...}, "cuts": [4 numbers]}}``, names
        an unknown criterion, or holds a value that is not a finite number (or a scale that
        is not positive, or cut-points that decrease).
    """
    body = raw.get("ordinal") if isinstance(raw, dict) else None
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), dict):
        raise InputError(f'{name}: an ordinal model file holds {{"ordinal": {{"inputs": ...}}}}')
    cuts = body.get("cuts")
    if not isinstance(cuts, list) or len(cuts) != 4 or not all(map(_number, cuts)):
        raise InputError(f"{name}: 'cuts' must be four numbers (grades 1|2, 2|3, 3|4, 4|5)")
    if not all(a <= b for a, b in pairwise(cuts)):
        raise InputError(f"{name}: 'cuts' must not decrease")
    columns: dict[str, list[float]] = {"coefficient": [], "centre": [], "scale": [], "fill": []}
    for key, item in body["inputs"].items():
        if key not in CRITERIA:
            raise InputError(f"{name}: unknown criterion {key!r}; known: {', '.join(CRITERIA)}")
        for what, values in columns.items():
            value = item.get(what) if isinstance(item, dict) else None
            if not _number(value):
                raise InputError(f"{name}: criterion {key!r} needs a finite numeric {what!r}")
            values.append(float(value))
        if not columns["scale"][-1] > 0:
            raise InputError(f"{name}: criterion {key!r} needs a positive 'scale'")
    if not columns["coefficient"]:
        raise InputError(f"{name}: the model has no inputs")
    return OrdinalModel(
        tuple(body["inputs"]), tuple(columns["coefficient"]), tuple(columns["centre"]),
        tuple(columns["scale"]), tuple(columns["fill"]), tuple(float(c) for c in cuts),  # type: ignore[arg-type]
        str(raw.get("about", "")), dict(raw.get("fitted_on", {}) or {}),
    )  # fmt: skip


def against_pfirrmann(model: OrdinalModel) -> list[str]:
    """The inputs whose fitted coefficient has the sign opposite to the one Pfirrmann's
    definitions imply (e.g. a brighter nucleus pushing toward degeneration): a fit to check
    before trusting its words."""
    return [
        name
        for name, b in zip(model.inputs, model.coef, strict=True)
        if CRITERIA[name].pfirrmann_sign * b < 0
    ]


def _number(x) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def default_model() -> OrdinalModel:
    """The packaged model (``t2quant/data/pfirrmann_ordinal.json``), fitted on SPIDER."""
    return _packaged("pfirrmann_ordinal.json")


def criteria_model() -> OrdinalModel:
    """The packaged fallback for a disc without ``appearance_score``: the measured criteria
    only (``t2quant/data/pfirrmann_ordinal_criteria.json``), fitted on SPIDER."""
    return _packaged("pfirrmann_ordinal_criteria.json")


def _packaged(name: str) -> OrdinalModel:
    text = resources.files("t2quant.data").joinpath(name).read_text()
    return model_from_dict(json.loads(text), f"{name} (packaged)")


def design(features: pd.DataFrame, inputs) -> pd.DataFrame:
    """The model inputs of every row (NaN where a feature is missing): the columns of
    :data:`CRITERIA`, logs of ratios floored at ``FLOOR``."""
    out = {}
    for name in inputs:
        crit = CRITERIA[name]
        if crit.column in features:
            x = pd.to_numeric(features[crit.column], errors="coerce").astype(float)
        else:
            x = pd.Series(np.nan, index=features.index)
        out[name] = np.log(x.clip(lower=FLOOR)) if crit.log else x
    return pd.DataFrame(out, index=features.index)


def _gradable(features: pd.DataFrame) -> np.ndarray:
    ok = features["qc_status"].eq("ok") if "qc_status" in features else True
    for column in REQUIRED:
        value = pd.to_numeric(features.get(column, np.nan), errors="coerce")
        ok = ok & np.isfinite(np.asarray(value, dtype=float))
    return np.asarray(ok, dtype=bool) & np.ones(len(features), bool)


def _terms(features: pd.DataFrame, model: OrdinalModel) -> tuple[np.ndarray, np.ndarray]:
    """Each input's contribution to the score ``(n, inputs)`` and which were filled."""
    x = design(features, model.inputs).to_numpy(dtype=float)
    missing = ~np.isfinite(x)
    x = np.where(missing, np.asarray(model.fill), x)
    z = (x - np.asarray(model.centre)) / np.asarray(model.scale)
    return z * np.asarray(model.coef), missing


def _probabilities(eta: np.ndarray, cuts) -> np.ndarray:
    cdf = 1.0 / (1.0 + np.exp(-(np.asarray(cuts)[None, :] - eta[:, None])))
    cdf = np.hstack([np.zeros((eta.size, 1)), cdf, np.ones((eta.size, 1))])
    return np.diff(cdf, axis=1)


def predict_grades(features: pd.DataFrame, model: OrdinalModel) -> np.ndarray:
    """Suggested grades (float, NaN where a disc cannot be graded), vectorised."""
    terms, _ = _terms(features, model)
    eta = terms.sum(axis=1)
    grade = 1.0 + (eta[:, None] > np.asarray(model.cuts)[None, :]).sum(axis=1)
    return np.where(_gradable(features), grade, np.nan)


def grade_ordinal(features: pd.DataFrame, model: OrdinalModel, *, top: int = 3) -> list[tuple]:
    """``(grade or NaN, confidence, criteria in words)`` for every row of ``features``.

    The words give the score against the cut-points that bound the grade, then the ``top``
    criteria that pushed the score most, each with its value, its direction (toward
    degeneration or toward a healthy disc) and its share of the score; a criterion that was
    not measured says it took a typical value."""
    terms, missing = _terms(features, model)
    eta = terms.sum(axis=1)
    probs = _probabilities(eta, model.cuts)
    grades = predict_grades(features, model)
    raw = design(features, model.inputs).to_numpy(dtype=float)
    out = []
    for i, (_, row) in enumerate(features.iterrows()):
        if not np.isfinite(grades[i]):
            why = row.get("qc_reason") or "no nucleus-to-CSF signal ratio or contrast"
            out.append((float("nan"), 0.0, f"not graded: {why}"))
            continue
        g = int(grades[i])
        low = f"{model.cuts[g - 2]:+.2f} < " if g > 1 else ""
        high = f" <= {model.cuts[g - 1]:+.2f}" if g < 5 else ""
        words = [f"degeneration score {low}{eta[i]:+.2f}{high}: grade {g} ({GRADE_WORDS[g]})"]
        order = np.argsort(-np.abs(terms[i]))[:top]
        total = float(np.abs(terms[i]).sum()) or 1.0
        for j in order:
            crit = CRITERIA[model.inputs[j]]
            value = math.exp(raw[i, j]) if crit.log and np.isfinite(raw[i, j]) else raw[i, j]
            said = crit.words.format(x=value) if np.isfinite(value) else crit.words.split(" {")[0]
            if missing[i, j]:
                said += " not measured (typical value assumed)"
            way = "toward degeneration" if terms[i, j] > 0 else "toward a healthy disc"
            way = way if abs(terms[i, j]) >= 0.005 else "neutral"
            words.append(f"{said}: {way} ({abs(terms[i, j]) / total:.0%})")
        out.append((float(g), float(probs[i, g - 1]), "; ".join(words)))
    return out
