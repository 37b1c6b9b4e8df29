"""The group report ``OUT/group.html``: the disc table's summary, the raters' exclusions and
corrections (the audit trail of ``--ratings``), the forest plots and the moderator table, the
grade agreement, and a synthetic study's ground-truth check."""

from __future__ import annotations

import html
import json
from pathlib import Path

import pandas as pd

from t2quant.group.ratings import APPLIED_NAMES
from t2quant.io import atomic_path, read_tsv
from t2quant.io.tables import read_table
from t2quant.reports.figures import embed_png
from t2quant.reports.layout import html_table, page

__all__ = ["write_group_report"]


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
    parts = ["<h2>Ground-truth check (synthetic study)</h2>", html_table(pd.DataFrame(rows))]
    if misses:
        parts += ["<h3>Moderator estimates that missed the true effect</h3>",
                  html_table(pd.DataFrame(misses))]  # fmt: skip
    return parts


def _ratings_section(group: Path) -> list[str]:
    """Every exclusion and grade correction the raters made (``ratings_applied.tsv``), who made
    it and when, with the counts and notes of its sidecar."""
    tsv = group / APPLIED_NAMES["tsv"]
    if not tsv.exists():
        return []
    record = json.loads((group / APPLIED_NAMES["json"]).read_text())
    c = record["Counts"]
    parts = ["<h2>Ratings applied (audit trail)</h2>",
             f"<p>{c['discs_rated']} discs rated ({c['rows_read']} rows in {c['files']} file(s)): "
             f"{c['accepted']} accepted, {c['excluded']} excluded; {c['grades_given']} grades "
             f"given, {c['grades_corrected']} of them changed the grade.</p>"]  # fmt: skip
    if record["Notes"]:
        items = "".join(f"<li>{html.escape(n)}</li>" for n in record["Notes"])
        parts.append(f"<p>Discs rated more than once (the latest rating wins):</p><ul>{items}</ul>")
    audit = read_table(tsv, what="ratings audit")  # text as written, n/a kept
    if audit.empty:
        return [*parts, "<p>No disc was excluded and no grade changed.</p>"]
    shown = pd.DataFrame({
        "rater": audit["rater"], "time": audit["time"],
        "disc": audit["participant_id"] + " ses-" + audit["session"] + " " + audit["level"],
        "change": audit["change"], "before -> after": audit["before"] + " -> " + audit["after"],
        "reason": audit["reason"],
        "file": audit["file"].map(lambda f: Path(f).name),
    })  # fmt: skip
    return [*parts, html_table(shown)]


def _interactions_section(path: Path) -> list[str]:
    """The interaction tests (run x week x moderator), read before any subgroup."""
    if not path.exists():
        return []
    table = read_tsv(path)
    keep = [c for c in ("moderator", "timepoint_weeks", "F", "num_df", "den_df", "p_value",
                        "p_fdr", "inference", "n_participants", "converged", "warning")
            if c in table.columns]  # fmt: skip
    return ["<h3>Interaction tests (run x week x moderator)</h3>",
            "<p>Does the net effect differ between a moderator's subgroups? Exploratory; "
            "p_fdr: Benjamini-Hochberg across the interaction tests.</p>",
            html_table(table[keep])]  # fmt: skip


def write_group_report(output_dir: Path) -> Path:
    """``OUT/group.html``: the disc table summary, forest plots and agreement."""
    group = Path(output_dir) / "group"
    discs = read_tsv(group / "discs.tsv")
    summary = (
        discs.groupby(["timepoint_weeks", "group"])
        .agg(
            discs=("level", "size"),
            failed=("qc_status", lambda s: int((s == "failed").sum())),
            excluded=("qc_status", lambda s: int((s == "excluded").sum())),
            t2_mean_ms=("t2_mean_ms", "mean"),
            t2_sd_ms=("t2_mean_ms", "std"),
        )
        .reset_index()
    )
    counts = f"<p>{len(discs)} rows, {discs['participant_id'].nunique()} participants.</p>"
    parts = ["<h2>Disc table</h2>", counts, html_table(summary), *_ratings_section(group)]
    moderators = group / "moderators.tsv"
    if moderators.exists():
        parts += ["<h2>Moderators</h2>"]
        parts += [embed_png(p.read_bytes(), p.name) for p in sorted(group.glob("forest_week*.png"))]
        parts += _interactions_section(group / "interactions.tsv")
        parts += ["<h3>Subgroup effects</h3>", html_table(read_tsv(moderators))]
    agreement = group / "agreement.json"
    if agreement.exists():
        record = json.loads(agreement.read_text())
        keys = ["n_discs", "kappa_quadratic", "kappa_linear", "exact_agreement", "within_one",
                "ccc_aggregated", "grade_1_5_swaps"]  # fmt: skip
        frame = pd.DataFrame([{k: record.get(k) for k in keys}])
        parts += ["<h2>Agreement of the suggested grades with the reference grades</h2>",
                  "<p>Manual grades (--manual-grades) or a synthetic study's true grades.</p>",
                  html_table(frame)]  # fmt: skip
    check = group / "groundtruth_check.json"
    if check.exists():
        parts += _groundtruth_section(json.loads(check.read_text()))
    path = Path(output_dir) / "group.html"
    with atomic_path(path) as tmp:
        tmp.write_text(page("t2quant group report", "\n".join(parts)))
    return path
