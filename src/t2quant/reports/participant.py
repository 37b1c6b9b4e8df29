"""The participant report ``OUT/sub-X.html``: a section per session, built from the
derivative files it is given (never from a folder search).

Each session shows the sagittal T2 map with the discs coloured and named, every disc's
measured echo decay with the fitted curve, the B1 and R² maps, the feature table with the
suggested grades and their criteria, and every warning. A session whose processing failed is
listed at the top with its error. Images are embedded, so the file can be mailed or opened
offline.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from t2quant.io import atomic_path, bids, read_tsv
from t2quant.reports.figures import decay_figure, maps_figure, t2_figure
from t2quant.reports.layout import html_table, page

__all__ = ["participant_report_html", "session_section", "write_participant_report"]

FEATURE_VIEW = [
    "level", "qc_status", "t2_mean_ms", "t2_sd_ms", "n_voxels", "volume_mm3",
    "nucleus_csf_ratio", "nucleus_annulus_contrast", "disc_height_index", "pfirrmann_suggested",
    "pfirrmann_confidence", "pfirrmann_criteria", "segmentation_confidence", "qc_reason",
]  # fmt: skip


def _canonical(path: Path):
    from t2quant.segmentation.frame import to_canonical

    img = nib.load(str(path))
    data = np.asanyarray(img.dataobj)
    return to_canonical(data.astype(np.float32), img.affine, name=str(path))


def _same_frame(path: Path, frame) -> np.ndarray:
    """A map on the same grid as ``frame`` (e.g. labels, which may be all zero) in its frame."""
    import nibabel.orientations as nio

    data = np.asarray(nib.load(str(path)).dataobj, dtype=np.float32)
    return np.ascontiguousarray(nio.apply_orientation(data, frame.transform))


def _warnings(files: dict[str, Path], features: pd.DataFrame | None) -> list[str]:
    out = []
    if "discs_json" in files:
        record = json.loads(files["discs_json"].read_text())
        out += [f"segmentation flag: {f}" for f in record.get("Flags", [])]
        out += [f"segmentation: {w}" for w in record.get("Warnings", [])]
    if features is not None:
        for row in features[features["qc_status"] != "ok"].itertuples():
            out.append(f"{row.level}: not measured: {row.qc_reason}")
    t2_sidecar = bids.sidecar(files["t2_ms"]) if "t2_ms" in files else None
    if t2_sidecar and t2_sidecar.exists():
        counts = json.loads(t2_sidecar.read_text()).get("FailureCounts", {})
        fitted = sum(v for k, v in counts.items() if k != "not_fitted")
        failed = sum(v for k, v in counts.items() if k not in ("ok", "not_fitted"))
        if fitted and failed / fitted > 0.05:
            out.append(f"T2 fit: {failed / fitted:.1%} of fitted voxels failed ({counts})")
    return out


def session_section(name: str, files: dict[str, Path]) -> str:
    """The HTML section of one session, from its derivatives by :func:`bids.classify` key."""
    features = read_tsv(files["features"]) if "features" in files else None
    parts = [f"<h2>{html.escape(name)}</h2>"]
    if "t2_ms" not in files or "dseg" not in files:
        return parts[0] + '<p class="warn">No T2 map or disc labels: session not processed.</p>'
    t2 = _canonical(files["t2_ms"])
    lab = np.rint(_same_frame(files["dseg"], t2)).astype(int)
    if not lab.any():
        parts.append('<p class="warn">No disc was labelled in this session (see Warnings).</p>')
    z = int(np.argmax((lab > 0).sum(axis=(0, 1)))) if lab.any() else lab.shape[2] // 2
    parts.append(t2_figure(t2.data, lab, z))
    maps = {"t2": t2.data, "s0": _same_frame(files["s0"], t2), "b1": None}
    if "b1" in files:
        maps["b1"] = _same_frame(files["b1"], t2)
    echoes, te_ms = _echoes(bids.sidecar(files["t2_ms"]))
    parts.append("<h3>Echo decay in each disc</h3>")
    parts.append(decay_figure(echoes, te_ms, maps, lab) if echoes is not None
                 else "<p>Echo images not found.</p>")  # fmt: skip
    parts.append("<h3>B1 and R² maps</h3>")
    r2 = _same_frame(files["r2"], t2) if "r2" in files else None
    parts.append(maps_figure(maps["b1"], r2, z))
    if features is not None:
        parts.append("<h3>Disc features and suggested Pfirrmann grades</h3>")
        parts.append(html_table(features[[c for c in FEATURE_VIEW if c in features]]))
    warnings = _warnings(files, features)
    parts.append("<h3>Warnings</h3>")
    parts.append("<ul>" + "".join(f'<li class="warn">{html.escape(w)}</li>' for w in warnings)
                 + "</ul>" if warnings else "<p>None.</p>")  # fmt: skip
    return "\n".join(parts)


def _echoes(sidecar: Path) -> tuple[np.ndarray | None, np.ndarray]:
    """The raw echoes (canonical frame, last axis = echo) named in the T2 map's sidecar."""
    from t2quant.io.provenance import resolve_bids_uri

    record = json.loads(sidecar.read_text()) if sidecar.exists() else {}
    dataset = sidecar.parent.parent.parent.parent
    sources = [resolve_bids_uri(s, dataset) for s in record.get("Sources", [])]
    te_ms = np.asarray(record.get("EchoTime", []), dtype=float) * 1000.0
    if not sources or not all(s and s.is_file() for s in sources) or len(sources) != len(te_ms):
        return None, te_ms
    stack = [_canonical(s).data for s in sources]
    return np.stack(stack, axis=-1), te_ms


def participant_report_html(
    participant: str, files: list[Path], failures: list[str] | tuple[str, ...] = ()
) -> str:
    """The report page of one participant: its failed sessions (``failures``, one line
    each) first, then a section per session of ``files``."""
    sub = f"sub-{participant.removeprefix('sub-')}"
    parts = []
    if failures:
        items = "".join(f'<li class="warn">{html.escape(f)}</li>' for f in failures)
        parts.append(f"<h2>Failed</h2><ul>{items}</ul>")
    sessions = bids.by_session(files)
    for (p, ses), found in sessions.items():
        if p == sub:
            parts.append(session_section(f"{p} / ses-{ses}", found))
    if not sessions:
        parts.append("<p>No sessions processed.</p>")
    return page(f"t2quant report: {sub}", "\n".join(parts))


def write_participant_report(
    path: Path, participant: str, files: list[Path], failures: list[str] | tuple[str, ...] = ()
) -> Path:
    """Write :func:`participant_report_html` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(participant_report_html(participant, files, failures))
    return Path(path)
