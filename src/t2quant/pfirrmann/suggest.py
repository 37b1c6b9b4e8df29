"""``suggest_pfirrmann``: the Pfirrmann (2001) decision walk on measured disc features.

Pfirrmann et al. (Spine 2001;26:1873) grade a disc on a T2-weighted image by its structure,
the distinction of nucleus and annulus, its signal relative to CSF and its height:

- I: homogeneous, bright white; distinction clear; hyperintense, isointense to CSF; height normal.
- II: inhomogeneous, with or without horizontal bands; clear; hyperintense; normal.
- III: inhomogeneous, gray; unclear; intermediate; normal to slightly decreased.
- IV: inhomogeneous, gray to black; lost; intermediate to hypointense; normal to moderately
  decreased.
- V: inhomogeneous, black; lost; hypointense; collapsed.

The walk reads these criteria off the features of :func:`t2quant.features.disc_features`:
signal is ``nucleus_csf_ratio``, distinction ``nucleus_annulus_contrast``, bands
``band_depth`` and height ``disc_height_index``. Each comparison's confidence is
``1 / (1 + exp(-|x - threshold| / scale))``, 0.5 on the threshold; a grade's confidence is
that of the comparisons that decided it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources

import numpy as np
import pandas as pd

from t2quant.errors import InputError
from t2quant.pfirrmann.ordinal import OrdinalModel, criteria_model, default_model, grade_ordinal

__all__ = [
    "Threshold",
    "Thresholds",
    "default_thresholds",
    "grade_disc",
    "suggest_pfirrmann",
    "thresholds_from_dict",
]


@dataclass(frozen=True)
class Threshold:
    value: float
    scale: float
    description: str = ""

    def confidence(self, x: float) -> float:
        """How sure the comparison of ``x`` with this threshold is (0.5 .. 1)."""
        return 1.0 / (1.0 + math.exp(-abs(x - self.value) / self.scale))


@dataclass(frozen=True)
class Thresholds:
    bright_white_csf_ratio: Threshold
    hyperintense_csf_ratio: Threshold
    intermediate_csf_ratio: Threshold
    black_csf_ratio: Threshold
    clear_distinction_contrast: Threshold
    band_depth: Threshold
    collapsed_height_index: Threshold

    def as_dict(self) -> dict:
        return {
            name: {"value": t.value, "scale": t.scale, "description": t.description}
            for name, t in self.__dict__.items()
        }

    def replace(self, **values: float) -> Thresholds:
        """A copy with some threshold values changed (scales and descriptions kept)."""
        fields = dict(self.__dict__)
        for name, value in values.items():
            old = fields[name]
            fields[name] = Threshold(float(value), old.scale, old.description)
        return Thresholds(**fields)


def default_thresholds() -> Thresholds:
    """The packaged thresholds (``t2quant/data/pfirrmann_thresholds.json``)."""
    text = resources.files("t2quant.data").joinpath("pfirrmann_thresholds.json").read_text()
    return thresholds_from_dict(json.loads(text), "pfirrmann_thresholds.json (packaged)")


def thresholds_from_dict(raw: object, name: str) -> Thresholds:
    """:class:`Thresholds` from the parsed content of a thresholds file named ``name``.

    Raises
    ------
    InputError
        If the content is not ``{"thresholds": {...}}``, lacks a threshold, or gives a value
        or scale that is not a number (the scale must be positive).
    """
    table = raw.get("thresholds") if isinstance(raw, dict) else None
    if not isinstance(table, dict):
        raise InputError(f'{name}: a thresholds file holds {{"thresholds": {{...}}}}')
    fields = {}
    for key in Thresholds.__dataclass_fields__:
        item = table.get(key)
        if not isinstance(item, dict):
            raise InputError(f"{name}: threshold {key!r} is missing (or not an object)")
        value, scale = item.get("value"), item.get("scale", 0)
        for what, number in (("value", value), ("scale", scale)):
            if isinstance(number, bool) or not isinstance(number, int | float):
                raise InputError(f"{name}: threshold {key!r} needs a numeric {what!r}")
            if not math.isfinite(number):
                raise InputError(f"{name}: threshold {key!r} needs a finite {what!r}")
        if not scale > 0:
            raise InputError(f"{name}: threshold {key!r} needs a positive 'scale'")
        description = item.get("description", "")
        fields[key] = Threshold(float(value), float(scale), str(description))
    return Thresholds(**fields)


def _fmt(x: float) -> str:
    return f"{x:.2f}"


def grade_disc(row: pd.Series | dict, t: Thresholds) -> tuple[float, float, str]:
    """Walk the algorithm for one disc: ``(grade or NaN, confidence, criteria in words)``.

    In Pfirrmann's order: a clear nucleus/annulus distinction means grade I (bright white,
    isointense to CSF, no band) or II; an unclear one means III while the signal is at least
    intermediate, and IV or V below that, V when the disc is black or collapsed.
    """
    r = float(row.get("nucleus_csf_ratio", np.nan))
    c = float(row.get("nucleus_annulus_contrast", np.nan))
    band = float(row.get("band_depth", np.nan))
    dhi = float(row.get("disc_height_index", np.nan))
    if row.get("qc_status", "ok") != "ok" or not np.isfinite(r) or not np.isfinite(c):
        why = row.get("qc_reason") or "no nucleus-to-CSF signal ratio or contrast"
        return float("nan"), 0.0, f"not graded: {why}"
    sig = f"nucleus signal {_fmt(r)} x CSF"
    dist = f"nucleus/annulus contrast {_fmt(c)}"
    clear = t.clear_distinction_contrast
    if c >= clear.value:
        grade, conf, words = _clear(r, band, t, sig)
        text = f"{dist} >= {_fmt(clear.value)}: clear distinction; {words}"
        return grade, min(conf, clear.confidence(c)), text
    unclear = f"{dist} < {_fmt(clear.value)}: distinction unclear or lost"
    inter = t.intermediate_csf_ratio
    if r >= inter.value:
        conf = min(clear.confidence(c), inter.confidence(r))
        words = [unclear, f"{sig} >= {_fmt(inter.value)}: intermediate, gray"]
        if r >= t.hyperintense_csf_ratio.value:
            words[1] = f"{sig} >= {_fmt(t.hyperintense_csf_ratio.value)}: still hyperintense"
            conf *= 0.8
        return 3.0, conf, "; ".join(words)
    grade, conf, words = _dark(r, dhi, t, sig)
    return grade, min(conf, clear.confidence(c)), f"{unclear}; {words}"


def _clear(r, band, t: Thresholds, sig: str) -> tuple[float, float, str]:
    """Grade I or II, once the distinction is clear."""
    white, banded, hyper = t.bright_white_csf_ratio, t.band_depth, t.hyperintense_csf_ratio
    has_band = np.isfinite(band) and band >= banded.value
    band_conf = banded.confidence(band) if np.isfinite(band) else 1.0
    if r >= white.value and not has_band:
        words = [
            f"{sig} >= {_fmt(white.value)}: bright white, isointense to CSF",
            f"no horizontal band (dip {_fmt(band)}): homogeneous",
        ]
        return 1.0, min(white.confidence(r), band_conf), "; ".join(words)
    if has_band:
        words = [f"horizontal band (dip {_fmt(band)} >= {_fmt(banded.value)}): inhomogeneous"]
        conf = band_conf
    else:
        words = [f"{sig} < {_fmt(white.value)}: not bright white"]
        conf = white.confidence(r)
    if r < hyper.value:
        words.append(f"{sig} < {_fmt(hyper.value)}: signal intermediate despite the distinction")
        conf *= 0.8
    return 2.0, conf, "; ".join(words)


def _dark(r, dhi, t: Thresholds, sig: str) -> tuple[float, float, str]:
    inter, black, low = t.intermediate_csf_ratio, t.black_csf_ratio, t.collapsed_height_index
    words = [f"{sig} < {_fmt(inter.value)}: hypointense"]
    is_black = r < black.value
    collapsed = np.isfinite(dhi) and dhi < low.value
    height = f"disc height index {_fmt(dhi)}" if np.isfinite(dhi) else "height not measured"
    if is_black or collapsed:
        if is_black:
            words.append(f"{sig} < {_fmt(black.value)}: black")
        words.append(
            f"{height} < {_fmt(low.value)}: collapsed" if collapsed else f"{height}: not collapsed"
        )
        sure = [black.confidence(r)] if is_black else []
        sure += [low.confidence(dhi)] if collapsed else []
        return 5.0, max(sure) * (1.0 if is_black and collapsed else 0.85), "; ".join(words)
    words.append(f"{height} >= {_fmt(low.value)}: height preserved or moderately decreased")
    conf = min(inter.confidence(r), black.confidence(r))
    if np.isfinite(dhi):
        conf = min(conf, low.confidence(dhi))
    return 4.0, conf, "; ".join(words)


def suggest_pfirrmann(
    features: pd.DataFrame, grader: Thresholds | OrdinalModel | None = None
) -> pd.DataFrame:
    """Suggested Pfirrmann grade of every disc row of a feature table.

    ``grader`` is the decision walk with :class:`Thresholds`, or an
    :class:`~t2quant.pfirrmann.ordinal.OrdinalModel`; by default the packaged ordinal model
    (fitted on radiologists' grades, :func:`~t2quant.pfirrmann.ordinal.default_model`); a
    disc without ``appearance_score`` is graded by its criteria-only fallback
    (:func:`~t2quant.pfirrmann.ordinal.criteria_model`), which does not lean on a typical
    value in place of the network's reading.

    Returns a copy of ``features`` with ``pfirrmann_suggested`` (1..5, NaN where the disc
    could not be graded), ``pfirrmann_confidence`` (0..1) and ``pfirrmann_criteria`` (the
    comparisons that decided the grade, in words).
    """
    out = features.copy()
    if grader is None:
        graded = _packaged_grades(features)
    elif isinstance(grader, OrdinalModel):
        graded = grade_ordinal(features, grader)
    else:
        graded = [grade_disc(row, grader) for _, row in features.iterrows()]
    out["pfirrmann_suggested"] = pd.array([g for g, _, _ in graded], dtype="Float64").astype(
        "Int64"
    )
    out["pfirrmann_confidence"] = [round(c, 3) for _, c, _ in graded]
    out["pfirrmann_criteria"] = [w for _, _, w in graded]
    return out


def _packaged_grades(features: pd.DataFrame) -> list[tuple]:
    """Grades of the packaged model, or of its criteria-only fallback where a row has no
    ``appearance_score``."""
    score = pd.to_numeric(features.get("appearance_score", pd.Series(np.nan, features.index)),
                          errors="coerce")  # fmt: skip
    seen = np.isfinite(score.to_numpy(dtype=float))
    out: list[tuple] = [()] * len(features)
    for rows, model in ((seen, default_model()), (~seen, criteria_model())):
        if rows.any():
            for i, graded in zip(np.flatnonzero(rows), grade_ordinal(features[rows], model),
                                 strict=True):  # fmt: skip
                out[i] = graded
    return out
