"""Load what ``t2quant features`` is given, measure and grade the discs, write the table."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nibabel as nib
import nibabel.orientations as nio
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from t2quant import __version__
from t2quant.features.core import FEATURE_COLUMNS, disc_features
from t2quant.io import read_tsv, write_json, write_tsv
from t2quant.pfirrmann.suggest import Thresholds, load_thresholds, suggest_pfirrmann
from t2quant.segmentation.files import load_t2w_image
from t2quant.segmentation.frame import to_canonical

__all__ = [
    "GRADE_COLUMNS",
    "SEGMENTATION_COLUMNS",
    "add_segmentation_qc",
    "entities",
    "features_to_files",
    "load_t2_ms",
    "read_feature_tables",
    "t2_in_ms",
]

GRADE_COLUMNS = {
    "pfirrmann_suggested": "suggested Pfirrmann grade 1..5 (t2quant.pfirrmann)",
    "pfirrmann_confidence": "confidence of the suggestion, 0..1",
    "pfirrmann_criteria": "the comparisons that decided the suggestion",
}
SEGMENTATION_COLUMNS = {
    "segmentation_confidence": "the segmentation's confidence in this disc and its level, 0..1 "
    "(from <stem>_discs.tsv; NaN when the labels came without one)",
    "level_uncertain": "the segmentation flagged the session's level naming as uncertain "
    "(level_uncertain in <stem>_discs.json); check the levels before trusting the grades",
    "segmentation_flags": "the session's segmentation flags, ';'-separated",
}
T2_PLAUSIBLE_MS = (5.0, 3000.0)


def entities(stem: str) -> tuple[str, str]:
    """``participant_id`` and ``session`` (without ``ses-``) from a BIDS file stem."""
    sub = re.search(r"(?:^|_)(sub-[A-Za-z0-9]+)", stem)
    ses = re.search(r"(?:^|_)ses-([A-Za-z0-9]+)", stem)
    return (sub.group(1) if sub else stem), (ses.group(1) if ses else "")


def _same_grid(path: Path, img, shape: tuple, affine: NDArray, what: str) -> None:
    if tuple(img.shape[:3]) != tuple(shape[:3]) or not np.allclose(img.affine, affine, atol=1e-3):
        raise ValueError(
            f"{path}: the {what} is on another grid (shape {img.shape[:3]}, not {shape[:3]}, "
            "or a different affine) than the T2-weighted image; resample it first"
        )


def t2_in_ms(t2: NDArray, path: Path) -> NDArray:
    """A BIDS ``_T2map`` (seconds) in ms; a ``_T2ms`` map as it is."""
    return t2 * 1000.0 if "_T2map" in path.name and "T2ms" not in path.name else t2


def load_t2_ms(path: Path, shape: tuple, affine: NDArray) -> NDArray[np.float32]:
    """A T2 map in ms. A BIDS ``_T2map`` (seconds) is converted; a map whose median is
    outside 5-3000 ms after that is refused as the wrong unit."""
    img = nib.load(str(path))
    _same_grid(path, img, shape, affine, "T2 map")
    t2 = t2_in_ms(np.asarray(img.get_fdata(dtype=np.float32)), path)
    finite = t2[np.isfinite(t2) & (t2 > 0)]
    median = float(np.median(finite)) if finite.size else float("nan")
    if not T2_PLAUSIBLE_MS[0] <= median <= T2_PLAUSIBLE_MS[1]:
        raise ValueError(
            f"{path}: median T2 {median:.4g} does not look like milliseconds; pass the _T2ms "
            "map, or a BIDS _T2map in seconds"
        )
    return t2


def features_to_files(
    inputs: list[Path],
    labels: Path,
    outdir: Path,
    *,
    t2map: Path | None = None,
    orientation: str | None = None,
    te_ms=None,
    thresholds: Thresholds | Path | None = None,
) -> tuple[pd.DataFrame, dict[str, Path]]:
    """Measure and grade every disc of one session; write ``<stem>_discfeatures.tsv``
    and a JSON data dictionary next to it."""
    image, _, affine, stem, source = load_t2w_image([Path(p) for p in inputs], te_ms)
    lab_img = nib.load(str(labels))
    _same_grid(Path(labels), lab_img, image.shape, affine, "disc label volume")
    frame = to_canonical(image, affine, orientation=orientation, name=source)
    lab = nio.apply_orientation(np.asanyarray(lab_img.dataobj).astype(np.int16), frame.transform)
    t2 = None
    if t2map is not None:
        t2 = nio.apply_orientation(load_t2_ms(Path(t2map), image.shape, affine), frame.transform)
    table = disc_features(lab, frame.data, frame.voxel_mm, t2_ms=t2)
    if not isinstance(thresholds, Thresholds):
        thresholds = load_thresholds(thresholds)
    table = suggest_pfirrmann(table, thresholds)
    table = add_segmentation_qc(table, Path(labels))
    participant, session = entities(stem)
    table.insert(0, "session", session)
    table.insert(0, "participant_id", participant)
    outdir = Path(outdir)
    paths = {
        "features": write_tsv(table, outdir / f"{stem}_discfeatures.tsv"),
        "dictionary": write_json(
            _dictionary(source, labels, t2map, thresholds), outdir / f"{stem}_discfeatures.json"
        ),
    }
    return table, paths


def read_feature_tables(files: list[Path]) -> pd.DataFrame:
    """Feature tables (``*_discfeatures.tsv``) concatenated, ``session`` as text."""
    table = pd.concat([read_tsv(f) for f in files], ignore_index=True)
    table["session"] = table["session"].fillna("").astype(str)
    return table


def add_segmentation_qc(table: pd.DataFrame, labels: Path) -> pd.DataFrame:
    """Carry the segmentation's per-level confidence and session flags (the
    ``<stem>_discs.tsv`` / ``_discs.json`` written beside ``<stem>_dseg``) into the table.
    Labels without them (manual or imported masks) get NaN confidence and no flags."""
    base = str(labels).split("_dseg")[0] if "_dseg" in labels.name else None
    confidence = pd.Series(np.nan, index=table.index)
    flags: list[str] = []
    if base and Path(base + "_discs.tsv").exists():
        records = read_tsv(Path(base + "_discs.tsv")).set_index("level")["confidence"]
        confidence = table["level"].map(records).astype(float)
    if base and Path(base + "_discs.json").exists():
        flags = list(json.loads(Path(base + "_discs.json").read_text()).get("Flags", []))
    out = table.copy()
    out["segmentation_confidence"] = confidence.to_numpy()
    out["level_uncertain"] = "level_uncertain" in flags
    out["segmentation_flags"] = ";".join(flags)
    return out


def _dictionary(source: str, labels: Path, t2map: Path | None, thresholds: Thresholds) -> dict:
    columns = {"participant_id": "BIDS participant", "session": "BIDS session (no ses- prefix)"}
    return {
        "GeneratedBy": {"Name": "t2quant", "Version": __version__},
        "Sources": {"t2w": source, "labels": str(labels), "t2map_ms": str(t2map or "")},
        "Columns": columns | FEATURE_COLUMNS | GRADE_COLUMNS | SEGMENTATION_COLUMNS,
        "PfirrmannThresholds": thresholds.as_dict(),
    }
