"""Units at the boundary: echo times are milliseconds everywhere in t2quant.

BIDS stores ``EchoTime`` (and ``T2map`` values) in seconds; the trial reports ms; mixing the
two is the most common error reported against decay-fitting tools. :func:`check_te_ms` is the
one guard every reader and the fit share.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from t2quant.errors import InputError

__all__ = ["MAX_TE_MS", "check_te_ms", "format_ms"]

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
        raise InputError(f"echo times must be a 1-D list; got shape {te.shape}")
    if n_echoes is not None and te.size != n_echoes:
        raise InputError(
            f"{te.size} echo times given for a signal with {n_echoes} echoes; "
            "give one echo time per echo"
        )
    if te.size < 2:
        raise InputError(
            f"T2 needs at least two echoes; got {te.size}. Pass all echoes of the train"
        )
    if not np.all(np.isfinite(te)) or np.any(te <= 0):
        raise InputError(f"echo times must be finite and > 0 ms; got {format_ms(te)}")
    steps = np.diff(te)
    if np.any(steps <= 0):
        k = int(np.flatnonzero(steps <= 0)[0])
        kind = "repeated" if steps[k] == 0 else "decreasing"
        raise InputError(
            f"echo times must increase strictly; echo {k + 2} ({te[k + 1]:g} ms) is {kind} "
            f"after echo {k + 1} ({te[k]:g} ms) in {format_ms(te)}. Sort the echoes or fix the "
            "metadata"
        )
    if te.max() < 1.0:
        raise InputError(
            f"echo times {format_ms(te)} look like seconds (all < 1); t2quant expects "
            "milliseconds: multiply by 1000"
        )
    if te.max() > MAX_TE_MS:
        raise InputError(
            f"echo times {format_ms(te)} look like microseconds (> {MAX_TE_MS:g} ms); t2quant "
            "expects milliseconds: divide by 1000"
        )
    return te


def format_ms(te: NDArray[np.float64]) -> str:
    return "[" + ", ".join(f"{v:g}" for v in te) + "] ms"
