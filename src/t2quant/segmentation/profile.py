"""Find vertebral bodies and discs along the straightened column (a 1D analysis).

Down the middle of the column the image alternates: a vertebral body (a long, even plateau,
20-35 mm), an endplate (a thin dark line), a disc (a bright nucleus, an annulus about as
bright as bone marrow, or a dark collapsed band), the next endplate, the next body. Bodies
are the steadiest feature whatever the disc's grade, so they are found first; each disc is the
stretch between two consecutive bodies. Profiles are normalised by the median body signal.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi

__all__ = ["Gap", "column_profile", "find_gaps"]

BAND_MM = (5.0, 22.0)  # depth band of the profile: the middle of the bodies
DIP = 0.72  # below this (times the body level) a sample is an endplate or a dark disc
BODY_RANGE = (0.78, 1.45)  # body marrow, relative to the body level
MIN_BODY_MM = 13.0
MAX_GAP_MM = 24.0
MIN_GAP_MM = 3.0  # a disc with its two endplates is never taller than this
NUCLEUS_REACH_MM = 6.0  # a nucleus's endplates lie within this of its bright run
NUCLEUS_MIN = 1.25  # a nucleus is at least this bright (times the body level)
ENDPLATE_MAX_MM = 4.0  # an endplate dip is at most this thick


@dataclass(frozen=True)
class Gap:
    """The stretch between two vertebral bodies: a disc with its endplates (mm of arc)."""

    top_mm: float  # end of the body above
    bottom_mm: float  # start of the body below
    disc_top_mm: float  # the disc proper, endplates excluded (estimate)
    disc_bottom_mm: float
    kind: str  # "bright" (nucleus above marrow), "dark" (collapsed), or "even"
    contrast: float  # peak deviation from the body level, signed

    @property
    def centre_mm(self) -> float:
        return 0.5 * (self.disc_top_mm + self.disc_bottom_mm)

    @property
    def height_mm(self) -> float:
        return self.disc_bottom_mm - self.disc_top_mm


def column_profile(
    straight: NDArray, valid: NDArray[np.bool_], d_mm: NDArray, step_mm: float
) -> tuple[NDArray[np.float64], float]:
    """Median of the straightened column over the depth band, per arc-length sample,
    normalised by the body level (NaN where the band leaves the image), and that level."""
    band = (d_mm >= BAND_MM[0]) & (d_mm <= BAND_MM[1])
    values = np.where(valid[:, band], straight[:, band], np.nan)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        prof = np.nanmedian(values, axis=1)
        prof[valid[:, band].mean(axis=1) < 0.8] = np.nan
    prof = _smooth(prof, 0.6 / step_mm)
    level = _body_level(prof)
    return prof / level, level


def _smooth(prof: NDArray, sigma: float) -> NDArray:
    ok = np.isfinite(prof)
    filled = np.where(ok, prof, 0.0)
    num = ndi.gaussian_filter1d(filled, sigma)
    den = ndi.gaussian_filter1d(ok.astype(float), sigma)
    with np.errstate(all="ignore"):
        return np.where(ok, num / den, np.nan)


def _body_level(prof: NDArray) -> float:
    """The typical marrow signal: the mode of the profile's steady stretches."""
    finite = prof[np.isfinite(prof)]
    if finite.size == 0:
        return 1.0
    steady = np.abs(np.gradient(np.nan_to_num(prof))) < 0.02 * np.nanmedian(finite)
    pool = prof[steady & np.isfinite(prof)]
    pool = pool if pool.size > 20 else finite
    hist, edges = np.histogram(pool, bins=40, range=np.percentile(pool, [5, 95]))
    k = int(np.argmax(ndi.gaussian_filter1d(hist.astype(float), 1.0)))
    return float(0.5 * (edges[k] + edges[k + 1]))


def find_bodies(prof: NDArray, step_mm: float) -> list[tuple[int, int]]:
    """Runs of body-level signal at least MIN_BODY_MM long, as (first, last) sample indices."""
    body = (prof >= BODY_RANGE[0]) & (prof <= BODY_RANGE[1])
    # short excursions (noise, a vein) do not break a body
    body = ndi.binary_closing(body, np.ones(max(1, round(1.5 / step_mm)) | 1))
    body &= np.isfinite(prof)
    labels, _n = ndi.label(body)
    runs = []
    for sl in ndi.find_objects(labels):
        if (sl[0].stop - sl[0].start) * step_mm >= MIN_BODY_MM:
            runs.append((sl[0].start, sl[0].stop - 1))
    return runs


def find_gaps(prof: NDArray, s_mm: NDArray, step_mm: float) -> list[Gap]:
    """The disc stretches between consecutive bodies, superior to inferior."""
    bodies = _split_long_runs(find_bodies(prof, step_mm), prof, step_mm)
    gaps = []
    for (_, end), (start, _) in itertools.pairwise(bodies):
        if (start - end) * step_mm > MAX_GAP_MM or start <= end + 1:
            continue
        gap = _describe_gap(prof, s_mm, end, start, step_mm)
        if gap.bottom_mm - gap.top_mm < MIN_GAP_MM and abs(gap.contrast) < 0.4:
            continue  # a faint break inside a body, not a disc
        gaps.append(gap)
    return sorted(gaps + _nucleus_gaps(prof, s_mm, step_mm, gaps), key=lambda g: g.top_mm)


def _nucleus_gaps(prof: NDArray, s_mm: NDArray, step_mm: float, known: list[Gap]) -> list[Gap]:
    """Bright discs the body runs missed: a bright run (a nucleus) with an endplate dip
    within NUCLEUS_REACH_MM above and below it, where no gap was found already.

    Bodies can fail the plateau test where marrow is patchy or dark (an image derived from
    multi-echo data at long echo times); a nucleus between two endplates is still clear.
    """
    bright = np.nan_to_num(prof) > NUCLEUS_MIN
    labels, _n = ndi.label(bright)
    reach = round(NUCLEUS_REACH_MM / step_mm)
    out: list[Gap] = []
    for sl in ndi.find_objects(labels):
        a, b = sl[0].start, sl[0].stop - 1
        if not 2.0 <= (b - a + 1) * step_mm <= MAX_GAP_MM - 4.0:
            continue
        if any(g.top_mm <= s_mm[(a + b) // 2] <= g.bottom_mm for g in known + out):
            continue
        above = np.flatnonzero(prof[max(0, a - reach) : a] < DIP)
        below = np.flatnonzero(prof[b + 1 : b + 1 + reach] < DIP)
        if above.size == 0 or below.size == 0:
            continue
        top, bottom = max(0, a - reach) + above[-1], b + 1 + below[0]
        limit = round(ENDPLATE_MAX_MM / step_mm)
        top_end = _dip_end(prof, top, -1, limit)
        bottom_end = _dip_end(prof, bottom, +1, limit)
        out.append(
            Gap(
                top_mm=float(s_mm[top_end]),
                bottom_mm=float(s_mm[bottom_end]),
                disc_top_mm=float(s_mm[top]) + 0.5 * step_mm,
                disc_bottom_mm=float(s_mm[bottom]) - 0.5 * step_mm,
                kind="bright",
                contrast=float(np.nanmax(prof[a : b + 1]) - 1.0),
            )
        )
    return out


def _dip_end(prof: NDArray, i: int, step: int, limit: int) -> int:
    """Walk from sample ``i`` (below DIP) outward to the last sample of the dip, at most
    ``limit`` samples."""
    for _ in range(limit):
        j = i + step
        if not (0 <= j < prof.size and np.isfinite(prof[j]) and prof[j] < DIP):
            break
        i = j
    return i


def _split_long_runs(runs: list[tuple[int, int]], prof: NDArray, step_mm: float):
    """A run longer than a body hides an even disc with faint endplates: split it at its
    deepest dip."""
    out = []
    for a, b in runs:
        if (b - a) * step_mm > 42.0:
            inner = prof[a + int(10 / step_mm) : b - int(10 / step_mm)]
            k = a + int(10 / step_mm) + int(np.nanargmin(inner))
            half = max(1, int(2.0 / step_mm))
            out.extend([(a, k - half), (k + half, b)])
        else:
            out.append((a, b))
    return out


def _describe_gap(prof: NDArray, s_mm: NDArray, end: int, start: int, step_mm: float) -> Gap:
    """Where the disc proper lies inside a gap, and what it looks like."""
    seg = prof[end + 1 : start]
    idx = np.arange(end + 1, start)
    dips = seg < DIP
    if dips.all() or not dips.any():  # one dark band (collapsed disc), or no visible endplates
        lo, hi = idx[0], idx[-1]
        kind = "dark" if dips.all() else "even"
    else:
        inner = np.flatnonzero(~dips)
        lo, hi = idx[inner[0]], idx[inner[-1]]
        if (hi - lo) * step_mm < 1.5:  # a sliver between two dips: treat all as the disc
            lo, hi = idx[0], idx[-1]
        kind = "bright" if np.nanmax(prof[lo : hi + 1]) > BODY_RANGE[1] else "even"
        if kind == "even" and np.nanmean(seg < DIP) > 0.7:
            kind = "dark"
    dev = seg - 1.0
    contrast = float(dev[np.nanargmax(np.abs(dev))])
    return Gap(
        top_mm=float(s_mm[end]),
        bottom_mm=float(s_mm[start]),
        disc_top_mm=float(s_mm[lo]) - 0.5 * step_mm,
        disc_bottom_mm=float(s_mm[hi]) + 0.5 * step_mm,
        kind=kind,
        contrast=contrast,
    )
