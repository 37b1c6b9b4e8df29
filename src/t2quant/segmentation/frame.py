"""The internal image frame of the segmenter, and the checks on what comes in.

Segmentation works on a canonical sagittal frame, ``PIR``: array axis 0 runs anterior to
posterior, axis 1 superior to inferior, axis 2 left to right (nibabel axis codes name the
direction each axis points toward as its index grows). The input (a volume, or one sagittal
slice) is only permuted and flipped into it, never resampled, so labels go back to the input
grid exactly.

The orientation comes from the affine, or from ``orientation`` (axis codes such as ``"IPR"``)
when the affine is known to be wrong, as in files that stored no orientation.
"""

from __future__ import annotations

from dataclasses import dataclass

import nibabel.orientations as nio
import numpy as np
from numpy.typing import NDArray

from t2quant.errors import InputError

__all__ = ["CANONICAL", "Frame", "to_canonical"]

CANONICAL = ("P", "I", "R")


@dataclass(frozen=True)
class Frame:
    """An image in the canonical ``PIR`` frame and the way back to its input grid."""

    data: NDArray[np.float32]  # (AP, SI, LR)
    voxel_mm: NDArray[np.float64]  # (3,) voxel size along the canonical axes
    input_codes: tuple[str, str, str]
    transform: NDArray  # nibabel orientation transform, input -> canonical

    def back(self, labels: NDArray) -> NDArray:
        """A canonical-frame array in the input grid (axes permuted and flipped back)."""
        inverse = nio.ornt_transform(
            nio.axcodes2ornt(CANONICAL), nio.axcodes2ornt(self.input_codes)
        )
        return np.ascontiguousarray(nio.apply_orientation(labels, inverse))


def parse_axcodes(codes: str) -> tuple[str, str, str]:
    """``"IPR"`` -> ``("I", "P", "R")``, checked: three letters, one per body axis."""
    letters = tuple(codes.strip().upper())
    pairs = ({"L", "R"}, {"A", "P"}, {"S", "I"})
    if len(letters) != 3 or not all(sum(c in p for c in letters) == 1 for p in pairs):
        raise InputError(
            f"orientation {codes!r} must be three nibabel axis codes, one of L/R, one of A/P and "
            "one of S/I, naming where each array axis points as its index grows (e.g. 'IPR')"
        )
    return letters  # type: ignore[return-value]


def to_canonical(
    image: NDArray, affine: NDArray, *, orientation: str | None = None, name: str = "image"
) -> Frame:
    """Check a sagittal image and permute/flip it into the canonical ``PIR`` frame.

    ``image`` is 3D ``(X, Y, Z)``, 4D with one volume, or 2D (one slice, taken as
    ``(X, Y, 1)``); a one-slice image keeps a left-right axis of length 1.

    Raises
    ------
    ValueError
        For an image that is neither 3D nor one slice, an empty or constant image, or a slab
        that is not sagittal (naming ``name``).
    """
    data = np.asarray(image)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim == 2:  # one slice: the affine's third column is the slice direction
        data = data[:, :, None]
    if data.ndim != 3 or sorted(data.shape)[1] < 2:
        raise InputError(
            f"{name}: need a sagittal image (a 3D volume or one 2D slice), got an array of "
            f"shape {np.shape(image)}"
        )
    data = data.astype(np.float32)
    finite = np.isfinite(data)
    if not finite.any() or np.ptp(data[finite]) == 0:
        raise InputError(f"{name}: the image is empty or constant; there is nothing to segment")
    data = np.where(finite, data, 0.0).astype(np.float32)
    affine = np.asarray(affine, dtype=np.float64)
    codes = parse_axcodes(orientation) if orientation else nio.aff2axcodes(affine)
    if None in codes:
        raise InputError(f"{name}: the affine does not define an orientation; pass orientation=")
    zooms = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    ornt = nio.ornt_transform(nio.axcodes2ornt(codes), nio.axcodes2ornt(CANONICAL))
    canonical = np.ascontiguousarray(nio.apply_orientation(data, ornt))
    voxel = np.empty(3)
    voxel[ornt[:, 0].astype(int)] = zooms
    _check_sagittal(canonical.shape, voxel, name)
    return Frame(canonical, voxel, tuple(codes), ornt)  # type: ignore[arg-type]


def _check_sagittal(shape: tuple[int, ...], voxel_mm: NDArray, name: str) -> None:
    """A sagittal slab is thinnest, in mm, from left to right."""
    extent = np.asarray(shape) * voxel_mm
    thinnest = int(np.argmin(extent))
    if thinnest != 2:
        plane = {0: "coronal", 1: "axial"}[thinnest]
        raise InputError(
            f"{name}: this looks like a {plane} slab (extent {extent[0]:.0f} mm anterior-"
            f"posterior, {extent[1]:.0f} mm superior-inferior, {extent[2]:.0f} mm left-right); "
            "disc segmentation needs a sagittal slab. If the file's orientation is wrong, "
            "state it with --orientation (e.g. IPR)"
        )
