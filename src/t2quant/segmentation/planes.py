"""One disc on one sagittal plane, in the straightened column's (s, d) grid.

Within the stretch between two vertebral bodies, each depth column ``d`` is a short profile
along ``s``: body, endplate (dark), disc, endplate, body. The disc lies between the two
endplate minima, its edges 0.3 of the way from each endplate's minimum up to the disc tissue
next to it; a collapsed disc as dark as its endplates is its dark band less one endplate at
each end. Its depth range runs from where the canal's fluid ends to the anterior longitudinal
ligament (for a dark disc, which merges with the ligament, a bulge beyond the bodies' front).
Boundaries are smoothed across depth, since endplates are smooth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi

from t2quant.segmentation.column import STEP_MM
from t2quant.segmentation.profile import BODY_RANGE, Gap

__all__ = ["DiscOutline", "outline_disc"]

MAX_DEPTH_MM = 48.0
ENDPLATE_MM = 1.2  # endplate thickness trimmed off a collapsed disc's dark band
CSF = 1.6  # relative to the body signal: brighter than this next to the canal wall is fluid
BODY_PROBE_MM = 8.0  # body rows sampled above and below a gap
EDGE_FRACTION = 0.3  # disc edge: this far from the endplate minimum up to the disc signal
DARK_BULGE_MM = 3.5  # a dark disc reaches this far anterior to the bodies' front


@dataclass(frozen=True)
class DiscOutline:
    """A disc on one plane: for each depth sample inside, its top and bottom arc length."""

    d_index: NDArray[np.intp]  # depth samples covered
    top_mm: NDArray[np.float64]  # per covered depth sample
    bottom_mm: NDArray[np.float64]

    @property
    def area_mm2(self) -> float:
        if self.d_index.size < 2:
            return 0.0
        return float(np.sum(self.bottom_mm - self.top_mm) * STEP_MM)


def outline_disc(
    straight: NDArray, gap: Gap, s_mm: NDArray, d_mm: NDArray, step_mm: float, level: float
) -> DiscOutline | None:
    """Outline the disc of ``gap`` on one straightened plane ``(n_s, n_d)``, or None where the
    plane does not cross it (no bodies above and below). ``level`` is the body signal."""
    img = ndi.gaussian_filter(straight / level, 0.4 / step_mm)
    above = _rows(s_mm, gap.top_mm - BODY_PROBE_MM, gap.top_mm - 1.0)
    below = _rows(s_mm, gap.bottom_mm + 1.0, gap.bottom_mm + BODY_PROBE_MM)
    depth = _body_depth(img, above, below, d_mm)
    if depth is None:
        return None
    d_lo, d_hi = _disc_depth(img, gap, s_mm, d_mm, depth)
    window = _rows(s_mm, gap.top_mm - 2.0, gap.bottom_mm + 2.0)
    centre = np.searchsorted(s_mm, gap.centre_mm)
    cols = np.arange(d_lo, d_hi + 1)
    tops, bottoms = [], []
    for j in cols:
        band = img[window, max(0, j - 1) : j + 2].mean(axis=1)
        t, b = _column_extent(band, s_mm[window], s_mm[centre], gap, step_mm)
        tops.append(t)
        bottoms.append(b)
    tops_a, bottoms_a = np.array(tops), np.array(bottoms)
    k = max(3, round(3.0 / step_mm) | 1)
    tops_a = ndi.median_filter(tops_a, size=k, mode="nearest")
    bottoms_a = ndi.median_filter(bottoms_a, size=k, mode="nearest")
    keep = bottoms_a > tops_a
    return DiscOutline(cols[keep], tops_a[keep], bottoms_a[keep])


def _disc_depth(img, gap, s_mm, d_mm, body_depth) -> tuple[int, int]:
    """Posterior and anterior depth limits of the disc: from where the canal's fluid ends to
    the dark anterior longitudinal ligament (a collapsed, dark disc stops with the bodies)."""
    rows = _rows(s_mm, gap.disc_top_mm, gap.disc_bottom_mm)
    if rows.size == 0:
        return body_depth
    prof = np.median(img[rows], axis=0)
    near = np.flatnonzero((d_mm >= -4.0) & (d_mm <= 6.0))
    fluid = near[prof[near] > CSF]
    d_lo = int(fluid[-1] + 1) if fluid.size else int(np.flatnonzero(d_mm >= 0.0)[0])
    step = d_mm[1] - d_mm[0]
    if gap.kind == "dark":
        return d_lo, min(len(d_mm) - 1, body_depth[1] + round(DARK_BULGE_MM / step))
    return d_lo, max(_anterior_edge(prof, d_mm, body_depth[1]), d_lo + 1)


def _anterior_edge(prof: NDArray, d_mm: NDArray, body_front: int) -> int:
    """The disc's anterior margin: the dark anterior longitudinal ligament near the front of
    the bodies (the darkest sample within 6 mm of it), carried on to the edge of brighter
    tissue in front of it when there is some (prevertebral fat)."""
    step = d_mm[1] - d_mm[0]
    zone = np.flatnonzero(
        (d_mm >= max(20.0, d_mm[body_front] - 6.0)) & (d_mm <= d_mm[body_front] + 6.0)
    )
    zone = zone[zone < len(prof) - 1]
    if zone.size == 0:
        return body_front
    m = int(zone[np.argmin(prof[zone])])
    ahead = prof[m : min(len(prof), m + round(6.0 / step))]
    outside = float(ahead.max()) if ahead.size else prof[m]
    if outside - prof[m] < 0.3:
        return m
    half = 0.5 * (outside + prof[m])
    j = m
    while j + 1 < len(prof) and prof[j + 1] < half:
        j += 1
    return j


def _rows(s_mm: NDArray, lo: float, hi: float) -> NDArray[np.intp]:
    return np.flatnonzero((s_mm >= lo) & (s_mm <= hi))


def _body_depth(img: NDArray, above: NDArray, below: NDArray, d_mm: NDArray):
    """Depth samples from the canal wall to the bodies' anterior edge, or None when the
    plane shows no vertebral body both above and below the gap."""
    if above.size == 0 or below.size == 0:
        return None
    ok = []
    for rows in (above, below):
        med = np.percentile(img[rows], 75, axis=0)  # patchy marrow: its brighter part
        ok.append((med >= BODY_RANGE[0] - 0.1) & (med <= BODY_RANGE[1] + 0.2))
    body = ok[0] & ok[1]
    core = (d_mm >= 8.0) & (d_mm <= 20.0)
    if body[core].mean() < 0.6:
        return None
    start = int(np.flatnonzero(d_mm >= 0.0)[0])
    labels, _ = ndi.label(ndi.binary_closing(body, np.ones(5)))
    mid = int(np.flatnonzero(d_mm >= 14.0)[0])
    if labels[mid] == 0:
        return None
    run = np.flatnonzero(labels == labels[mid])
    d_lo = max(start, int(run[0]))
    d_hi = min(int(run[-1]), int(np.flatnonzero(d_mm <= MAX_DEPTH_MM)[-1]))
    return d_lo, d_hi


def _column_extent(prof: NDArray, s: NDArray, s_centre: float, gap: Gap, step_mm: float):
    """Top and bottom (mm) of the disc in one depth column's profile along s.

    The endplates are the darkest samples near each end of the gap. Between them, a disc
    brighter than its endplates ends where the profile crosses the :func:`_edge` value between
    its own signal and the endplate minimum (the edge of a blurred step). A disc as dark as its
    endplates (collapsed) is the dark band between the bodies less one endplate thickness at
    each end."""
    idx = np.arange(len(s))
    c = int(np.clip(np.searchsorted(s, s_centre), 2, len(s) - 3))
    top_zone = idx[(s >= gap.top_mm - 1.5) & (idx < c - 1)]
    bottom_zone = idx[(s <= gap.bottom_mm + 1.5) & (idx > c + 1)]
    if top_zone.size == 0 or bottom_zone.size == 0:
        return s_centre - 0.5 * step_mm, s_centre + 0.5 * step_mm
    m_top = int(top_zone[np.argmin(prof[top_zone])])
    m_bot = int(bottom_zone[np.argmin(prof[bottom_zone])])
    inner = prof[m_top + 1 : m_bot] if m_bot - m_top > 1 else prof[c : c + 1]
    level = float(np.median(inner))
    floor = max(prof[m_top], prof[m_bot])
    if level - floor > 0.12:
        near = max(2, round(2.0 / step_mm))  # the disc tissue next to each endplate
        lv_top = min(level, float(np.median(prof[m_top + 1 : m_top + 1 + near])))
        lv_bot = min(level, float(np.median(prof[max(m_top + 1, m_bot - near) : m_bot])))
        top_value = _edge(max(lv_top, floor + 0.12), prof[m_top])
        bottom_value = _edge(max(lv_bot, floor + 0.12), prof[m_bot])
        top = _crossing(prof, m_top, +1, top_value, m_bot)
        bottom = _crossing(prof, m_bot, -1, bottom_value, m_top)
    else:  # collapsed: the dark band between the bodies, endplates trimmed
        body = 0.5 * (float(prof[top_zone[0]]) + float(prof[bottom_zone[-1]]))
        half = 0.5 * (body + level)
        top = _crossing(prof, c, -1, half, top_zone[0]) + ENDPLATE_MM / step_mm
        bottom = _crossing(prof, c, +1, half, bottom_zone[-1]) - ENDPLATE_MM / step_mm
        if bottom <= top:
            top = bottom = float(c)
    top_mm = float(np.interp(top, idx, s))
    bottom_mm = float(np.interp(bottom, idx, s))
    return top_mm, bottom_mm


def _edge(disc: float, endplate: float) -> float:
    """The signal at the disc's edge: EDGE_FRACTION of the way from the endplate's minimum
    up to the disc. A thin endplate blurred by the point-spread function has a minimum well
    above its true signal, so the half-way value lies inside the disc. 0.3, with
    DARK_BULGE_MM and ENDPLATE_MM, was chosen on phantom seeds 0-19; on seeds 20-49 the
    three together moved the median Dice from 0.910 to 0.931."""
    return endplate + EDGE_FRACTION * (disc - endplate)


def _crossing(prof: NDArray, start: int, step: int, value: float, stop: int) -> float:
    """Sub-sample index where the profile first crosses ``value`` walking from ``start`` in
    direction ``step`` (at most to ``stop``)."""
    j = start
    above = prof[start] >= value
    while j != stop and (prof[j + step] >= value) == above:
        j += step
    if j == stop:
        return float(j)
    frac = (prof[j] - value) / (prof[j] - prof[j + step]) if prof[j] != prof[j + step] else 0.5
    return float(j + step * float(np.clip(frac, 0.0, 1.0)))
