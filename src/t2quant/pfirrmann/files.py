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
    ORDINAL_FEATURES,
    agreement_of,
    cross_validate,
    fit_ordinal,
    fit_thresholds,
    predict_thresholds,
)
from t2quant.pfirrmann.manual import read_manual_grades
from t2quant.pfirrmann.suggest import (
    Thresholds,
    default_thresholds,
    suggest_pfirrmann,
    thresholds_from_dict,
)

__all__ = [
    "GRADE_COLUMNS",
    "calibrate_to_files",
    "grade_to_files",
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


GRADE_COLUMNS = {
    "pfirrmann_suggested": "suggested Pfirrmann grade 1..5 (t2quant.pfirrmann)",
    "pfirrmann_confidence": "confidence of the suggestion, 0..1",
    "pfirrmann_criteria": "the comparisons that decided the suggestion",
}


def grade_to_files(
    inputs: list[Path],
    labels: Path,
    outdir: Path,
    *,
    thresholds: Thresholds | Path | None = None,
    **measure_options,
) -> tuple[pd.DataFrame, dict[str, Path]]:
    """Measure (:func:`t2quant.features.files.measure_session`, which takes
    ``measure_options``) and grade every disc of one session; write ``<stem>_discfeatures.tsv``
    and its JSON data dictionary into ``outdir``."""
    measured = measure_session(inputs, labels, **measure_options)
    if not isinstance(thresholds, Thresholds):
        thresholds = load_thresholds(thresholds)
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
    dictionary["PfirrmannThresholds"] = thresholds.as_dict()
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


def calibrate_to_files(
    manual: Path, features: list[Path], outdir: Path, *, folds: int = 5, seed: int = 0
) -> dict:
    """Fit thresholds and an ordinal model to ``manual`` grades, report cross-validated
    agreement of both next to the defaults, and write ``calibration.json``,
    ``pfirrmann_thresholds.json`` (usable with ``--thresholds``) and ``cv_predictions.tsv``."""
    grades, notes = read_manual_grades(manual)
    feats = read_features(features)
    data = feats.merge(grades, on=KEYS, how="inner")
    data = data[data["qc_status"].eq("ok")].reset_index(drop=True)
    if data["participant_id"].nunique() < 2:
        raise InputError(
            f"{manual}: fewer than two participants have both manual grades and measured "
            "features; check that participant_id, session and level match"
        )
    truth = data["pfirrmann"].to_numpy(dtype=float)
    defaults = agreement_of(predict_thresholds(data, load_thresholds()), truth)
    cv_t, pred_t = cross_validate(data, truth, model="thresholds", folds=folds, seed=seed)
    cv_o, pred_o = cross_validate(data, truth, model="ordinal", folds=folds, seed=seed)
    fitted = fit_thresholds(data, truth)
    ordinal, _ = fit_ordinal(data, truth)
    outdir = Path(outdir)
    write_json({"about": "thresholds fitted by t2quant calibrate", "thresholds": fitted.as_dict()},
               outdir / "pfirrmann_thresholds.json")  # fmt: skip
    predictions = data[KEYS].assign(
        pfirrmann_manual=truth, default=predict_thresholds(data, load_thresholds()),
        thresholds_cv=pred_t, ordinal_cv=pred_o,
    )  # fmt: skip
    write_tsv(predictions, outdir / "cv_predictions.tsv")
    result = {
        "manual": str(manual),
        "n_discs": len(data),
        "n_participants": int(data["participant_id"].nunique()),
        "folds": folds,
        "notes": notes,
        "default_thresholds": defaults,
        "thresholds_cross_validated": cv_t,
        "ordinal_cross_validated": cv_o,
        "thresholds_fitted": {k: v["value"] for k, v in fitted.as_dict().items()},
        "ordinal_coefficients": {k: float(v) for k, v in ordinal.params.items()},
        "ordinal_features": list(ORDINAL_FEATURES),
        "grades_seen": sorted(np.unique(truth).astype(int).tolist()),
    }
    write_json(result, outdir / "calibration.json")
    return result
