"""The participant report ``OUT/sub-X.html``: a page a reviewer works in, built from the
derivative files it is given (never from a folder search).

- At the top, a summary: each session, its discs measured and not measured (and why), its
  segmentation flags (``level_uncertain``, ``invalid_voxels``...) and warnings, and the
  sessions whose processing failed.
- A sticky navigation bar: the summary, each session, and the rater's name, count and export
  (:mod:`t2quant.reports.review`).
- Per session: large sagittal views of the T2 map (the mid-sagittal slice and its neighbours,
  every other slice holding a disc behind a toggle) with the discs outlined and named; the
  disc table (units in the headers, suggested grades, the review controls, the Pfirrmann
  criteria on demand); every disc's echo decay with the fitted curve; the B1 and R² maps;
  every warning. A click enlarges any figure.

Images, style and script are embedded, so the file can be mailed and opened offline.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from t2quant.io import atomic_path, bids, read_tsv
from t2quant.reports.figures import decay_figure, maps_figure, sagittal_view, view_slices
from t2quant.reports.layout import page
from t2quant.reports.review import disc_table, nav_bar, review_script, section_id

__all__ = [
    "SessionSummary",
    "participant_report_html",
    "session_section",
    "summarise_session",
    "summary_rows",
    "summary_section",
    "write_participant_report",
]

FIT_FAILURE_WARNING = 0.05  # warn when more than this share of the fitted voxels failed


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


@dataclass(frozen=True)
class SessionSummary:
    """What the summary and a session's warnings say about one session."""

    session: str  # label without ses-
    processed: bool  # a T2 map and disc labels reached the derivatives
    levels: tuple[str, ...] = ()  # the levels of the feature table
    not_measured: tuple[tuple[str, str], ...] = ()  # (level, why)
    flags: tuple[str, ...] = ()  # the segmentation's flags
    warnings: tuple[str, ...] = ()  # the segmentation's warnings, the T2 fit's failures

    def lines(self) -> list[str]:
        """The session's warnings, one line each."""
        return ([f"segmentation flag: {f}" for f in self.flags]
                + [f"{level}: not measured: {why}" for level, why in self.not_measured]
                + list(self.warnings))  # fmt: skip


def _text(value) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def _fit_warning(files: dict[str, Path]) -> list[str]:
    """A line when more than :data:`FIT_FAILURE_WARNING` of the fitted voxels failed."""
    sidecar = bids.sidecar(files["t2_ms"]) if "t2_ms" in files else None
    if not (sidecar and sidecar.exists()):
        return []
    counts = json.loads(sidecar.read_text()).get("FailureCounts", {})
    fitted = sum(v for k, v in counts.items() if k != "not_fitted")
    failed = sum(v for k, v in counts.items() if k not in ("ok", "not_fitted"))
    if fitted and failed / fitted > FIT_FAILURE_WARNING:
        return [f"T2 fit: {failed / fitted:.1%} of fitted voxels failed ({counts})"]
    return []


def summarise_session(
    session: str, files: dict[str, Path], features: pd.DataFrame | None
) -> SessionSummary:
    """A session's summary from its derivatives (by :func:`bids.classify` key) and its
    feature table."""
    record = json.loads(files["discs_json"].read_text()) if "discs_json" in files else {}
    levels, not_measured = (), ()
    if features is not None:
        levels = tuple(features["level"].astype(str))
        bad = features[features["qc_status"] != "ok"]
        not_measured = tuple((str(r.level), _text(r.qc_reason)) for r in bad.itertuples())
    return SessionSummary(
        session=session,
        processed="t2_ms" in files and "dseg" in files,
        levels=levels,
        not_measured=not_measured,
        flags=tuple(record.get("Flags", [])),
        warnings=tuple(
            [f"segmentation: {w}" for w in record.get("Warnings", [])] + _fit_warning(files)
        ),
    )


def summary_rows(summaries: list[SessionSummary]) -> list[dict[str, str]]:
    """The summary table as text: one row per session."""
    rows = []
    for s in summaries:
        measured = len(s.levels) - len(s.not_measured)
        rows.append({
            "session": bids.session_id(s.session),
            "discs measured": f"{measured} of {len(s.levels)}" if s.processed else "not processed",
            "not measured (why)": "; ".join(f"{lvl}: {why}" for lvl, why in s.not_measured),
            "segmentation flags": ", ".join(s.flags),
            "warnings": "; ".join(s.warnings),
        })  # fmt: skip
    return rows


def summary_section(summaries: list[SessionSummary], failures: list[str] | tuple[str, ...]) -> str:
    """The summary at the top of the report: the failed sessions, then a row per session
    (linked to its section)."""
    measured = sum(len(s.levels) - len(s.not_measured) for s in summaries if s.processed)
    total = sum(len(s.levels) for s in summaries)
    parts = ['<section id="summary"><h2>Summary</h2>',
             f"<p>{len(summaries)} session(s) processed, {len(failures)} failed; {measured} of "
             f"{total} discs measured.</p>"]  # fmt: skip
    if failures:
        items = "".join(f'<li class="warn">{html.escape(f)}</li>' for f in failures)
        parts.append(f'<h3 class="warn">Failed sessions</h3><ul>{items}</ul>')
    rows = summary_rows(summaries)
    if rows:
        head = "".join(f"<th>{html.escape(k)}</th>" for k in rows[0])
        body = "".join(_summary_row(s, row) for s, row in zip(summaries, rows, strict=True))
        parts.append(f'<table class="summary"><thead><tr>{head}</tr></thead>'
                     f"<tbody>{body}</tbody></table>")  # fmt: skip
    return "\n".join([*parts, "</section>"])


def _summary_row(summary: SessionSummary, row: dict[str, str]) -> str:
    cells = [f'<td><a href="#{section_id(summary.session)}">{html.escape(row["session"])}</a></td>']
    for key, text in list(row.items())[1:]:
        warn = key != "discs measured" and text
        cells.append(f"<td{' class=warn' if warn else ''}>{html.escape(text)}</td>")
    return "<tr>" + "".join(cells) + "</tr>"


def _mid_slice(labels: np.ndarray) -> int:
    """The sagittal slice with the most disc voxels (the middle one when none is labelled)."""
    if not labels.any():
        return labels.shape[2] // 2
    return int(np.argmax((labels > 0).sum(axis=(0, 1))))


def _views(t2, labels: np.ndarray) -> str:
    """The mid-sagittal slice (most disc voxels) and its neighbours, large; every other slice
    with a disc behind a toggle."""
    n = labels.shape[2]
    z = _mid_slice(labels)
    main, more = view_slices(labels, z)

    def views(slices: list[int]) -> str:
        return "".join(sagittal_view(t2.data, labels, s, t2.voxel_mm,
                                     f"slice {s + 1} of {n}{' (mid-sagittal)' if s == z else ''}")
                       for s in slices)  # fmt: skip

    out = f'<div class="views">{views(main)}</div>'
    if more:
        out += (f'<details class="more-slices"><summary>{len(more)} more slice(s) with discs'
                f'</summary><div class="views">{views(more)}</div></details>')  # fmt: skip
    return out


def session_section(
    participant: str,
    session: str,
    files: dict[str, Path],
    features: pd.DataFrame | None,
    summary: SessionSummary,
) -> str:
    """The HTML section of one session, from its derivatives by :func:`bids.classify` key."""
    title = f"{participant} / {bids.session_id(session)}"
    parts = [f'<section id="{section_id(session)}"><h2>{html.escape(title)}</h2>']
    if not summary.processed:
        parts.append('<p class="warn">No T2 map or disc labels: session not processed.</p>')
        return "".join([*parts, "</section>"])
    if summary.flags:
        flags = html.escape(", ".join(summary.flags))
        parts.append(f'<p class="warn">Segmentation flags: {flags}; check the levels before '
                     "trusting the grades.</p>")  # fmt: skip
    t2 = _canonical(files["t2_ms"])
    lab = np.rint(_same_frame(files["dseg"], t2)).astype(int)
    if not lab.any():
        parts.append('<p class="warn">No disc was labelled in this session (see Warnings).</p>')
    parts += ["<h3>Sagittal T2 map (ms, 0-200)</h3>", _views(t2, lab)]
    if features is not None:
        parts += ["<h3>Discs: measurements, suggested grades, your review</h3>",
                  disc_table(session, features)]  # fmt: skip
    parts += _decay_and_maps(files, t2, lab)
    lines = summary.lines()
    parts.append("<h3>Warnings</h3>")
    parts.append("<ul>" + "".join(f'<li class="warn">{html.escape(w)}</li>' for w in lines)
                 + "</ul>" if lines else "<p>None.</p>")  # fmt: skip
    return "\n".join([*parts, "</section>"])


def _decay_and_maps(files: dict[str, Path], t2, lab: np.ndarray) -> list[str]:
    """Each disc's echo decay beside its fitted curve, and the B1 and R² maps."""
    z = _mid_slice(lab)
    maps = {"t2": t2.data, "s0": _same_frame(files["s0"], t2), "b1": None}
    if "b1" in files:
        maps["b1"] = _same_frame(files["b1"], t2)
    echoes, te_ms = _echoes(bids.sidecar(files["t2_ms"]))
    r2 = _same_frame(files["r2"], t2) if "r2" in files else None
    return ["<h3>Echo decay in each disc</h3>",
            decay_figure(echoes, te_ms, maps, lab) if echoes is not None
            else "<p>Echo images not found.</p>",
            "<h3>B1 and R² maps</h3>", maps_figure(maps["b1"], r2, z, t2.voxel_mm)]  # fmt: skip


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


def _features(files: dict[str, Path]) -> pd.DataFrame | None:
    return read_tsv(files["features"]) if "features" in files else None


def participant_report_html(
    participant: str, files: list[Path], failures: list[str] | tuple[str, ...] = ()
) -> str:
    """The report page of one participant: the summary (with its failed sessions,
    ``failures``, one line each), then a section per session of ``files``."""
    sub = f"sub-{participant.removeprefix('sub-')}"
    sessions = {ses: found for (p, ses), found in bids.by_session(files).items() if p == sub}
    features = {ses: _features(found) for ses, found in sessions.items()}
    summaries = [summarise_session(ses, found, features[ses]) for ses, found in sessions.items()]
    parts = [summary_section(summaries, failures)]
    for (ses, found), summary in zip(sessions.items(), summaries, strict=True):
        parts.append(session_section(sub, ses, found, features[ses], summary))
    if not sessions:
        parts.append("<p>No sessions processed.</p>")
    return page(f"t2quant report: {sub}", "\n".join(parts), nav=nav_bar(list(sessions)),
                script=review_script(sub))  # fmt: skip


def write_participant_report(
    path: Path, participant: str, files: list[Path], failures: list[str] | tuple[str, ...] = ()
) -> Path:
    """Write :func:`participant_report_html` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(participant_report_html(participant, files, failures))
    return Path(path)
