"""Name the discs upward from the sacrum, and say when the count is unsure.

The anchor is the sacrum: the lowest full disc above it is L5/S1. Below L5/S1 the fused
sacral segments show only thin remnant discs (S1/S2, sometimes S2/S3), and the thecal sac
ends near S2. A gap is *remnant-like* when it is thin and dark and lies near the end of the
canal; the lowest gap is L5/S1 unless it is remnant-like. Names are never shifted to make
the count look normal: an unsure anchor, an irregular spacing, or levels out of view become
flags and warnings.

Flags: ``level_uncertain`` (the count may be off by one), ``transitional_anatomy`` (the
pattern at the lumbosacral junction is not the usual one), ``no_sacrum`` (nothing to anchor
on: no disc is named), ``missing_level`` (a level of T11/T12..L5/S1 is not in the image).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from t2quant.levels import LEVELS
from t2quant.segmentation.column import Column
from t2quant.segmentation.profile import Gap

__all__ = ["Naming", "name_gaps"]

REMNANT_GAP_MM = 13.0  # a sacral remnant: a dark gap no taller than this between bodies
SACRUM_VIEW_MM = 30.0  # column needed below the lowest disc to see the sacrum
SURE_REMNANT_MM = 30.0  # a remnant this close above the end of the thecal sac is not in doubt
CONUS_ANCHOR_BELOW_MM = 25.0  # a body's worth of column below the lowest disc


@dataclass
class Naming:
    gaps: dict[str, Gap] = field(default_factory=dict)  # level name -> gap
    confidence: dict[str, float] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()


def name_gaps(
    gaps: list[Gap], prof: NDArray, column: Column, step_mm: float, conus_mm: float | None = None
) -> Naming:
    """Assign level names to the gaps (superior to inferior) from the sacrum upward;
    ``conus_mm`` (where the cord ends) checks the count."""
    warnings: list[str] = []
    flags: set[str] = set()
    if not gaps:
        return _unnamed("no disc was found along the column", {"no_sacrum"})
    anchor, anchor_conf = _anchor(gaps, prof, column, step_mm, warnings, flags, conus_mm)
    if anchor is None:
        return _unnamed(warnings[-1], flags)
    naming = Naming()
    names = [*list(LEVELS[::-1]), "T10/T11"]
    for offset, k in enumerate(range(anchor, -1, -1)):
        if offset >= len(names):
            break
        naming.gaps[names[offset]] = gaps[k]
        naming.confidence[names[offset]] = _confidence(gaps[k]) * anchor_conf
    _check_spacing(naming, warnings, flags)
    _check_conus(naming, conus_mm, warnings, flags)
    top_visible = _top_of_view(prof, column, step_mm)
    for lvl in LEVELS:
        if lvl in naming.gaps:
            continue
        where = _where_missing(naming, lvl, top_visible)
        naming.missing[lvl] = where
        warnings.append(f"{lvl}: {where}")
        flags.add("missing_level")
    naming.warnings = tuple(warnings)
    naming.flags = tuple(sorted(flags))
    return naming


def _unnamed(why: str, flags: set[str]) -> Naming:
    naming = Naming(warnings=(why,), flags=tuple(sorted(flags | {"level_uncertain"})))
    naming.missing = dict.fromkeys(LEVELS, "not named: " + why)
    return naming


def _remnant_like(gap: Gap, column: Column, image_end_mm: float) -> bool:
    """A thin dark gap near the end of the thecal sac: a fused sacral segment's remnant disc.
    Where the canal runs out of the image its end is unknown and only the shape counts."""
    if gap.kind != "dark" or gap.bottom_mm - gap.top_mm > REMNANT_GAP_MM:
        return False
    canal_end = column.canal_range_mm[1]
    if canal_end > image_end_mm - 10.0:
        return True
    return -10.0 <= canal_end - gap.centre_mm <= 60.0


def _anchor(gaps, prof, column, step_mm, warnings, flags, conus_mm) -> tuple[int | None, float]:
    """Index of the L5/S1 gap and a confidence factor for the whole count."""
    finite = np.flatnonzero(np.isfinite(prof))
    image_end = float(column.s_mm[finite[-1]]) if finite.size else 0.0
    last = gaps[-1]
    below_last = _column_below(prof, last.bottom_mm, column, step_mm)
    if _remnant_like(last, column, image_end) and len(gaps) >= 2:
        anchor = len(gaps) - 2
        to_canal_end = column.canal_range_mm[1] - last.centre_mm
        sure = to_canal_end <= SURE_REMNANT_MM
        if _remnant_like(gaps[anchor], column, image_end) and not sure:
            warnings.append(
                "the two lowest discs are both thin and dark: L5/S1 is taken as the upper one "
                "(a collapsed L5/S1 above the S1/S2 remnant); if the lower one is L5/S1 every "
                "name is one level too high; check the count"
            )
            flags.add("level_uncertain")
            return anchor, 0.7
        if not sure:
            warnings.append(
                f"the lowest disc (at {last.centre_mm:.0f} mm along the column) is thin and dark "
                f"but {to_canal_end:.0f} mm above the end of the thecal sac: it is taken as the "
                "S1/S2 remnant; if it is a collapsed L5/S1 every name is one level too high"
            )
            flags.add("level_uncertain")
            return anchor, 0.8
        return anchor, 1.0
    canal_runs_off = column.canal_range_mm[1] > image_end - 10.0
    if (
        canal_runs_off
        and below_last >= CONUS_ANCHOR_BELOW_MM
        and _cord_ends_in_place(gaps, len(gaps) - 1, conus_mm)
    ):
        warnings.append(
            f"no sacral remnant disc in view (the image ends {below_last:.0f} mm below the "
            "lowest disc with the canal still running): the lowest disc is taken as L5/S1 "
            "because the spinal cord then ends between T12/L1 and L2/L3; check the count"
        )
        flags.add("level_uncertain")
        return len(gaps) - 1, 0.6
    if below_last < SACRUM_VIEW_MM or canal_runs_off:
        warnings.append(
            "no sacrum in the field of view (no sacral remnant disc, and the image ends "
            f"{below_last:.0f} mm below the lowest disc"
            + (" with the canal still running" if canal_runs_off else "")
            + "); levels cannot be anchored"
        )
        flags.update({"no_sacrum", "level_uncertain"})
        return None, 0.0
    warnings.append("no sacral remnant disc seen below the lowest disc; it is taken as L5/S1")
    flags.add("level_uncertain")
    return len(gaps) - 1, 0.7


def _cord_ends_in_place(gaps: list[Gap], anchor: int, conus_mm: float | None) -> bool:
    """Whether the cord ends between T12/L1 and L2/L3 when ``gaps[anchor]`` is L5/S1."""
    if conus_mm is None or anchor < 5:
        return False
    return _conus_window(gaps[anchor - 5].centre_mm, gaps[anchor - 3].centre_mm, conus_mm) == ""


def _conus_window(t12_l1_mm: float, l2_l3_mm: float, conus_mm: float) -> str:
    """Where the cord ends against its usual range (T12/L1..L2/L3 with a quarter-level
    margin): "" inside it, else "at or above T12/L1" or "at or below L2/L3"."""
    spacing = 0.5 * (l2_l3_mm - t12_l1_mm)
    if conus_mm < t12_l1_mm + 0.25 * spacing:
        return "at or above T12/L1"
    if conus_mm > l2_l3_mm - 0.25 * spacing:
        return "at or below L2/L3"
    return ""


def _column_below(prof: NDArray, s_mm: float, column: Column, step_mm: float) -> float:
    """How much imaged column (mm) there is below arc length ``s_mm``."""
    start = int(np.searchsorted(column.s_mm, s_mm))
    finite = np.isfinite(prof[start:])
    if not finite.any():
        return 0.0
    return float(np.flatnonzero(finite)[-1] * step_mm)


def _top_of_view(prof: NDArray, column: Column, step_mm: float) -> float | None:
    finite = np.flatnonzero(np.isfinite(prof))
    return None if finite.size == 0 else float(column.s_mm[finite[0]])


def _where_missing(naming: Naming, level: str, top_visible: float | None) -> str:
    """Why a level has no disc: above the field of view, at its top edge, or not found."""
    named = [(LEVELS.index(lvl), g.centre_mm) for lvl, g in naming.gaps.items() if lvl in LEVELS]
    if top_visible is None or len(named) < 2:
        return "not found in the image"
    idx, centre = zip(*sorted(named), strict=True)
    spacing = float(np.median(np.diff(centre) / np.diff(idx)))
    expected = centre[0] - (idx[0] - LEVELS.index(level)) * spacing
    if expected < top_visible - 0.1 * spacing:
        return "above the field of view"
    if expected < top_visible + 0.6 * spacing:
        return "at the top edge of the field of view; not segmented"
    return "not found in the image"


def _check_spacing(naming: Naming, warnings: list[str], flags: set[str]) -> None:
    order = [lvl for lvl in [*LEVELS[::-1], "T10/T11"] if lvl in naming.gaps]
    centres = np.array([naming.gaps[lvl].centre_mm for lvl in order])
    if centres.size < 3:
        return
    spacing = np.abs(np.diff(centres))
    typical = float(np.median(spacing))
    for a, b, gap_mm in zip(order[:-1], order[1:], spacing, strict=True):
        if not 0.6 * typical <= gap_mm <= 1.6 * typical:
            warnings.append(
                f"{b} to {a}: {gap_mm:.0f} mm between disc centres (typical {typical:.0f} mm); "
                "a disc may have been missed or split"
            )
            flags.add("level_uncertain")
            for lvl in (a, b):
                naming.confidence[lvl] *= 0.5


def _check_conus(
    naming: Naming, conus_mm: float | None, warnings: list[str], flags: set[str]
) -> None:
    """Flag a cord that ends a level away from the usual T12/L1..L1/L2 by this count."""
    if conus_mm is None or not {"T12/L1", "L1/L2", "L2/L3"} <= set(naming.gaps):
        return
    where = _conus_window(naming.gaps["T12/L1"].centre_mm, naming.gaps["L2/L3"].centre_mm, conus_mm)
    if not where:
        return
    warnings.append(
        f"the spinal cord ends {where} by the count from the sacrum (usually between T12/L1 "
        "and L1/L2): an extra or a missing lumbar vertebra would do this, as would a high or "
        "low-lying cord; count the vertebrae on a whole-spine view"
    )
    flags.update({"level_uncertain", "transitional_anatomy"})
    for lvl in naming.confidence:
        naming.confidence[lvl] *= 0.7


def _confidence(gap: Gap) -> float:
    """How clearly the disc stands out: full for a clear nucleus or collapse, less when the
    disc is only told apart by its endplates."""
    strength = min(1.0, abs(gap.contrast) / 0.5)
    return round(0.5 + 0.45 * strength, 3)
