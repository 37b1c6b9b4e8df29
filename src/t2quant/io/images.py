"""Validating readers of NIfTI images and label masks.

:func:`read_image` refuses what cannot be an image (a file nibabel cannot read, complex or
boolean data, a zero-sized axis, an affine that is not finite or not invertible) and reports
what must not be used silently: the number and bounding box of voxels that are NaN, infinite
or (in a magnitude image) negative. Values beyond float32's range are refused for data whose
scale matters and rescaled, with a note, where only contrast matters (a T2-weighted image).

:func:`read_label_mask` reads a disc mask: whole, non-negative, finite label values only;
a float mask with fractional values (0.3, 1.3, ...) is refused, never truncated.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
from numpy.typing import NDArray

from t2quant.errors import InputError, MissingInputError

__all__ = ["Image", "invalid_voxels", "read_image", "read_label_mask"]

FLOAT32_MAX = float(np.finfo(np.float32).max)
MAX_LABEL = 10_000


@dataclass(frozen=True)
class Image:
    """An image as read: float32 data, its affine, and what was found wrong with it.

    ``invalid`` marks voxels that are not finite or, for a magnitude image, negative;
    ``notes`` says what was done about anything unusual (in words, for flags and logs).
    """

    data: NDArray[np.float32]
    affine: NDArray[np.float64]
    path: Path
    invalid: NDArray[np.bool_]
    notes: tuple[str, ...] = field(default=())

    @property
    def invalid_fraction(self) -> float:
        """Share of voxels that are invalid (0..1)."""
        return float(self.invalid.mean()) if self.invalid.size else 0.0


def _load(path: Path, what: str):
    if not path.is_file():
        raise MissingInputError(f"{path}: no such {what}")
    try:
        img = nib.load(str(path))
        dtype = img.get_data_dtype()
    except Exception as exc:  # nibabel raises many types for damaged files
        raise InputError(
            f"{path}: cannot read the {what} as NIfTI ({type(exc).__name__}: {exc}); the file "
            "may be truncated or not a NIfTI image. Re-export or re-copy it"
        ) from None
    if dtype.kind in "cbOSUV":
        raise InputError(f"{path}: the {what} holds {dtype} data; real numbers are needed")
    if any(int(n) == 0 for n in img.shape):
        raise InputError(f"{path}: the {what} has an empty axis (shape {img.shape})")
    affine = np.asarray(img.affine, dtype=np.float64)
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise InputError(
            f"{path}: the {what}'s affine is not finite or not invertible; fix the header "
            "(for example re-export it, or pass --orientation where the command has it)"
        )
    return img, affine


def _array(img, path: Path, what: str) -> NDArray[np.float64]:
    try:
        return np.asarray(img.get_fdata(dtype=np.float64))
    except Exception as exc:
        raise InputError(
            f"{path}: cannot read the {what}'s voxels ({type(exc).__name__}: {exc}); the file "
            "may be truncated. Re-export or re-copy it"
        ) from None


def invalid_voxels(data: NDArray, *, magnitude: bool = True) -> NDArray[np.bool_]:
    """Voxels that are not finite, or negative in a magnitude image."""
    bad = ~np.isfinite(data)
    if magnitude:
        with np.errstate(invalid="ignore"):
            bad |= data < 0
    return bad


def describe_invalid(invalid: NDArray[np.bool_]) -> str:
    """``"1200 voxels (3.1%), array index ranges [40:60, 50:90, 0:5]"``."""
    n = int(invalid.sum())
    where = np.nonzero(invalid)
    box = ", ".join(f"{int(a.min())}:{int(a.max()) + 1}" for a in where)
    return f"{n} voxels ({100 * n / invalid.size:.2g}%), array index ranges [{box}]"


def read_image(
    path: str | os.PathLike,
    *,
    what: str = "image",
    ndims: tuple[int, ...] = (3,),
    magnitude: bool = True,
    rescale: bool = False,
) -> Image:
    """Read and check one NIfTI image.

    ``ndims``: the dimensionalities accepted (a trailing axis of length 1 is dropped first).
    ``magnitude``: negative values are invalid. ``rescale``: values beyond float32's range
    are divided down to it (only contrast matters); without it they are refused.

    Invalid voxels are returned as they are, marked in :attr:`Image.invalid`; the caller
    decides whether to mask them (with a flag) or refuse the image.
    """
    path = Path(path)
    img, affine = _load(path, what)
    data = _array(img, path, what)
    while data.ndim > min(ndims) and data.shape[-1] == 1 and data.ndim not in ndims:
        data = data[..., 0]
    if data.ndim not in ndims:
        wanted = " or ".join(f"{n}D" for n in ndims)
        raise InputError(f"{path}: the {what} must be {wanted}; got shape {data.shape}")
    invalid = invalid_voxels(data, magnitude=magnitude)
    notes: list[str] = []
    if invalid.any():
        notes.append(f"invalid (NaN, infinite or negative) values: {describe_invalid(invalid)}")
    data, note = _into_float32(data, invalid, path, what, rescale)
    if note:
        notes.append(note)
    return Image(data, affine, path, invalid, tuple(notes))


def _into_float32(data, invalid, path: Path, what: str, rescale: bool):
    valid = data[~invalid]
    peak = float(np.abs(valid).max()) if valid.size else 0.0
    if peak <= FLOAT32_MAX / 16:
        return data.astype(np.float32), ""
    if not rescale:
        raise InputError(
            f"{path}: the {what} holds values up to {peak:.3g}, beyond single precision; "
            "rescale it (the unit of a signal is arbitrary)"
        )
    factor = peak / 1e6
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = (data / factor).astype(np.float32)
    return scaled, f"values up to {peak:.3g} were divided by {factor:.3g} (contrast kept)"


def read_label_mask(
    path: str | os.PathLike, *, what: str = "label mask"
) -> tuple[NDArray[np.int32], NDArray[np.float64]]:
    """A label mask's integer labels and affine.

    Raises
    ------
    InputError
        For non-finite, negative, fractional or implausibly large (> 10,000) label values.
    """
    path = Path(path)
    img, affine = _load(path, what)
    data = _array(img, path, what)
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim not in (2, 3):
        raise InputError(f"{path}: the {what} must be 3D (or one 2D slice); got {data.shape}")
    if not np.all(np.isfinite(data)):
        raise InputError(f"{path}: the {what} has NaN or infinite values; labels are whole numbers")
    fractional = data != np.round(data)
    if fractional.any():
        example = float(data[fractional].flat[0])
        raise InputError(
            f"{path}: the {what} has fractional values (e.g. {example:g}, in "
            f"{int(fractional.sum())} voxels); labels must be whole numbers. Was it resampled "
            "with interpolation? Resample masks with nearest neighbour"
        )
    if data.min() < 0 or data.max() > MAX_LABEL:
        raise InputError(
            f"{path}: the {what}'s labels run from {data.min():g} to {data.max():g}; they must "
            f"be whole numbers from 0 (background) to at most {MAX_LABEL}"
        )
    return data.astype(np.int32), affine
