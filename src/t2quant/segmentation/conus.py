"""Where the spinal cord ends (the conus medullaris), as a check on the level count.

On a T2-weighted midline image the cord is a dark band inside the bright cerebrospinal
fluid of the canal; below the conus only thin nerve roots remain. The conus usually ends
between the T12/L1 and L1/L2 discs. A conus that ends a level higher or lower than that, by
the count from the sacrum, is what an extra or a missing lumbar vertebra looks like (or a
high or low-lying cord), so it is reported as ``level_uncertain``, never used to renumber.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi

from t2quant.segmentation.column import STEP_MM, Column

__all__ = ["conus_tip_mm"]

CANAL_BAND_MM = (-18.0, -1.0)  # depth band behind the canal's anterior wall
MIN_CORD_MM = 3.0


def conus_tip_mm(straight: NDArray, column: Column) -> float | None:
    """Arc length (mm) where the cord ends, or None when no cord is seen at the top of the
    canal. ``straight`` is the straightened midline plane ``(n_s, n_d)``."""
    band = (column.d_mm >= CANAL_BAND_MM[0]) & (column.d_mm <= CANAL_BAND_MM[1])
    rows = straight[:, band]
    lo, hi = (np.searchsorted(column.s_mm, v) for v in column.canal_range_mm)
    if hi - lo < 20:
        return None
    csf = float(np.percentile(rows[lo:hi], 97))
    present = np.array([_cord_in_row(row, csf) for row in rows])
    present[:lo] = False
    present[hi:] = False
    present = ndi.median_filter(present, size=max(3, round(5.0 / STEP_MM)) | 1)
    runs, n = ndi.label(present)
    if n == 0:
        return None
    first = ndi.find_objects(runs)[0][0]
    top_third = lo + (hi - lo) // 3
    if first.start > top_third or (first.stop - first.start) * STEP_MM < 20.0:
        return None
    return float(column.s_mm[first.stop - 1])


def _cord_in_row(row: NDArray, csf: float) -> bool:
    """A dark run at least MIN_CORD_MM long with fluid in front of it and behind it."""
    bright = row > 0.6 * csf
    dark = row < 0.45 * csf
    labels, n = ndi.label(dark)
    for k in range(1, n + 1):
        idx = np.flatnonzero(labels == k)
        if (
            idx.size * STEP_MM >= MIN_CORD_MM
            and bright[: idx[0]].any()
            and bright[idx[-1] + 1 :].any()
        ):
            return True
    return False
