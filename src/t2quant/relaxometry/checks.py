"""Validation of echo times and signal arrays before fitting.

Every error says what is wrong and how to fix it; callers that read files prefix the file name.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from t2quant.errors import InputError
from t2quant.units import check_te_ms, format_ms

__all__ = ["check_echo_spacing", "check_signal", "check_te_ms"]


def check_echo_spacing(te_ms: NDArray[np.float64], *, rtol: float = 0.01) -> float:
    """Return the echo spacing of a CPMG train whose echoes sit at ``n * esp``.

    Raises
    ------
    ValueError
        If the echo times are not ``esp, 2*esp, 3*esp, ...`` within ``rtol``.
    """
    esp = float(te_ms[0])
    expected = esp * np.arange(1, te_ms.size + 1)
    if not np.allclose(te_ms, expected, rtol=rtol, atol=0.0):
        raise InputError(
            f"the EPG model needs echoes at n * spacing (TE_n = n * TE_1); got {format_ms(te_ms)}. "
            "Pass the whole echo train from the first echo (use skip_first_echo to leave "
            "the first echo out of the fit)"
        )
    return esp


def check_signal(signal: ArrayLike) -> NDArray:
    """Return the signal as a floating array (echoes last); integers become float32."""
    arr = np.asarray(signal)
    if arr.dtype.kind in "biu":
        arr = arr.astype(np.float32)
    elif arr.dtype.kind != "f":
        raise InputError(f"signal must be real numbers; got dtype {arr.dtype}")
    if arr.ndim < 1 or arr.shape[-1] < 1:
        raise InputError(f"signal must have echoes on its last axis; got shape {arr.shape}")
    return arr
