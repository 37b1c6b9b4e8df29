"""Regions of and around one disc: in-plane erosion, nucleus and annulus, and nearby CSF.

Arrays are in the canonical ``PIR`` frame (axis 0 anterior -> posterior, axis 1 superior ->
inferior, axis 2 left -> right, the sagittal slice axis).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi

from t2quant.features.geometry import DiscAxes

__all__ = [
    "NUCLEUS_AP",
    "NUCLEUS_LR",
    "csf_signal",
    "erode_in_plane",
    "nucleus_mask",
    "vertebra_signal",
]

NUCLEUS_AP = 0.6  # the nucleus is the central 60% of the disc's length on each slice ...
NUCLEUS_LR = 0.6  # ... on the slices of the central 60% of its left-right extent
CSF_T2_MS = 250.0  # with a T2 map: canal voxels with a longer T2 are fluid
CSF_REACH_MM = 16.0  # the canal is searched this far behind the disc's posterior margin
CSF_TOP_FRACTION = 0.1  # without a T2 map: the brightest tenth of the search box
VERTEBRA_GAP_MM = 3.0  # the vertebral body box starts this far beyond the disc's margin ...
VERTEBRA_DEPTH_MM = 8.0  # ... and reaches this deep into the body (endplate zone skipped)
VERTEBRA_AP = 0.6  # ... over the central 60% of the disc's length
CROSS = ndi.generate_binary_structure(2, 1)


def erode_in_plane(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Remove one voxel from the disc's outline on every sagittal slice (a 3 x 3 cross).

    Slices are much thicker than the in-plane pixels in clinical protocols, so a 3D erosion
    would delete the lateral slices altogether; partial volume with endplates and CSF is an
    in-plane problem.
    """
    out = np.zeros_like(mask)
    for z in np.flatnonzero(mask.any(axis=(0, 1))):
        out[:, :, z] = ndi.binary_erosion(mask[:, :, z], CROSS)
    return out


def nucleus_mask(
    mask: NDArray[np.bool_], eroded: NDArray[np.bool_], axes: DiscAxes, voxel_mm: NDArray
) -> NDArray[np.bool_]:
    """The nucleus region: on the slices within the central ``NUCLEUS_LR`` of the disc's
    left-right extent, the voxels within the central ``NUCLEUS_AP`` of that slice's length
    along the disc (the mid-sagittal disc axis), less the one-voxel outline. The annulus is
    the rest of the disc. This is the five-region scheme of disc T2 mapping (an anterior
    and a posterior annulus fifth, three central fifths of nucleus), applied in 3D.
    ``eroded`` is ``erode_in_plane(mask)``.
    """
    out = np.zeros_like(mask)
    slices = np.flatnonzero(mask.any(axis=(0, 1)))
    if slices.size == 0:
        return out
    lr_mm = (slices - 0.5 * (slices[0] + slices[-1])) * voxel_mm[2]
    half_width = 0.5 * NUCLEUS_LR * (slices.size * voxel_mm[2])
    margin = 0.5 * (1.0 - NUCLEUS_AP)
    for z, x in zip(slices, lr_mm, strict=True):
        if abs(x) > half_width:
            continue
        ij = np.argwhere(mask[:, :, z])
        u, _ = axes.project(ij * voxel_mm[:2])
        lo, hi = u.min(), u.max()
        inner = (u >= lo + margin * (hi - lo)) & (u <= hi - margin * (hi - lo))
        sel = ij[inner]
        plane = np.zeros(mask.shape[:2], bool)
        plane[sel[:, 0], sel[:, 1]] = True
        out[:, :, z] = plane & eroded[:, :, z]
    return out


def _near(shape, ij: NDArray, pixel_mm: NDArray, reach_mm: float) -> tuple[NDArray, NDArray]:
    """The pixels ``(n, 2)`` within ``reach_mm`` of the disc's bounding box (along each image
    axis) and their flat indices into the plane: every box around a disc lies inside it, so
    only these need projecting onto the disc's axes."""
    pad = np.ceil(reach_mm / np.asarray(pixel_mm, dtype=float)).astype(int)
    lo = np.maximum(ij.min(axis=0) - pad, 0)
    hi = np.minimum(ij.max(axis=0) + pad + 1, shape)
    grid = np.stack(np.meshgrid(np.arange(lo[0], hi[0]), np.arange(lo[1], hi[1]),
                                indexing="ij"), axis=-1).reshape(-1, 2)  # fmt: skip
    return grid, np.ravel_multi_index((grid[:, 0], grid[:, 1]), shape)


def csf_signal(
    t2w_plane: NDArray,
    t2_plane: NDArray | None,
    disc_plane: NDArray[np.bool_],
    any_disc_plane: NDArray[np.bool_],
    axes: DiscAxes,
    pixel_mm: NDArray,
    half_height_mm: float,
) -> tuple[float, int]:
    """Median T2-weighted signal of the CSF in the canal just behind a disc, and its voxels.

    The search box runs from 1 to ``CSF_REACH_MM`` mm behind the disc's posterior margin, along
    the disc's axis, and ``half_height_mm + 3`` mm to either side of it. Fluid is the voxels with
    T2 >= ``CSF_T2_MS`` when a T2 map is given (and has at least 5 such voxels), otherwise the
    brightest ``CSF_TOP_FRACTION`` of the box. Returns ``(nan, 0)`` when the box is empty.
    """
    ij = np.argwhere(disc_plane)
    if ij.size == 0:
        return float("nan"), 0
    u_disc, _ = axes.project(ij * pixel_mm)
    back = u_disc.min()
    reach = float(u_disc.max() - back) + CSF_REACH_MM + half_height_mm + 3.0
    grid, flat = _near(disc_plane.shape, ij, pixel_mm, reach)
    u, w = axes.project(grid * pixel_mm)
    box = (u <= back - 1.0) & (u >= back - CSF_REACH_MM) & (np.abs(w) <= half_height_mm + 3.0)
    box &= ~any_disc_plane.ravel()[flat]
    signal = t2w_plane.ravel()[flat][box]
    if signal.size == 0:
        return float("nan"), 0
    if t2_plane is not None:
        fluid = t2_plane.ravel()[flat][box] >= CSF_T2_MS
        if fluid.sum() >= 5:
            return float(np.median(signal[fluid])), int(fluid.sum())
    n = max(3, round(CSF_TOP_FRACTION * signal.size))
    top = np.sort(signal)[-n:]
    return float(np.median(top)), int(top.size)


def vertebra_signal(
    t2w_plane: NDArray,
    disc_plane: NDArray[np.bool_],
    any_disc_plane: NDArray[np.bool_],
    axes: DiscAxes,
    pixel_mm: NDArray,
    half_height_mm: float,
) -> tuple[float, int]:
    """Signal of the vertebral bodies above and below a disc (marrow), and its voxels.

    In the disc's own axes, a box over the central ``VERTEBRA_AP`` of the disc's length that
    starts ``VERTEBRA_GAP_MM`` beyond ``half_height_mm`` (past the endplate) and reaches
    ``VERTEBRA_DEPTH_MM`` into the body, on each side; voxels of any disc are left out. The
    result is the mean of the two sides' medians (one side when the other is outside the
    image), so a disc is compared with both its neighbours equally. ``(nan, 0)`` without one.
    """
    ij = np.argwhere(disc_plane)
    if ij.size == 0:
        return float("nan"), 0
    u_disc, _ = axes.project(ij * pixel_mm)
    reach = 0.5 * VERTEBRA_AP * float(u_disc.max() - u_disc.min())
    start = half_height_mm + VERTEBRA_GAP_MM
    grid, flat = _near(disc_plane.shape, ij, pixel_mm, float(np.ptp(u_disc)) + start + 9.0)
    u, w = axes.project(grid * pixel_mm)
    near = (np.abs(u) <= reach) & ~any_disc_plane.ravel()[flat]
    medians, n = [], 0
    for side in (-1.0, 1.0):
        depth = side * w
        box = near & (depth >= start) & (depth <= start + VERTEBRA_DEPTH_MM)
        if box.sum() >= 5:
            values = t2w_plane.ravel()[flat][box]
            medians.append(float(np.median(values)))
            n += int(values.size)
    if not medians:
        return float("nan"), 0
    return float(np.mean(medians)), n
