"""Forest plots of the moderator table, one per follow-up week, in a trial paper's layout:
subgroups in rows under their moderator, the net difference and its 95% CI as a point and a
line, a line at no difference, the numbers written out on the right, and each moderator's
interaction test beside its name (CONSORT: subgroup estimates are read against the
interaction test). The title labels the analysis exploratory; a footnote states the test
and the multiplicity handling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from t2quant.io import atomic_path
from t2quant.plotting import pyplot

__all__ = ["forest_plot"]


Line = tuple[str, pd.Series | str]


def _layout(rows: pd.DataFrame, labels: dict[str, str], interaction: dict[str, str]) -> list[Line]:
    """(text, row) lines top to bottom: the overall row, then per moderator a header (its
    ``row`` is the interaction test's text) and its subgroups."""
    lines: list[Line] = []
    for moderator, block in rows.groupby("moderator", sort=False):
        if moderator == "overall":
            lines.append(("Overall", block.iloc[0]))
            continue
        lines.append((labels.get(moderator, moderator), interaction.get(moderator, "")))
        lines += [(f"   {r.subgroup}", r) for _, r in block.iterrows()]
    return lines


def _interaction_texts(interactions: pd.DataFrame | None, week: int) -> dict[str, str]:
    """Moderator -> "interaction p=..." of its test at ``week`` (with the FDR p)."""
    if interactions is None or interactions.empty:
        return {}
    at = interactions[interactions["timepoint_weeks"].astype(str) == str(week)]
    out = {}
    for r in at.itertuples():
        if not np.isfinite(r.p_value):
            out[r.moderator] = "interaction: not estimated"
            continue
        fdr = f" (FDR {r.p_fdr:.3f})" if np.isfinite(r.p_fdr) else ""
        out[r.moderator] = f"interaction {_p_text(r.p_value)}{fdr}"
    return out


def _p_text(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def _numbers(row: pd.Series) -> str:
    if not np.isfinite(row["estimate_ms"]):
        return "not estimated"
    return (
        f"{row['estimate_ms']:.2f} [{row['ci_low_ms']:.2f}, {row['ci_high_ms']:.2f}]  "
        f"{_p_text(row['p_value'])}  n={int(row['n_participants'])}"
    )


def forest_plot(
    moderators: pd.DataFrame,
    week: int,
    paths: list[Path],
    *,
    labels: dict[str, str] | None = None,
    interactions: pd.DataFrame | None = None,
    footnote: str = "",
) -> list[Path]:
    """Draw the rows of ``week`` from a ``moderators.tsv`` table into every path given
    (the format follows the suffix: ``.png``, ``.svg``), with each moderator's interaction
    test at ``week`` from an ``interactions.tsv`` table and ``footnote`` below."""
    plt = pyplot()
    rows = moderators[moderators["timepoint_weeks"] == week]
    lines = _layout(rows, labels or {}, _interaction_texts(interactions, week))
    height = 1.2 + 0.24 * len(lines)
    fig, (ax, text_ax) = plt.subplots(
        1, 2, figsize=(10.5, height), gridspec_kw={"width_ratios": [1.1, 1.0], "wspace": 0.02}
    )
    y = np.arange(len(lines))[::-1]
    for yi, (text, row) in zip(y, lines, strict=True):
        bold = isinstance(row, str) or text == "Overall"
        ax.text(-0.02, yi, text, transform=ax.get_yaxis_transform(), ha="right", va="center",
                fontsize=8, fontweight="bold" if bold else "normal")  # fmt: skip
        if isinstance(row, str):
            text_ax.text(0.02, yi, row, va="center", fontsize=8, style="italic")
            continue
        text_ax.text(0.02, yi, _numbers(row), va="center", fontsize=8, family="monospace")
        if np.isfinite(row["estimate_ms"]):
            colour = "black" if text == "Overall" else "#1f4e79"
            ax.plot([row["ci_low_ms"], row["ci_high_ms"]], [yi, yi], color=colour, lw=1.2)
            ax.plot(row["estimate_ms"], yi, marker="D" if text == "Overall" else "s",
                    color=colour, ms=5)  # fmt: skip
    ax.axvline(0.0, color="grey", lw=0.8, ls="--")
    ax.set_ylim(-0.8, len(lines) - 0.2)
    ax.set_yticks([])
    ax.set_xlabel("net difference in T2 change, run minus control (ms)", fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    text_ax.set_ylim(ax.get_ylim())
    text_ax.axis("off")
    text_ax.set_title("estimate [95% CI]  p  participants", fontsize=8, loc="left")
    fig.suptitle(
        f"Disc T2 change at {week} weeks by subgroup (exploratory)", fontsize=10, x=0.01, ha="left"
    )
    if footnote:
        fig.text(0.01, 0.01, footnote, fontsize=6.5, va="bottom", wrap=True)
    fig.subplots_adjust(left=0.3, right=0.99, top=1 - 0.45 / height, bottom=0.85 / height)
    written = []
    for path in paths:  # SVG text stays text: searchable, and editable for a paper's figure
        with atomic_path(path) as tmp, plt.rc_context({"svg.fonttype": "none"}):
            fig.savefig(tmp, format=Path(path).suffix.lstrip("."), dpi=130)
        written.append(Path(path))
    plt.close(fig)
    return written
