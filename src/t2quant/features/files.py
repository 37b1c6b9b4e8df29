"""Load a session's image, labels and T2 map and measure its discs (no grading: that is
:mod:`t2quant.pfirrmann.files`); read feature tables back."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import nibabel.orientations as nio
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from t2quant import __version__
from t2quant.errors import InputError
from t2quant.features.core import FEATURE_COLUMNS, disc_features
from t2quant.grids import require_same_grid
from t2quant.io import bids, read_tsv
from t2quant.io.images import read_image, read_label_mask
from t2quant.io.tables import Column, read_table
from t2quant.segmentation.files import load_t2w_image
from t2quant.segmentation.frame import to_canonical

__all__ = [
    "SEGMENTATION_COLUMNS",
    "CanonicalArrays",
    "MeasuredSession",
    "add_segmentation_qc",
    "canonical_arrays",
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
    img = read_image(path, what="T2 map", ndims=(2, 3), magnitude=False)
    data = img.data if img.data.ndim == 3 else img.data[:, :, None]
    require_same_grid(str(path), data.shape, img.affine, shape, affine, "T2 map")
    t2 = data * np.float32(bids.t2_seconds_to_ms(path))
    t2[~(t2 > 0)] = np.nan  # a T2 that is not positive is a failed fit, not a value
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
    arrays = canonical_arrays(inputs, labels, orientation=orientation, te_ms=te_ms)
    src, frame = arrays.source, arrays.frame
    t2 = None
    if t2map is not None:
        t2 = load_t2_ms(Path(t2map), src.image.shape, src.affine)
        t2 = nio.apply_orientation(t2, frame.transform)
    table = disc_features(arrays.labels, frame.data, frame.voxel_mm, t2_ms=t2)
    if discs is None and discs_json is None:
        discs, discs_json = records_beside(Path(labels))
    table = add_segmentation_qc(table, discs, discs_json)
    stem = stem or src.stem
    participant, session = bids.participant_session(stem)
    table.insert(0, "session", session)
    table.insert(0, "participant_id", participant)
    return MeasuredSession(table, stem, src.source)


@dataclass(frozen=True)
class CanonicalArrays:
    """A session's T2-weighted image and disc labels, both in the canonical ``PIR`` frame."""

    source: object  # the loaded image (t2quant.segmentation.files.load_t2w_image)
    frame: object  # its canonical frame: .data, .voxel_mm, .transform
    labels: NDArray[np.int16]


def canonical_arrays(
    inputs: list[Path], labels: Path, *, orientation: str | None = None, te_ms=None
) -> CanonicalArrays:
    """Load the T2-weighted image (or multi-echo data) and its disc labels, check that they
    share one grid, and turn both into the canonical frame (an invalid voxel is in no disc)."""
    src = load_t2w_image([Path(p) for p in inputs], te_ms)
    mask, mask_affine = read_label_mask(labels, what="disc label volume")
    mask = mask if mask.ndim == 3 else mask[:, :, None]
    require_same_grid(str(labels), mask.shape, mask_affine, src.image.shape, src.affine,
                      "disc label volume")  # fmt: skip
    mask = np.where(src.invalid, 0, mask)
    frame = to_canonical(src.image, src.affine, orientation=orientation, name=src.source)
    return CanonicalArrays(
        src, frame, nio.apply_orientation(mask.astype(np.int16), frame.transform)
    )


FEATURE_KEYS = ("participant_id", "session", "level")


def read_feature_tables(files: list[Path]) -> pd.DataFrame:
    """Feature tables (``*_discfeatures.tsv``) concatenated, ``session`` as text.

    Raises
    ------
    InputError
        For a table that is not a feature table (no key columns, ragged rows) and for a disc
        (participant, session, level) that two rows or two files give.
    """
    frames = []
    for f in files:
        read_table(f, [Column(k, missing_ok=k == "session") for k in FEATURE_KEYS],
                   what="feature table")  # fmt: skip
        frame = read_tsv(f)
        frame["session"] = frame["session"].astype(object).fillna("").astype(str)
        frames.append(frame.assign(_file=str(f)))
    table = pd.concat(frames, ignore_index=True)
    doubled = table.duplicated(list(FEATURE_KEYS), keep=False)
    if doubled.any():
        first = table.loc[doubled].iloc[0]
        where = sorted(set(table.loc[doubled & (table["level"] == first["level"]), "_file"]))
        raise InputError(
            f"{', '.join(where)}: {int(table.duplicated(list(FEATURE_KEYS)).sum())} disc(s) "
            f"measured twice, e.g. {first['participant_id']} session {first['session']!r} "
            f"{first['level']}; keep one feature table per session"
        )
    return table.drop(columns="_file")


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
    session flags (``discs_json``) into the table; a disc the segmentation found cut by the
    edge of the field of view says so in ``qc_reason`` (its volume and heights are lower
    bounds). Labels without them (manual or imported masks) get NaN confidence, no flags."""
    confidence = pd.Series(np.nan, index=table.index)
    flags: list[str] = []
    out = table.copy()
    if discs is not None:
        records = read_tsv(discs).set_index("level")
        confidence = table["level"].map(records["confidence"]).astype(float)
        notes = table["level"].map(records.get("note", pd.Series(dtype=str))).fillna("")
        partial = notes.astype(str).str.startswith("partial")
        if partial.any():
            out.loc[partial, "qc_reason"] = [
                _join(r, n)
                for r, n in zip(out.loc[partial, "qc_reason"], notes[partial], strict=True)
            ]
    if discs_json is not None:
        flags = list(json.loads(Path(discs_json).read_text()).get("Flags", []))
    out["segmentation_confidence"] = confidence.to_numpy()
    out["level_uncertain"] = "level_uncertain" in flags
    out["segmentation_flags"] = ";".join(flags)
    return out


def _join(reason, note: str) -> str:
    """A qc_reason with one more note."""
    reason = "" if pd.isna(reason) else str(reason)
    return f"{reason}; {note}" if reason else note


def measurement_dictionary(source: str, labels: Path, t2map: Path | None) -> dict:
    """The data dictionary of a feature table's measurement columns and sources."""
    columns = {"participant_id": "BIDS participant", "session": "BIDS session (no ses- prefix)"}
    return {
        "GeneratedBy": {"Name": "t2quant", "Version": __version__},
        "Sources": {"t2w": source, "labels": str(labels), "t2map_ms": str(t2map or "")},
        "Columns": columns | FEATURE_COLUMNS | SEGMENTATION_COLUMNS,
    }
