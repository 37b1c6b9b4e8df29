"""The spinal column's frame on a sagittal image: the canal, a curve along it, and the
column straightened along that curve.

The canal's cerebrospinal fluid is the brightest long structure of a T2-weighted sagittal
image. Its anterior wall, smoothed, is a curve that follows the column; stepping anteriorly
along the curve's normal crosses the posterior longitudinal ligament, then the vertebral
bodies and discs. Sampling the image on that grid gives a straightened column in which each
disc is a band across the rows.

Coordinates: 2D arrays are ``(AP, SI)`` in voxels of the canonical frame (anterior to
posterior, superior to inferior); ``s`` is arc length along the curve in mm, increasing
inferiorly; ``d`` is depth anterior to the canal wall in mm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

__all__ = ["Column", "find_column", "mid_sagittal"]

STEP_MM = 0.5  # sampling step of the straightened column
DEPTH_MM = (-20.0, 60.0)  # depth range sampled (negative: into the canal)
EXTEND_MM = 45.0  # the curve runs on past the canal's ends by this much


@dataclass(frozen=True)
class Column:
    """A curve along the anterior canal wall, in voxel coordinates of one sagittal plane."""

    points: NDArray[np.float64]  # (n, 2) AP, SI voxel coordinates, every STEP_MM
    normals: NDArray[np.float64]  # (n, 2) unit vectors pointing anterior, in voxels per mm
    s_mm: NDArray[np.float64]  # (n,) arc length
    canal_range_mm: tuple[float, float]  # arc length where the canal was seen
    voxel_mm: NDArray[np.float64]  # (2,) AP, SI voxel size

    @property
    def d_mm(self) -> NDArray[np.float64]:
        return np.arange(DEPTH_MM[0], DEPTH_MM[1] + 1e-9, STEP_MM)

    def _grid(self) -> NDArray[np.float64]:
        return self.points[:, None, :] + self.d_mm[None, :, None] * self.normals[:, None, :]

    def straighten(self, plane: NDArray, order: int = 1) -> NDArray[np.float32]:
        """Sample ``plane`` ``(AP, SI)`` on the (s, d) grid: an ``(n_s, n_d)`` image."""
        coords = self._grid()
        values = ndi.map_coordinates(
            plane, [coords[..., 0], coords[..., 1]], order=order, mode="nearest"
        )
        return values.astype(np.float32)

    def inside(self, shape: tuple[int, int]) -> NDArray[np.bool_]:
        """Which (s, d) samples fall inside an ``(AP, SI)`` plane of this shape."""
        coords = self._grid()
        return (
            (coords[..., 0] >= 0)
            & (coords[..., 0] <= shape[0] - 1)
            & (coords[..., 1] >= 0)
            & (coords[..., 1] <= shape[1] - 1)
        )

    def coordinates(self, shape: tuple[int, int]) -> tuple[NDArray, NDArray]:
        """Arc length and depth (mm) of every pixel of an ``(AP, SI)`` plane.

        Each pixel takes the nearest curve point; its depth is the distance along that
        point's normal (positive anterior).
        """
        grid = np.stack(np.meshgrid(*(np.arange(n) for n in shape), indexing="ij"), axis=-1)
        mm = grid.reshape(-1, 2) * self.voxel_mm
        tree = cKDTree(self.points * self.voxel_mm)
        _, nearest = tree.query(mm)
        offset = mm - self.points[nearest] * self.voxel_mm
        normal_mm = self.normals[nearest] * self.voxel_mm
        normal_mm /= np.linalg.norm(normal_mm, axis=1, keepdims=True)
        depth = (offset * normal_mm).sum(axis=1)
        return self.s_mm[nearest].reshape(shape), depth.reshape(shape)


def mid_sagittal(volume: NDArray, voxel_mm: NDArray, *, half_width_mm: float = 4.0) -> NDArray:
    """Mean of the sagittal slices within ``half_width_mm`` of the slab centre, ``(AP, SI)``."""
    centre = volume.shape[2] // 2
    half = max(0, round(half_width_mm / voxel_mm[2]))
    return volume[:, :, max(0, centre - half) : centre + half + 1].mean(axis=2)


def find_column(plane: NDArray, voxel_mm: NDArray) -> Column | None:
    """The column curve on an ``(AP, SI)`` sagittal plane, or None without a visible canal."""
    vox = np.asarray(voxel_mm[:2], dtype=np.float64)
    smooth = ndi.gaussian_filter(plane.astype(np.float64), 1.0 / vox)
    canal = _canal_mask(smooth, vox)
    if canal is None:
        return None
    rows = np.flatnonzero(canal.any(axis=0))
    anterior = np.array([np.flatnonzero(canal[:, r])[0] for r in rows], dtype=np.float64)
    anterior = ndi.median_filter(anterior, size=max(3, round(9.0 / vox[1])) | 1)
    anterior = ndi.gaussian_filter1d(anterior, 6.0 / vox[1], mode="nearest")
    return _curve(rows.astype(np.float64), anterior, vox)


def _canal_mask(smooth: NDArray, vox: NDArray) -> NDArray[np.bool_] | None:
    """The longest bright, tube-shaped component: the thecal sac and its CSF."""
    best, best_len = None, 0.0
    for q in (94.0, 90.0, 97.0):
        labels, _n = ndi.label(smooth > np.percentile(smooth, q))
        for k, sl in enumerate(ndi.find_objects(labels), start=1):
            length = (sl[1].stop - sl[1].start) * vox[1]
            area = float((labels[sl] == k).sum()) * vox[0] * vox[1]
            if 3.0 <= area / max(length, 1e-9) <= 30.0 and length > best_len:
                best, best_len = labels == k, length
        if best_len >= 0.4 * smooth.shape[1] * vox[1]:
            break
    return best if best_len >= 60.0 else None


def _curve(rows: NDArray, anterior: NDArray, vox: NDArray) -> Column:
    """Resample the wall (AP per SI row) every STEP_MM of arc length, extended at both ends."""
    mm = np.stack([anterior * vox[0], rows * vox[1]], axis=1)
    seg = np.linalg.norm(np.diff(mm, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    fine = np.arange(0.0, s[-1], STEP_MM)
    pts = np.stack([np.interp(fine, s, mm[:, 0]), np.interp(fine, s, mm[:, 1])], axis=1)
    k = min(len(pts) - 1, int(20.0 / STEP_MM))
    head_dir = pts[0] - pts[k]
    tail_dir = pts[-1] - pts[-1 - k]
    steps = np.arange(1, int(EXTEND_MM / STEP_MM) + 1)[:, None] * STEP_MM
    head = pts[0] + steps[::-1] * head_dir / np.linalg.norm(head_dir)
    tail = pts[-1] + steps * tail_dir / np.linalg.norm(tail_dir)
    pts = np.concatenate([head, pts, tail])
    s_mm = np.arange(len(pts)) * STEP_MM
    tangent = np.gradient(pts, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)  # rotate; make it point anterior
    normal[normal[:, 0] > 0] *= -1
    canal_range = (float(len(head) * STEP_MM), float((len(head) + len(fine)) * STEP_MM))
    return Column(pts / vox, normal / vox, s_mm, canal_range, vox)
