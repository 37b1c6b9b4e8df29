"""The grading stage's files: measure and grade a session's discs into its feature table
(``t2quant features``, the ``DiscFeatures`` node), and ``t2quant calibrate``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from t2quant.errors import InputError
from t2quant.features.files import measure_session, measurement_dictionary, read_feature_tables
from t2quant.io import bids, write_json, write_tsv
from t2quant.io.jsonfile import read_json_object
from t2quant.pfirrmann.calibrate import (
    ORDINAL_INPUTS,
    agreement_of,
    cross_validate,
    fit_ordinal,
    fit_thresholds,
    predict_thresholds,
)
from t2quant.pfirrmann.manual import read_manual_grades
from t2quant.pfirrmann.ordinal import (
    OrdinalModel,
    against_pfirrmann,
    criteria_model,
    default_model,
    model_from_dict,
    predict_grades,
)
from t2quant.pfirrmann.suggest import (
    Thresholds,
    default_thresholds,
    suggest_pfirrmann,
    thresholds_from_dict,
)

__all__ = [
    "GRADE_COLUMNS",
    "calibrate_to_files",
    "cv_grades_table",
    "grade_to_files",
    "graded_rows",
    "load_grader",
    "load_thresholds",
    "read_features",
]

KEYS = ["participant_id", "session", "level"]


def load_thresholds(path: str | Path | None = None) -> Thresholds:
    """Thresholds from a JSON file (``t2quant calibrate`` writes one), or the packaged
    defaults when ``path`` is ``None``; every problem names the file."""
    if path is None:
        return default_thresholds()
    return thresholds_from_dict(read_json_object(path, what="thresholds file"), str(path))


def load_grader(path: str | Path | None = None) -> Thresholds | OrdinalModel:
    """The grader of a JSON file ``t2quant calibrate`` wrote: an ordinal model
    (``pfirrmann_ordinal.json``, ``{"ordinal": ...}``) or the decision walk's thresholds
    (``pfirrmann_thresholds.json``); the packaged ordinal model when ``path`` is ``None``."""
    if path is None:
        return default_model()
    raw = read_json_object(path, what="Pfirrmann grader file")
    if "ordinal" in raw:
        return model_from_dict(raw, str(path))
    return thresholds_from_dict(raw, str(path))


GRADE_COLUMNS = {
    "pfirrmann_suggested": "suggested Pfirrmann grade 1..5 (t2quant.pfirrmann)",
    "pfirrmann_confidence": "confidence of the suggestion, 0..1 (ordinal model: its "
    "probability of the suggested grade)",
    "pfirrmann_criteria": "the comparisons that decided the suggestion",
}


def grade_to_files(
    inputs: list[Path],
    labels: Path,
    outdir: Path,
    *,
    thresholds: Thresholds | OrdinalModel | Path | None = None,
    **measure_options,
) -> tuple[pd.DataFrame, dict[str, Path]]:
    """Measure (:func:`t2quant.features.files.measure_session`, which takes
    ``measure_options``) and grade every disc of one session; write ``<stem>_discfeatures.tsv``
    and its JSON data dictionary into ``outdir``. ``thresholds`` is the grader (or the file
    of one, :func:`load_grader`); by default the packaged ordinal model (with its
    criteria-only fallback for a disc without ``appearance_score``)."""
    measured = measure_session(inputs, labels, **measure_options)
    if thresholds is not None and not isinstance(thresholds, Thresholds | OrdinalModel):
        thresholds = load_grader(thresholds)
    graded = suggest_pfirrmann(measured.table, thresholds)
    order = [c for c in measured.table.columns if c not in _SEGMENTATION_LAST]
    table = graded[[*order, *GRADE_COLUMNS, *[c for c in _SEGMENTATION_LAST if c in graded]]]
    dictionary = measurement_dictionary(measured.source, labels, measure_options.get("t2map"))
    columns = dictionary["Columns"]
    dictionary["Columns"] = (
        {c: d for c, d in columns.items() if c not in _SEGMENTATION_LAST}
        | GRADE_COLUMNS
        | {c: d for c, d in columns.items() if c in _SEGMENTATION_LAST}
    )
    if isinstance(thresholds, Thresholds):
        dictionary["PfirrmannThresholds"] = thresholds.as_dict()
    elif thresholds is not None:
        dictionary["PfirrmannOrdinalModel"] = thresholds.as_dict()
    else:  # the packaged model, and its fallback for discs without an appearance score
        dictionary["PfirrmannOrdinalModel"] = default_model().as_dict()
        dictionary["PfirrmannOrdinalFallback"] = criteria_model().as_dict()
    names = bids.feature_names(measured.stem)
    outdir = Path(outdir)
    paths = {
        "features": write_tsv(table, outdir / names["features"]),
        "dictionary": write_json(dictionary, outdir / names["dictionary"]),
    }
    return table, paths


_SEGMENTATION_LAST = ("segmentation_confidence", "level_uncertain", "segmentation_flags")


def read_features(paths: list[Path]) -> pd.DataFrame:
    """One or more feature tables (``*_discfeatures.tsv``; a folder is searched for them)."""
    files: list[Path] = []
    for p in map(Path, paths):
        files += bids.find_feature_tables(p)
    if not files:
        raise InputError(f"no {bids.FEATURES_PATTERN} found in {', '.join(map(str, paths))}")
    return read_feature_tables(files)


def graded_rows(manual: Path, features: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Every disc row of the manually graded participants (also discs not measured); the
    measured discs with their manual grade in ``pfirrmann`` (the rows a grader is fitted
    on); and the notes of reading the manual grades."""
    grades, notes = read_manual_grades(manual)
    feats = read_features(features)
    rows = feats[feats["participant_id"].isin(set(grades["participant_id"]))]
    data = feats.merge(grades, on=KEYS, how="inner")
    data = data[data["qc_status"].eq("ok")].reset_index(drop=True)
    return rows.reset_index(drop=True), data, notes


def cv_grades_table(rows: pd.DataFrame, suggested, model: str) -> pd.DataFrame:
    """``cv_grades.tsv``: the keys and QC of ``rows`` with the out-of-fold grades
    ``suggested`` (one per row, NaN where not graded) and what made them (``model``)."""
    keep = [c for c in (*KEYS, "qc_status", "qc_reason", "level_uncertain") if c in rows]
    return rows[keep].assign(
        pfirrmann_suggested=pd.array(np.asarray(suggested, dtype=float),
                                     dtype="Float64").astype("Int64"),
        pfirrmann_model=model,
    )  # fmt: skip


def calibrate_to_files(
    manual: Path, features: list[Path], outdir: Path, *, folds: int = 5, seed: int = 0
) -> dict:
    """Fit thresholds and an ordinal model to ``manual`` grades, report cross-validated
    agreement of both next to the packaged defaults, and write ``calibration.json``,
    ``pfirrmann_thresholds.json`` and ``pfirrmann_ordinal.json`` (each usable with
    ``--thresholds``), ``cv_predictions.tsv`` and ``cv_grades.tsv``.

    Folds keep each participant's discs together. ``cv_grades.tsv`` holds every disc row of
    the manually graded participants (also discs not measured, with their ``qc_reason``, and
    participants without one measured disc) with the
    out-of-fold grade of the better model (higher cross-validated quadratic kappa) in
    ``pfirrmann_suggested``: the input of ``t2quant validate --auto`` for a held-out report.
    """
    rows, data, notes = graded_rows(manual, features)
    if data["participant_id"].nunique() < 2:
        raise InputError(
            f"{manual}: fewer than two participants have both manual grades and measured "
            "features; check that participant_id, session and level match"
        )
    truth = data["pfirrmann"].to_numpy(dtype=float)
    by_default_thresholds = predict_thresholds(data, default_thresholds())
    by_default_ordinal = predict_grades(data, default_model())
    defaults = agreement_of(by_default_thresholds, truth)
    default_ordinal = agreement_of(by_default_ordinal, truth)
    cv_t, pred_t, rows_t = cross_validate(data, truth, model="thresholds", folds=folds,
                                          seed=seed, predict_on=rows)  # fmt: skip
    cv_o, pred_o, rows_o = cross_validate(data, truth, model="ordinal", folds=folds,
                                          seed=seed, predict_on=rows)  # fmt: skip
    chosen = "ordinal" if cv_o["kappa_quadratic"] > cv_t["kappa_quadratic"] else "thresholds"
    fitted = fit_thresholds(data, truth)
    ordinal = fit_ordinal(data, truth)
    fitted_on = {
        "manual": Path(manual).name, "n_participants": int(data["participant_id"].nunique()),
        "n_discs": len(data), "grade_counts": _counts(truth),
        "cross_validated": {"folds": folds, "seed": seed, "unit": "participant",
                            "thresholds": cv_t, "ordinal": cv_o},
    }  # fmt: skip
    outdir = Path(outdir)
    write_json({"about": "thresholds fitted by t2quant calibrate", "fitted_on": fitted_on,
                "thresholds": fitted.as_dict()}, outdir / "pfirrmann_thresholds.json")  # fmt: skip
    ordinal = OrdinalModel(**{**ordinal.__dict__, "about": "ordinal model fitted by t2quant "
                              "calibrate", "fitted_on": fitted_on})  # fmt: skip
    write_json(ordinal.as_dict(), outdir / "pfirrmann_ordinal.json")
    predictions = data[KEYS].assign(
        pfirrmann_manual=truth, default_thresholds=by_default_thresholds,
        default_ordinal=by_default_ordinal, thresholds_cv=pred_t, ordinal_cv=pred_o,
    )  # fmt: skip
    write_tsv(predictions, outdir / "cv_predictions.tsv")
    how = f"{chosen}, cross-validated ({folds} folds by participant)"
    cv_grades = cv_grades_table(rows, rows_o if chosen == "ordinal" else rows_t, how)
    write_tsv(cv_grades, outdir / "cv_grades.tsv")
    result = {
        "manual": str(manual),
        "n_discs": len(data),
        "n_participants": int(data["participant_id"].nunique()),
        "folds": folds,
        "seed": seed,
        "notes": notes,
        "default_thresholds": defaults,
        "default_ordinal": default_ordinal,
        "thresholds_cross_validated": cv_t,
        "ordinal_cross_validated": cv_o,
        "chosen": chosen,
        "thresholds_fitted": {k: v["value"] for k, v in fitted.as_dict().items()},
        "ordinal_model": ordinal.as_dict()["ordinal"],
        "ordinal_inputs": list(ORDINAL_INPUTS),
        "ordinal_against_pfirrmann": against_pfirrmann(ordinal),
        "grades_seen": sorted(np.unique(truth).astype(int).tolist()),
    }
    write_json(result, outdir / "calibration.json")
    return result


def _counts(truth: np.ndarray) -> dict[str, int]:
    values, counts = np.unique(truth.astype(int), return_counts=True)
    return {str(v): int(c) for v, c in zip(values, counts, strict=True)}
