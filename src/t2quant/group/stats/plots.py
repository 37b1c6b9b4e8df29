"""Forest plots of the moderator table, one per follow-up week, in a trial paper's layout:
subgroups in rows under their moderator, the net difference and its 95% CI as a point and a
line, a line at no difference, and the numbers written out on the right."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from t2quant.io import atomic_path
from t2quant.plotting import pyplot

__all__ = ["forest_plot"]


def _layout(rows: pd.DataFrame, labels: dict[str, str]) -> list[tuple[str, pd.Series | None]]:
    """(text, row) lines top to bottom: the overall row, then a header per moderator."""
    lines: list[tuple[str, pd.Series | None]] = []
    for moderator, block in rows.groupby("moderator", sort=False):
        if moderator == "overall":
            lines.append(("Overall", block.iloc[0]))
            continue
        lines.append((labels.get(moderator, moderator), None))
        lines += [(f"   {r.subgroup}", r) for _, r in block.iterrows()]
    return lines


def _numbers(row: pd.Series) -> str:
    if not np.isfinite(row["estimate_ms"]):
        return "not estimated"
    p = row["p_value"]
    ptext = "p<0.001" if p < 0.001 else f"p={p:.3f}"
    return (
        f"{row['estimate_ms']:.2f} [{row['ci_low_ms']:.2f}, {row['ci_high_ms']:.2f}]  "
        f"{ptext}  n={int(row['n_participants'])}"
    )


def forest_plot(
    moderators: pd.DataFrame, week: int, paths: list[Path], *, labels: dict[str, str] | None = None
) -> list[Path]:
    """Draw the rows of ``week`` from a ``moderators.tsv`` table into every path given
    (the format follows the suffix: ``.png``, ``.svg``)."""
    plt = pyplot()
    rows = moderators[moderators["timepoint_weeks"] == week]
    lines = _layout(rows, labels or {})
    height = 0.9 + 0.24 * len(lines)
    fig, (ax, text_ax) = plt.subplots(
        1, 2, figsize=(10.5, height), gridspec_kw={"width_ratios": [1.1, 1.0], "wspace": 0.02}
    )
    y = np.arange(len(lines))[::-1]
    for yi, (text, row) in zip(y, lines, strict=True):
        bold = row is None or text == "Overall"
        ax.text(-0.02, yi, text, transform=ax.get_yaxis_transform(), ha="right", va="center",
                fontsize=8, fontweight="bold" if bold else "normal")  # fmt: skip
        if row is None:
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
    fig.suptitle(f"Disc T2 change at {week} weeks by subgroup", fontsize=10)
    fig.subplots_adjust(left=0.3, right=0.99, top=1 - 0.45 / height, bottom=0.55 / height)
    written = []
    for path in paths:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=Path(path).suffix.lstrip("."), dpi=130)
        written.append(Path(path))
    plt.close(fig)
    return written
