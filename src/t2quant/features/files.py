"""Load a session's image, labels and T2 map and measure its discs (no grading: that is
:mod:`t2quant.pfirrmann.files`); read feature tables back."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import nibabel.orientations as nio
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from t2quant import __version__
from t2quant.errors import InputError
from t2quant.features.core import FEATURE_COLUMNS, disc_features
from t2quant.grids import require_same_grid
from t2quant.io import bids, read_tsv
from t2quant.segmentation.files import load_t2w_image
from t2quant.segmentation.frame import to_canonical

__all__ = [
    "SEGMENTATION_COLUMNS",
    "MeasuredSession",
    "add_segmentation_qc",
    "load_t2_ms",
    "measure_session",
    "measurement_dictionary",
    "read_feature_tables",
    "records_beside",
]

SEGMENTATION_COLUMNS = {
    "segmentation_confidence": "the segmentation's confidence in this disc and its level, 0..1 "
    "(from <stem>_discs.tsv; NaN when the labels came without one)",
    "level_uncertain": "the segmentation flagged the session's level naming as uncertain "
    "(level_uncertain in <stem>_discs.json); check the levels before trusting the grades",
    "segmentation_flags": "the session's segmentation flags, ';'-separated",
}
T2_PLAUSIBLE_MS = (5.0, 3000.0)


def load_t2_ms(path: Path, shape: tuple, affine: NDArray) -> NDArray[np.float32]:
    """A T2 map in ms. A BIDS ``_T2map`` (seconds) is converted; a map whose median is
    outside 5-3000 ms after that is refused as the wrong unit."""
    img = nib.load(str(path))
    require_same_grid(str(path), img.shape, img.affine, shape, affine, "T2 map")
    t2 = np.asarray(img.get_fdata(dtype=np.float32)) * np.float32(bids.t2_seconds_to_ms(path))
    finite = t2[np.isfinite(t2) & (t2 > 0)]
    median = float(np.median(finite)) if finite.size else float("nan")
    if not T2_PLAUSIBLE_MS[0] <= median <= T2_PLAUSIBLE_MS[1]:
        raise InputError(
            f"{path}: median T2 {median:.4g} does not look like milliseconds; pass the _T2ms "
            "map, or a BIDS _T2map in seconds"
        )
    return t2


@dataclass(frozen=True)
class MeasuredSession:
    """The feature table of one session (no grades yet), and where it came from."""

    table: pd.DataFrame
    stem: str
    source: str


def measure_session(
    inputs: list[Path],
    labels: Path,
    *,
    t2map: Path | None = None,
    orientation: str | None = None,
    te_ms=None,
    stem: str | None = None,
    discs: Path | None = None,
    discs_json: Path | None = None,
) -> MeasuredSession:
    """Measure every labelled disc of one session.

    ``inputs`` is the T2-weighted image (or multi-echo data); ``labels`` the disc labels on
    its grid; ``t2map`` a T2 map on the same grid (``_T2ms`` in ms, or a BIDS ``_T2map`` in
    s). The segmentation's per-level record and flags (``discs``, ``discs_json``; by default
    the ``_discs.tsv``/``_discs.json`` beside ``labels``) are carried into the table.
    ``stem`` overrides the stem taken from the input's name.
    """
    image, _, affine, found_stem, source = load_t2w_image([Path(p) for p in inputs], te_ms)
    lab_img = nib.load(str(labels))
    require_same_grid(str(labels), lab_img.shape, lab_img.affine, image.shape, affine,
                      "disc label volume")  # fmt: skip
    frame = to_canonical(image, affine, orientation=orientation, name=source)
    lab = nio.apply_orientation(np.asanyarray(lab_img.dataobj).astype(np.int16), frame.transform)
    t2 = None
    if t2map is not None:
        t2 = nio.apply_orientation(load_t2_ms(Path(t2map), image.shape, affine), frame.transform)
    table = disc_features(lab, frame.data, frame.voxel_mm, t2_ms=t2)
    if discs is None and discs_json is None:
        discs, discs_json = records_beside(Path(labels))
    table = add_segmentation_qc(table, discs, discs_json)
    stem = stem or found_stem
    participant, session = bids.participant_session(stem)
    table.insert(0, "session", session)
    table.insert(0, "participant_id", participant)
    return MeasuredSession(table, stem, source)


def read_feature_tables(files: list[Path]) -> pd.DataFrame:
    """Feature tables (``*_discfeatures.tsv``) concatenated, ``session`` as text."""
    table = pd.concat([read_tsv(f) for f in files], ignore_index=True)
    table["session"] = table["session"].fillna("").astype(str)
    return table


def records_beside(labels: Path) -> tuple[Path | None, Path | None]:
    """The segmentation's ``_discs.tsv`` and ``_discs.json`` written beside ``_dseg`` labels."""
    if "_dseg" not in labels.name:
        return None, None
    names = bids.segmentation_names(bids.stem_of(labels.name))
    found = [labels.with_name(names[k]) for k in ("discs", "discs_json")]
    return tuple(p if p.exists() else None for p in found)  # type: ignore[return-value]


def add_segmentation_qc(
    table: pd.DataFrame, discs: Path | None, discs_json: Path | None
) -> pd.DataFrame:
    """Carry the segmentation's per-level confidence (``discs``, a ``_discs.tsv``) and its
    session flags (``discs_json``) into the table. Labels without them (manual or imported
    masks) get NaN confidence and no flags."""
    confidence = pd.Series(np.nan, index=table.index)
    flags: list[str] = []
    if discs is not None:
        records = read_tsv(discs).set_index("level")["confidence"]
        confidence = table["level"].map(records).astype(float)
    if discs_json is not None:
        flags = list(json.loads(Path(discs_json).read_text()).get("Flags", []))
    out = table.copy()
    out["segmentation_confidence"] = confidence.to_numpy()
    out["level_uncertain"] = "level_uncertain" in flags
    out["segmentation_flags"] = ";".join(flags)
    return out


def measurement_dictionary(source: str, labels: Path, t2map: Path | None) -> dict:
    """The data dictionary of a feature table's measurement columns and sources."""
    columns = {"participant_id": "BIDS participant", "session": "BIDS session (no ses- prefix)"}
    return {
        "GeneratedBy": {"Name": "t2quant", "Version": __version__},
        "Sources": {"t2w": source, "labels": str(labels), "t2map_ms": str(t2map or "")},
        "Columns": columns | FEATURE_COLUMNS | SEGMENTATION_COLUMNS,
    }
