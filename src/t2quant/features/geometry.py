"""Shape of one disc on its mid-sagittal plane, in the disc's own axes.

All functions take a 2D boolean mask of one sagittal plane in the canonical ``PIR`` frame
(axis 0 anterior -> posterior, axis 1 superior -> inferior) and the pixel size in mm.

The disc's axes come from the principal axes of its pixels: ``u`` runs along the disc (its
anterior-posterior length, positive toward anterior), ``w`` across it (its height, positive
toward inferior). A disc tilted by lordosis is measured along its own axes, not the image's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["DiscAxes", "ap_length_mm", "bulge_index", "disc_axes", "heights_mm"]

HEIGHT_STATIONS = {"anterior": 0.15, "middle": 0.5, "posterior": 0.85}
"""Where along the disc's length (fraction from its anterior end) each height is measured."""
STRIP_FRACTION = 0.1  # width of the strip a height is averaged over, as a fraction of length


@dataclass(frozen=True)
class DiscAxes:
    """The disc's principal axes on one plane (coordinates in mm, image axes 0 and 1)."""

    centre_mm: NDArray[np.float64]  # (2,)
    along: NDArray[np.float64]  # (2,) unit vector, anterior-pointing
    across: NDArray[np.float64]  # (2,) unit vector, inferior-pointing

    def project(self, points_mm: NDArray) -> tuple[NDArray, NDArray]:
        """``(u, w)`` in mm of points ``(n, 2)`` relative to the disc centre."""
        rel = points_mm - self.centre_mm
        return rel @ self.along, rel @ self.across


def _points_mm(mask2d: NDArray[np.bool_], pixel_mm: NDArray) -> NDArray[np.float64]:
    return np.argwhere(mask2d) * np.asarray(pixel_mm, dtype=np.float64)


def disc_axes(mask2d: NDArray[np.bool_], pixel_mm: NDArray) -> DiscAxes:
    """Principal axes of a disc's pixels; ``along`` is the longer one, pointing anterior
    (toward lower axis-0 index), ``across`` points inferior (higher axis-1 index)."""
    pts = _points_mm(mask2d, pixel_mm)
    centre = pts.mean(axis=0)
    if len(pts) < 3:
        return DiscAxes(centre, np.array([-1.0, 0.0]), np.array([0.0, 1.0]))
    _, vecs = np.linalg.eigh(np.cov((pts - centre).T))
    along = vecs[:, 1] if vecs[0, 1] <= 0 else -vecs[:, 1]
    across = np.array([-along[1], along[0]])
    if across[1] < 0:
        across = -across
    return DiscAxes(centre, along, across)


def _extent(values: NDArray, pitch: float) -> float:
    """Length covered by pixel centres ``values`` (mm), counting a pixel's own size."""
    return float(values.max() - values.min() + pitch) if values.size else 0.0


def _pitch(axes: DiscAxes, pixel_mm: NDArray, direction: NDArray) -> float:
    """The pixel size seen along a unit ``direction`` (mm)."""
    return float(np.abs(direction * np.asarray(pixel_mm)).sum())


def ap_length_mm(mask2d: NDArray[np.bool_], pixel_mm: NDArray, axes: DiscAxes) -> float:
    """The disc's length along ``u`` (mm), from its posterior to its anterior margin."""
    u, _ = axes.project(_points_mm(mask2d, pixel_mm))
    return _extent(u, _pitch(axes, pixel_mm, axes.along))


def heights_mm(mask2d: NDArray[np.bool_], pixel_mm: NDArray, axes: DiscAxes) -> dict[str, float]:
    """Anterior, middle and posterior disc height (mm).

    Each height is the disc's area inside a strip across it, ``STRIP_FRACTION`` of its length
    wide and centred at the ``HEIGHT_STATIONS`` fraction of its length from the anterior
    margin, divided by the strip's width: the mean height over the strip, which does not
    step with the pixel grid the way a pixel count along one line does.
    """
    pts = _points_mm(mask2d, pixel_mm)
    u, _ = axes.project(pts)
    if u.size == 0:
        return dict.fromkeys(HEIGHT_STATIONS, float("nan"))
    pitch = _pitch(axes, pixel_mm, axes.along)
    front = u.max() + 0.5 * pitch
    length = _extent(u, pitch)
    half = 0.5 * max(STRIP_FRACTION * length, pitch)
    area = float(np.prod(pixel_mm))
    out = {}
    for name, frac in HEIGHT_STATIONS.items():
        centre = front - frac * length
        n = np.count_nonzero((u >= centre - half) & (u < centre + half))
        out[name] = n * area / (2 * half)
    return out


def bulge_index(mask2d: NDArray[np.bool_], pixel_mm: NDArray, axes: DiscAxes) -> float:
    """How much longer the disc is at mid-height than next to its endplates.

    ``length(middle third) / mean(length(upper third), length(lower third)) - 1`` of the disc's
    height, each length the 5th-95th percentile range of ``u`` in that third (robust to single
    stray pixels). A disc whose margins are flush with its endplates (a rectangle) gives 0;
    one whose annulus bulges past them gives a positive value.
    """
    pts = _points_mm(mask2d, pixel_mm)
    u, w = axes.project(pts)
    if u.size < 9:
        return float("nan")
    third = (w.max() - w.min()) / 3.0
    bands = [u[w < w.min() + third], u[(w >= w.min() + third) & (w <= w.max() - third)]]
    bands.append(u[w > w.max() - third])
    if min(b.size for b in bands) < 2:
        return float("nan")
    upper, mid, lower = (float(np.subtract(*np.percentile(b, [95, 5]))) for b in bands)
    ends = 0.5 * (upper + lower)
    return float(mid / ends - 1.0) if ends > 0 else float("nan")
