"""A disc-aligned patch of one sagittal plane: the input of the disc-appearance network.

The patch is sampled along the disc's own axes (:class:`~t2quant.features.geometry.DiscAxes`),
so lordosis, pixel size and field of view do not change it: ``PATCH_W`` columns across
``PATCH_CONTEXT`` times the disc's length (anterior at the left), ``PATCH_H`` rows with the
same spacing (superior at the top), centred on the disc. It has two channels:

0. the log of the T2-weighted signal over ``reference`` (the session's vertebral-body
   signal), so the network sees the disc relative to a tissue the image itself contains,
   whatever the scanner's intensity scale;
1. the disc's own mask (0..1, linearly interpolated), which says which disc is meant.

Pure function of arrays; no I/O.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi

from t2quant.features.geometry import DiscAxes

__all__ = ["PATCH_CONTEXT", "PATCH_H", "PATCH_W", "disc_patch"]

PATCH_H, PATCH_W = 32, 64
PATCH_CONTEXT = 1.4  # the patch spans 1.4 x the disc's length (and 0.7 x across it)
SIGNAL_FLOOR = 1e-3  # signal is floored here (relative to the image's units) before the log


def disc_patch(
    plane: NDArray,
    disc_plane: NDArray[np.bool_],
    axes: DiscAxes,
    pixel_mm: NDArray,
    reference: float,
    *,
    angle_rad: float = 0.0,
    scale: float = 1.0,
    shift_mm: tuple[float, float] = (0.0, 0.0),
) -> NDArray[np.float32]:
    """The ``(2, PATCH_H, PATCH_W)`` patch of one disc (see the module docstring).

    Parameters
    ----------
    plane : (AP, SI) array
        The T2-weighted signal of the disc's mid-sagittal plane (canonical ``PIR`` frame).
    disc_plane : (AP, SI) bool array
        The disc's pixels on that plane.
    axes : DiscAxes
        The disc's principal axes on that plane (mm).
    pixel_mm : (2,) array
        Pixel size along the plane's two axes (mm).
    reference : float
        The signal the image is divided by (image units, > 0).
    angle_rad, scale, shift_mm
        A rotation of the sampling grid about the disc centre, a zoom of its spacing and a
        shift of its centre along (``u``, ``w``) in mm; training uses them to augment. The
        defaults sample the disc as it is.

    Returns
    -------
    (2, PATCH_H, PATCH_W) float32 array
        Log signal over ``reference`` and the disc mask. Samples outside the plane repeat its
        edge (signal) or are 0 (mask).
    """
    pixel_mm = np.asarray(pixel_mm, dtype=np.float64)
    ij = np.argwhere(disc_plane)
    u, _ = axes.project(ij * pixel_mm)
    length = float(np.ptp(u)) + float(pixel_mm.mean())
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    along = c * axes.along + s * axes.across
    across = -s * axes.along + c * axes.across
    step = PATCH_CONTEXT * length * scale / PATCH_W
    cols = (np.arange(PATCH_W) - 0.5 * (PATCH_W - 1)) * step
    rows = (np.arange(PATCH_H) - 0.5 * (PATCH_H - 1)) * step
    centre = axes.centre_mm + shift_mm[0] * axes.along + shift_mm[1] * axes.across
    pts = centre + cols[None, :, None] * along + rows[:, None, None] * across
    coords = np.moveaxis(pts / pixel_mm, -1, 0)
    signal = ndi.map_coordinates(np.asarray(plane, np.float64), coords, order=1, mode="nearest")
    mask = ndi.map_coordinates(disc_plane.astype(np.float64), coords, order=1, mode="constant")
    out = np.empty((2, PATCH_H, PATCH_W), np.float32)
    out[0] = np.log(np.maximum(signal, SIGNAL_FLOOR) / reference)
    out[1] = mask
    return out
