"""The result of a T2 fit and the documented failure codes."""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import IntEnum

import numpy as np
from numpy.typing import NDArray

__all__ = ["FAILURE_DESCRIPTIONS", "Failure", "T2Fit"]


class Failure(IntEnum):
    """Why a voxel has no T2. Stored as ``uint8`` in :attr:`T2Fit.failure`.

    ``OK`` and ``NOT_FITTED`` are not failures (``failed`` is False); every other code sets
    ``failed`` and leaves ``t2_ms`` NaN.
    """

    OK = 0
    NOT_FITTED = 1
    NONFINITE_INPUT = 2
    NEGATIVE_INPUT = 3
    NO_SIGNAL = 4
    TOO_FEW_ECHOES = 5
    NOT_DECAYING = 6
    T2_TOO_LONG = 7
    T2_TOO_SHORT = 8
    B1_OUT_OF_RANGE = 9
    NOT_CONVERGED = 10


FAILURE_DESCRIPTIONS: dict[Failure, str] = {
    Failure.OK: "fitted",
    Failure.NOT_FITTED: "outside the mask; not fitted",
    Failure.NONFINITE_INPUT: "a sample is NaN or infinite",
    Failure.NEGATIVE_INPUT: "a sample is negative (magnitude data cannot be)",
    Failure.NO_SIGNAL: "all samples are zero or below the noise floor",
    Failure.TOO_FEW_ECHOES: "fewer usable echoes than free parameters + 1",
    Failure.NOT_DECAYING: "the signal does not decay (constant or rising)",
    Failure.T2_TOO_LONG: "T2 exceeds t2_max_ms: too long to measure with this echo train",
    Failure.T2_TOO_SHORT: "T2 below t2_min_ms: the signal is gone before the first echoes",
    Failure.B1_OUT_OF_RANGE: "the fitted refocusing fraction left the allowed B1 range",
    Failure.NOT_CONVERGED: "the optimiser did not converge or returned non-finite values",
}


@dataclass(frozen=True)
class T2Fit:
    """Per-voxel maps of a multi-echo T2 fit; every array has the spatial shape ``S``.

    Attributes
    ----------
    t2_ms : (*S,) float32
        T2 in ms; NaN where not fitted or failed.
    s0 : (*S,) float32
        Extrapolated signal at TE = 0 (for ``epg``: the amplitude of the EPG curve, whose
        echoes are ``s0 * epg(TE)``), in the units of the input.
    offset : (*S,) float32
        Constant offset (``monoexp_offset``); 0 for the other methods, NaN where failed.
    b1 : (*S,) float32
        Refocusing angle as a fraction of 180 degrees; fitted by ``epg`` (folded into
        ``(0, 1]``), the given map when B1 is fixed, and NaN for the mono-exponential methods.
    r2 : (*S,) float32
        Coefficient of determination of the fitted curve against the samples.
    rmse : (*S,) float32
        Root-mean-square residual over the echoes used, in the units of the input.
    t2_se_ms : (*S,) float32
        Standard error of T2 in ms from the Jacobian at the solution,
        ``sqrt(s^2 * [(J^T J)^-1]_T2)`` with ``s^2 = RSS / (n_used - n_params)``; NaN when
        there are no residual degrees of freedom.
    failed : (*S,) bool
        True where a fit was attempted and failed.
    failure : (*S,) uint8
        A :class:`Failure` code per voxel.
    method : str
        Fitting method.
    """

    t2_ms: NDArray[np.float32]
    s0: NDArray[np.float32]
    offset: NDArray[np.float32]
    b1: NDArray[np.float32]
    r2: NDArray[np.float32]
    rmse: NDArray[np.float32]
    t2_se_ms: NDArray[np.float32]
    failed: NDArray[np.bool_]
    failure: NDArray[np.uint8]
    method: str

    @property
    def shape(self) -> tuple[int, ...]:
        return self.t2_ms.shape

    def maps(self) -> dict[str, np.ndarray]:
        """All array attributes by name."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "method"}

    def failure_counts(self) -> dict[str, int]:
        """Number of voxels per failure code name (codes that occur only)."""
        codes, counts = np.unique(self.failure, return_counts=True)
        return {Failure(int(c)).name.lower(): int(n) for c, n in zip(codes, counts, strict=True)}
