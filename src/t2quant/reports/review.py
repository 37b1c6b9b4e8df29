"""The reviewer's side of the participant report: the navigation bar with the rater's tools, the
disc table with the review controls, and the page's script.

Per disc the rater accepts or excludes the segmentation (an exclusion asks for a reason) and
confirms or corrects the suggested Pfirrmann grade by clicking a grade. The script
(``assets/review.js``, plain JavaScript embedded in the page) keeps the ratings in the
browser's ``localStorage`` under the report's own path, asks the rater's name once, and
exports them as ``sub-X_desc-ratings.tsv`` (a download made from a Blob; no server), the file
:mod:`t2quant.group.ratings` reads.
"""

from __future__ import annotations

import html
import json
import math

import pandas as pd

from t2quant.features.core import FEATURE_COLUMNS
from t2quant.features.files import SEGMENTATION_COLUMNS
from t2quant.io import bids
from t2quant.levels import LEVEL_COLORS
from t2quant.pfirrmann.files import GRADE_COLUMNS
from t2quant.reports.layout import asset

__all__ = ["DISC_COLUMNS", "disc_table", "nav_bar", "review_script", "section_id"]

#: The measurements the disc table shows: column, header (with the unit), number format.
DISC_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("t2_mean_ms", "T2 (ms)", "{:.1f}"),
    ("t2_sd_ms", "T2 SD (ms)", "{:.1f}"),
    ("volume_mm3", "Volume (mm³)", "{:.0f}"),
    ("nucleus_csf_ratio", "Nucleus / CSF", "{:.2f}"),
    ("nucleus_annulus_contrast", "Nucleus / annulus contrast", "{:.2f}"),
    ("disc_height_index", "Height index", "{:.2f}"),
    ("segmentation_confidence", "Segmentation confidence", "{:.2f}"),
)
DESCRIPTIONS = FEATURE_COLUMNS | SEGMENTATION_COLUMNS | GRADE_COLUMNS


def section_id(session: str) -> str:
    """The HTML id of a session's section: ``ses-<label>``."""
    return bids.session_id(session)


def nav_bar(sessions: list[str]) -> str:
    """The sticky bar: the summary, each session, and the rater's name, count and export."""
    links = "".join(f'<a href="#{section_id(s)}">{html.escape(bids.session_id(s))}</a>'
                    for s in sessions)  # fmt: skip
    tools = ('<span class="review">Rater: <b id="rater-name"></b>'
             '<button type="button" id="change-rater">change</button>'
             '<span id="rated-count"></span>'
             '<button type="button" id="export-ratings" title="download the ratings as a TSV '
             'for the group level (--ratings)">Export ratings</button></span>')  # fmt: skip
    return f'<nav class="topnav"><a href="#summary">Summary</a>{links}{tools}</nav>'


def review_script(participant: str) -> str:
    """The page's script and its settings (the participant, the export's file name)."""
    sub = f"sub-{participant.removeprefix('sub-')}"
    settings = json.dumps({"participant": sub, "file": bids.ratings_name(sub)})
    settings = settings.replace("</", "<\\/")
    return (f'<script type="application/json" id="t2quant-review">{settings}</script>'
            f"<script>{asset('review.js')}</script>")  # fmt: skip


def _number(value, fmt: str) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return ""
    return fmt.format(number) if math.isfinite(number) else ""


def _header() -> str:
    cells = ['<th title="disc level">Level</th>',
             f'<th title="{html.escape(DESCRIPTIONS["qc_status"])}">Status</th>']  # fmt: skip
    cells += [f'<th title="{html.escape(DESCRIPTIONS.get(c, ""))}">{html.escape(h)}</th>'
              for c, h, _ in DISC_COLUMNS]  # fmt: skip
    cells += ['<th title="suggested Pfirrmann grade (confidence 0..1)">Suggested grade</th>',
              '<th title="accept or exclude this segmentation">Segmentation</th>',
              '<th title="click the suggested grade to confirm it, another to correct it">'
              "Your grade</th>",
              '<th title="why (needed to exclude)">Reason</th>']  # fmt: skip
    return "<thead><tr>" + "".join(cells) + "</tr></thead>"


def _review_cells(suggested: int | None) -> str:
    decisions = "".join(f'<button type="button" data-decision="{d}">{d}</button>'
                        for d in ("accept", "exclude"))  # fmt: skip
    grades = "".join(
        f'<button type="button" data-grade="{g}"'
        f"{' class=suggested title=suggested' if g == suggested else ''}>{g}</button>"
        for g in range(1, 6)
    )
    reason = '<input class="reason" type="text" placeholder="reason" aria-label="reason">'
    return f'<td class="review">{decisions}</td><td class="review">{grades}</td><td>{reason}</td>'


def _disc_rows(session: str, row: pd.Series) -> str:
    """A disc's row (measurements, suggestion, review controls) and its criteria row."""
    level = str(row["level"])
    grade = _number(row.get("pfirrmann_suggested"), "{:.0f}")
    confidence = _number(row.get("pfirrmann_confidence"), "{:.2f}")
    status = str(row.get("qc_status", ""))
    reason = row.get("qc_reason")
    reason = "" if pd.isna(reason) else str(reason)
    cells = [f'<th style="border-left:4px solid {LEVEL_COLORS.get(level, "#fff")}">'
             f"{html.escape(level)}</th>",
             f'<td title="{html.escape(reason)}">{html.escape(status)}</td>']  # fmt: skip
    cells += [f'<td class="num">{_number(row.get(c), fmt)}</td>' for c, _, fmt in DISC_COLUMNS]
    cells.append(f'<td class="num">{grade}{f" ({confidence})" if confidence else ""}</td>')
    disc = (f'<tr class="disc" data-session="{html.escape(session)}" '
            f'data-level="{html.escape(level)}">{"".join(cells)}'
            f"{_review_cells(int(grade) if grade else None)}</tr>")  # fmt: skip
    criteria = row.get("pfirrmann_criteria")
    criteria = "" if pd.isna(criteria) else str(criteria)
    why = "; ".join(x for x in (criteria, reason) if x) or "no criteria (not graded)"
    span = 2 + len(DISC_COLUMNS) + 4
    return disc + f'<tr class="criteria"><td colspan="{span}">{html.escape(why)}</td></tr>'


def disc_table(session: str, features: pd.DataFrame) -> str:
    """The session's disc table: a compact set of measurements with units, the suggested
    grade, the review controls, and the Pfirrmann criteria behind a toggle."""
    toggle = f"crit-{section_id(session)}"
    rows = "".join(_disc_rows(session, row) for _, row in features.iterrows())
    return (f'<input type="checkbox" class="show-criteria" id="{toggle}">'
            f'<label for="{toggle}"> show the Pfirrmann criteria and QC notes</label>'
            f'<div class="table-wrap"><table class="discs">{_header()}<tbody>{rows}</tbody>'
            "</table></div>")  # fmt: skip
