"""``t2quant calibrate``: read features and manual grades, fit, cross-validate, write."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from t2quant.features.files import read_feature_tables
from t2quant.io import write_json, write_tsv
from t2quant.pfirrmann.calibrate import (
    ORDINAL_FEATURES,
    agreement_of,
    cross_validate,
    fit_ordinal,
    fit_thresholds,
    predict_thresholds,
)
from t2quant.pfirrmann.manual import read_manual_grades
from t2quant.pfirrmann.suggest import load_thresholds

__all__ = ["calibrate_to_files", "read_features"]

KEYS = ["participant_id", "session", "level"]


def read_features(paths: list[Path]) -> pd.DataFrame:
    """One or more feature tables (``*_discfeatures.tsv``; a folder is searched for them)."""
    files: list[Path] = []
    for p in map(Path, paths):
        files += sorted(p.rglob("*_discfeatures.tsv")) if p.is_dir() else [p]
    if not files:
        raise ValueError(f"no *_discfeatures.tsv found in {', '.join(map(str, paths))}")
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
        raise ValueError(
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
