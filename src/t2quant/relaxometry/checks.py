"""Validation of echo times and signal arrays before fitting.

Every error says what is wrong and how to fix it; callers that read files prefix the file name.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["check_echo_spacing", "check_signal", "check_te_ms"]

#: Largest echo time accepted as milliseconds; longer trains are almost surely microseconds.
MAX_TE_MS = 5000.0


def check_te_ms(te_ms: ArrayLike, *, n_echoes: int | None = None) -> NDArray[np.float64]:
    """Return echo times as a float64 vector after checking count, order and unit.

    Parameters
    ----------
    te_ms : array_like, (n_echoes,)
        Echo times in milliseconds.
    n_echoes : int, optional
        Number of echoes in the signal, which must match.

    Raises
    ------
    ValueError
        Fewer than two echoes, a count that differs from the signal, non-finite, repeated or
        decreasing values, or values that look like seconds (all < 1) or microseconds
        (> 5000).
    """
    te = np.asarray(te_ms, dtype=np.float64)
    if te.ndim != 1:
        raise ValueError(f"echo times must be a 1-D list; got shape {te.shape}")
    if n_echoes is not None and te.size != n_echoes:
        raise ValueError(
            f"{te.size} echo times given for a signal with {n_echoes} echoes; "
            "give one echo time per echo"
        )
    if te.size < 2:
        raise ValueError(
            f"T2 needs at least two echoes; got {te.size}. Pass all echoes of the train"
        )
    if not np.all(np.isfinite(te)) or np.any(te <= 0):
        raise ValueError(f"echo times must be finite and > 0 ms; got {_fmt(te)}")
    steps = np.diff(te)
    if np.any(steps <= 0):
        k = int(np.flatnonzero(steps <= 0)[0])
        kind = "repeated" if steps[k] == 0 else "decreasing"
        raise ValueError(
            f"echo times must increase strictly; echo {k + 2} ({te[k + 1]:g} ms) is {kind} "
            f"after echo {k + 1} ({te[k]:g} ms) in {_fmt(te)}. Sort the echoes or fix the "
            "metadata"
        )
    if te.max() < 1.0:
        raise ValueError(
            f"echo times {_fmt(te)} look like seconds (all < 1); t2quant expects milliseconds: "
            "multiply by 1000"
        )
    if te.max() > MAX_TE_MS:
        raise ValueError(
            f"echo times {_fmt(te)} look like microseconds (> {MAX_TE_MS:g} ms); t2quant "
            "expects milliseconds: divide by 1000"
        )
    return te


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
        raise ValueError(
            f"the EPG model needs echoes at n * spacing (TE_n = n * TE_1); got {_fmt(te_ms)}. "
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
        raise ValueError(f"signal must be real numbers; got dtype {arr.dtype}")
    if arr.ndim < 1 or arr.shape[-1] < 1:
        raise ValueError(f"signal must have echoes on its last axis; got shape {arr.shape}")
    return arr


def _fmt(te: NDArray[np.float64]) -> str:
    return "[" + ", ".join(f"{v:g}" for v in te) + "] ms"
