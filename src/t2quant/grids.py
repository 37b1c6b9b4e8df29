"""One check that two images share a voxel grid (shape and affine), used wherever a mask, a
map or a second image must line up with the image it belongs to."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from t2quant.errors import InputError

__all__ = ["AFFINE_ATOL_MM", "require_same_grid", "same_grid"]

AFFINE_ATOL_MM = 1e-3
"""Affines that differ by less than this (mm, or mm per voxel) are the same grid."""


def same_grid(shape: tuple, affine: ArrayLike, ref_shape: tuple, ref_affine: ArrayLike) -> bool:
    """Whether ``shape``/``affine`` is the grid ``ref_shape``/``ref_affine`` (first 3 axes)."""
    return tuple(shape[:3]) == tuple(ref_shape[:3]) and bool(
        np.allclose(np.asarray(affine), np.asarray(ref_affine), atol=AFFINE_ATOL_MM)
    )


def require_same_grid(
    name: str, shape: tuple, affine: ArrayLike | None, ref_shape: tuple,
    ref_affine: ArrayLike | None, what: str,
) -> None:  # fmt: skip
    """Raise :class:`~t2quant.errors.InputError` naming ``name`` when its grid is not the
    reference's; an affine of ``None`` (unknown) is not compared."""
    if tuple(shape[:3]) != tuple(ref_shape[:3]):
        raise InputError(
            f"{name}: the {what} (shape {tuple(shape[:3])}) does not match the image grid "
            f"{tuple(ref_shape[:3])}; resample it onto the image first"
        )
    if affine is not None and ref_affine is not None:
        if not np.allclose(np.asarray(affine), np.asarray(ref_affine), atol=AFFINE_ATOL_MM):
            raise InputError(
                f"{name}: the {what}'s affine differs from the image's, so the two are not on "
                "the same grid; resample it onto the image first"
            )
