"""Self-contained HTML reports: one per participant, one for the group.

A participant report has a section per session: the sagittal T2 map with the discs coloured
and named, every disc's measured echo decay with the fitted curve, the B1 and R² maps, the
feature table with the suggested grades and their criteria, and every warning. Images are
embedded (base64 PNG), so the file can be mailed or opened offline.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from t2quant.io import atomic_path, read_tsv
from t2quant.levels import INDEX_LEVEL, LEVEL_COLORS
from t2quant.plotting import pyplot

__all__ = ["write_group_report", "write_participant_reports"]

FEATURE_VIEW = [
    "level", "qc_status", "t2_mean_ms", "t2_sd_ms", "n_voxels", "volume_mm3",
    "nucleus_csf_ratio", "nucleus_annulus_contrast", "disc_height_index", "pfirrmann_suggested",
    "pfirrmann_confidence", "pfirrmann_criteria", "segmentation_confidence", "qc_reason",
]  # fmt: skip
STYLE = """body{font-family:sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;font-size:12px;margin:0.5em 0}td,th{border:1px solid #bbb;
padding:3px 6px;text-align:left}th{background:#eee}img{max-width:100%}.warn{color:#a00}
h2{border-bottom:2px solid #ccc;margin-top:2em}"""


def _png(fig, *, tight: bool = True) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight" if tight else None)
    pyplot().close(fig)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="figure" src="data:image/png;base64,{data}">'


def _find(anat: Path, pattern: str) -> Path | None:
    hits = sorted(anat.glob(pattern))
    return hits[0] if hits else None


def _canonical(path: Path):
    from t2quant.segmentation.frame import to_canonical

    img = nib.load(str(path))
    data = np.asanyarray(img.dataobj)
    frame = to_canonical(data.astype(np.float32), img.affine, name=str(path))
    return frame


def _same_frame(path: Path, frame) -> np.ndarray:
    """A map on the same grid as ``frame`` (e.g. labels, which may be all zero) in its frame."""
    import nibabel.orientations as nio

    data = np.asarray(nib.load(str(path)).dataobj, dtype=np.float32)
    return np.ascontiguousarray(nio.apply_orientation(data, frame.transform))


def _sagittal(data: np.ndarray, z: int) -> np.ndarray:
    """A PIR volume's sagittal slice as rows superior->inferior, columns anterior->posterior."""
    return data[:, :, z].T


def t2_figure(t2: np.ndarray, labels: np.ndarray, z: int) -> str:
    plt = pyplot()
    from matplotlib.colors import to_rgba

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.imshow(np.clip(_sagittal(t2, z), 0, 200), cmap="gray", vmin=0, vmax=200)
    lab = _sagittal(labels, z)
    overlay = np.zeros((*lab.shape, 4))
    for index in np.unique(lab[lab > 0]):
        level = INDEX_LEVEL.get(int(index), str(index))
        overlay[lab == index] = to_rgba(LEVEL_COLORS.get(level, "#ffffff"), 0.55)
        rows, cols = np.nonzero(lab == index)
        ax.text(cols.max() + 3, rows.mean(), level, color=LEVEL_COLORS.get(level, "w"),
                fontsize=8, va="center")  # fmt: skip
    ax.imshow(overlay)
    ax.set_title(f"T2 (ms, 0-200), sagittal slice {z}", fontsize=9)
    ax.axis("off")
    return _png(fig)


def maps_figure(b1: np.ndarray | None, r2: np.ndarray | None, z: int) -> str:
    plt = pyplot()
    panels = [(m, t, lim) for m, t, lim in ((b1, "B1 (fraction of nominal)", (0.5, 1.2)),
              (r2, "R² of the fit", (0.8, 1.0))) if m is not None]  # fmt: skip
    if not panels:
        return "<p>No B1 or R² map.</p>"
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 4.5), squeeze=False)
    for ax, (data, title, (lo, hi)) in zip(axes[0], panels, strict=True):
        shown = ax.imshow(_sagittal(data, z), cmap="viridis", vmin=lo, vmax=hi)
        fig.colorbar(shown, ax=ax, fraction=0.04)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    return _png(fig)


def decay_figure(echoes: np.ndarray, te_ms: np.ndarray, maps: dict, labels: np.ndarray) -> str:
    """Mean measured signal of each disc by echo, and the mean of the fitted voxel models.

    A disc mixes nucleus and annulus, so the mean of its voxels' decays is not one exponential
    at the median T2; averaging each voxel's fitted curve compares like with like.
    """
    plt = pyplot()
    indices = [int(i) for i in np.unique(labels[labels > 0])]
    if not indices:
        return "<p>No disc to show.</p>"
    fig, axes = plt.subplots(1, len(indices), figsize=(2.2 * len(indices), 2.3), squeeze=False)
    for ax, index in zip(axes[0], indices, strict=True):
        inside = labels == index
        ax.plot(te_ms, echoes[inside].mean(axis=0), "o", ms=3, color="k", label="measured")
        fitted = inside & np.isfinite(maps["t2"]) & np.isfinite(maps["s0"])
        if maps.get("b1") is not None:
            fitted &= np.isfinite(maps["b1"])
        if fitted.any():
            curve, label = _model_curve(maps, fitted, te_ms)
            ax.plot(te_ms, curve, "-", color="C3", label=label)
        ax.set_title(INDEX_LEVEL.get(index, str(index)), fontsize=8)
        ax.tick_params(labelsize=6)
        ax.legend(fontsize=5, loc="upper right")  # "best" costs a search per panel
        ax.set_xlabel("TE (ms)", fontsize=6)
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.2, top=0.88, wspace=0.3)
    return _png(fig, tight=False)


def _model_curve(maps: dict, where: np.ndarray, te_ms: np.ndarray) -> tuple[np.ndarray, str]:
    """Mean over ``where`` of each voxel's fitted signal at ``te_ms``, and a legend label."""
    t2, s0 = maps["t2"][where], maps["s0"][where]
    if maps.get("b1") is None:
        curve = (s0[:, None] * np.exp(-te_ms[None, :] / t2[:, None])).mean(axis=0)
        return curve, f"fit, median T2 {np.median(t2):.0f} ms"
    from t2quant.relaxometry.epgfit import epg_echoes
    from t2quant.relaxometry.fit import DEFAULT_T1_MS

    b1 = maps["b1"][where]
    esp = float(te_ms[1] - te_ms[0]) if len(te_ms) > 1 else float(te_ms[0])
    signal = epg_echoes(t2, b1, DEFAULT_T1_MS, esp, len(te_ms))
    curve = (s0[:, None] * signal).mean(axis=0)
    return curve, f"EPG fit, median T2 {np.median(t2):.0f} ms, B1 {np.median(b1):.2f}"


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.3g}", border=0)


def _warnings(anat: Path, features: pd.DataFrame | None, t2_sidecar: Path | None) -> list[str]:
    out = []
    discs_json = _find(anat, "*_discs.json")
    if discs_json:
        record = json.loads(discs_json.read_text())
        out += [f"segmentation flag: {f}" for f in record.get("Flags", [])]
        out += [f"segmentation: {w}" for w in record.get("Warnings", [])]
    if features is not None:
        for row in features[features["qc_status"] != "ok"].itertuples():
            out.append(f"{row.level}: not measured: {row.qc_reason}")
    if t2_sidecar and t2_sidecar.exists():
        counts = json.loads(t2_sidecar.read_text()).get("FailureCounts", {})
        fitted = sum(v for k, v in counts.items() if k != "not_fitted")
        failed = sum(v for k, v in counts.items() if k not in ("ok", "not_fitted"))
        if fitted and failed / fitted > 0.05:
            out.append(f"T2 fit: {failed / fitted:.1%} of fitted voxels failed ({counts})")
    return out


def session_section(anat: Path) -> str:
    """The HTML section of one session's derivatives folder."""
    name = f"{anat.parent.parent.name} / {anat.parent.name}"
    t2_path, dseg_path = _find(anat, "*_T2ms.nii*"), _find(anat, "*_dseg.nii*")
    feat_path = _find(anat, "*_discfeatures.tsv")
    features = read_tsv(feat_path) if feat_path else None
    parts = [f"<h2>{html.escape(name)}</h2>"]
    if t2_path is None or dseg_path is None:
        return parts[0] + '<p class="warn">No T2 map or disc labels: session not processed.</p>'
    t2 = _canonical(t2_path)
    lab = np.rint(_same_frame(dseg_path, t2)).astype(int)
    if not lab.any():
        parts.append('<p class="warn">No disc was labelled in this session (see Warnings).</p>')
    z = int(np.argmax((lab > 0).sum(axis=(0, 1)))) if lab.any() else lab.shape[2] // 2
    parts.append(t2_figure(t2.data, lab, z))
    maps = {"t2": t2.data, "s0": _same_frame(_find(anat, "*_S0map.nii*"), t2), "b1": None}
    b1_path, r2_path = _find(anat, "*_TB1map.nii*"), _find(anat, "*_rsquared.nii*")
    if b1_path:
        maps["b1"] = _same_frame(b1_path, t2)
    sidecar = t2_path.with_name(t2_path.name.split(".")[0] + ".json")
    echoes, te_ms = _echoes(sidecar)
    parts.append("<h3>Echo decay in each disc</h3>")
    parts.append(decay_figure(echoes, te_ms, maps, lab) if echoes is not None
                 else "<p>Echo images not found.</p>")  # fmt: skip
    parts.append("<h3>B1 and R² maps</h3>")
    parts.append(maps_figure(maps["b1"], _same_frame(r2_path, t2) if r2_path else None, z))
    if features is not None:
        parts.append("<h3>Disc features and suggested Pfirrmann grades</h3>")
        parts.append(_table(features[[c for c in FEATURE_VIEW if c in features]]))
    warnings = _warnings(anat, features, sidecar)
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


def _page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
            f"{body}</body></html>")  # fmt: skip


def write_participant_reports(output_dir: Path, labels: list[str]) -> list[Path]:
    """``OUT/sub-X.html`` for every participant label given."""
    written = []
    for label in labels:
        sub = f"sub-{label.removeprefix('sub-')}"
        anats = sorted(Path(output_dir).glob(f"{sub}/ses-*/anat"))
        body = "\n".join(session_section(a) for a in anats) or "<p>No sessions processed.</p>"
        path = Path(output_dir) / f"{sub}.html"
        with atomic_path(path) as tmp:
            tmp.write_text(_page(f"t2quant report: {sub}", body))
        written.append(path)
    return written


def _embed(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{data}">'


def _groundtruth_section(check: dict) -> list[str]:
    """The synthetic study's ground-truth check (``group/groundtruth_check.json``)."""
    t2 = check["disc_t2"]
    rows = [{"check": "median |disc T2 error| (ms), automatic masks",
             "value": t2["median_abs_error_ms"], "target": f"<= {t2['target_ms']}",
             "met": t2["met"]},
            {"check": "median |disc T2 error| (ms), true masks",
             "value": t2["true_masks_median_abs_error_ms"], "target": "", "met": ""}]  # fmt: skip
    if "grades" in check:
        g = check["grades"]
        rows.append({"check": "kappa_quadratic vs true grades", "value": g["kappa_quadratic"],
                     "target": f">= {g['target_kappa']}", "met": g["met"]})  # fmt: skip
    misses = []
    for key, m in check.get("moderators", {}).items():
        rows.append({"check": f"true moderator effects inside the 95% CI, {key}",
                     "value": f"{m['n_covered']}/{m['n_estimates']}",
                     "target": f"misses <= {m['misses_expected_by_chance_up_to']} (chance)",
                     "met": m["all_covered_or_explained_by_chance"]})  # fmt: skip
        misses += m["misses"]
    parts = ["<h2>Ground-truth check (synthetic study)</h2>", _table(pd.DataFrame(rows))]
    if misses:
        parts += ["<h3>Moderator estimates that missed the true effect</h3>",
                  _table(pd.DataFrame(misses))]  # fmt: skip
    return parts


def write_group_report(output_dir: Path) -> Path:
    """``OUT/group.html``: the disc table summary, forest plots and agreement."""
    group = Path(output_dir) / "group"
    table = read_tsv(group / "discs.tsv")
    summary = (
        table.groupby(["timepoint_weeks", "group"])
        .agg(
            discs=("level", "size"),
            failed=("qc_status", lambda s: int((s == "failed").sum())),
            t2_mean_ms=("t2_mean_ms", "mean"),
            t2_sd_ms=("t2_mean_ms", "std"),
        )
        .reset_index()
    )
    parts = ["<h2>Disc table</h2>", f"<p>{len(table)} rows, "
             f"{table['participant_id'].nunique()} participants.</p>", _table(summary)]  # fmt: skip
    moderators = group / "moderators.tsv"
    if moderators.exists():
        parts += ["<h2>Moderators</h2>"]
        parts += [_embed(p) for p in sorted(group.glob("forest_week*.png"))]
        parts.append(_table(read_tsv(moderators)))
    agreement = group / "agreement.json"
    if agreement.exists():
        record = json.loads(agreement.read_text())
        keys = ["n_discs", "kappa_quadratic", "kappa_linear", "exact_agreement", "within_one",
                "ccc_aggregated", "grade_1_5_swaps"]  # fmt: skip
        frame = pd.DataFrame([{k: record.get(k) for k in keys}])
        parts += ["<h2>Agreement of the suggested grades with the reference grades</h2>",
                  "<p>Manual grades (--manual-grades) or a synthetic study's true grades.</p>",
                  _table(frame)]  # fmt: skip
    check = group / "groundtruth_check.json"
    if check.exists():
        parts += _groundtruth_section(json.loads(check.read_text()))
    path = Path(output_dir) / "group.html"
    with atomic_path(path) as tmp:
        tmp.write_text(_page("t2quant group report", "\n".join(parts)))
    return path
