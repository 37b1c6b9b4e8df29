"""Small array helpers that keep the hot loops fast.

Reductions over the short echo axis of a ``(N, n)`` array are slow as NumPy reductions
(an inner loop of ``n`` per row) but fast as a matrix-vector product; float64 ``exp`` has
no SIMD kernel in common NumPy builds and is ~20x slower than float32 ``exp``. Fresh
temporaries larger than glibc's mmap threshold (128 KiB) are mapped and unmapped on every
call, paying a page fault per 4 KiB; :class:`Scratch` keeps the big ones for reuse.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def rowsum(x: NDArray) -> NDArray:
    """Sum over the last axis of a 2-D array, as a BLAS matrix-vector product."""
    if x.dtype == np.bool_:
        x = x.astype(np.float32)
    return x @ np.ones(x.shape[-1], dtype=x.dtype)


def rowdot(x: NDArray, y: NDArray) -> NDArray:
    """Row-wise dot products of two ``(N, n)`` arrays."""
    return rowsum(x * y)


def exp_f32(x: NDArray) -> NDArray:
    """``exp`` evaluated in float32 (relative error ~1e-7), returned in ``x``'s dtype."""
    if x.dtype == np.float32:
        return np.exp(x)
    return np.exp(x.astype(np.float32)).astype(x.dtype)


def parabola_shift(lo: NDArray, mid: NDArray, hi: NDArray) -> NDArray:
    """Offset of a parabola's peak through three equally spaced samples, in grid steps,
    clipped to [-1, 1]; 0 where the samples do not bend downwards."""
    curvature = lo - 2.0 * mid + hi
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(curvature < 0, 0.5 * (lo - hi) / curvature, 0.0)
    return np.clip(np.nan_to_num(shift), -1.0, 1.0)


class Scratch:
    """Reusable work arrays for one thread, keyed by name.

    ``take(name, shape, dtype)`` returns an uninitialised array of that shape, reusing the
    memory of an earlier call with the same name when it is large enough (a view of its
    first rows). Not thread-safe: give each thread its own.
    """

    def __init__(self) -> None:
        self._arrays: dict[str, NDArray] = {}

    def take(self, name: str, shape: tuple[int, ...], dtype: np.dtype | type) -> NDArray:
        held = self._arrays.get(name)
        if (
            held is None
            or held.dtype != np.dtype(dtype)
            or held.shape[1:] != tuple(shape[1:])
            or held.shape[0] < shape[0]
        ):
            held = self._arrays[name] = np.empty(shape, dtype=dtype)
        return held[: shape[0]]


def echo_major(y: NDArray, scratch: Scratch) -> NDArray:
    """``y.T`` (``(n, N)`` for ``(N, n)`` input) with each echo's samples contiguous: a view
    when ``y`` is already echo-major in memory (a Fortran-ordered image), else a copy into
    ``scratch``. Sums over echoes run several times faster on this layout."""
    yt = y.T
    if yt.strides[1] == yt.itemsize:
        return yt
    out = scratch.take("y_t", yt.shape, y.dtype)
    np.copyto(out, yt)
    return out
