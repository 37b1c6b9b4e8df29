"""Vectorised multi-echo T2 relaxometry.

:func:`fit_t2` fits every voxel at once with one of :data:`METHODS` and returns a
:class:`T2Fit`; failed fits are NaN with a :class:`Failure` code, never a clipped number.
"""

from t2quant.relaxometry.checks import check_te_ms
from t2quant.relaxometry.fit import METHODS, fit_t2
from t2quant.relaxometry.noise import estimate_noise_sigma, signal_mask
from t2quant.relaxometry.result import FAILURE_DESCRIPTIONS, Failure, T2Fit

__all__ = [
    "FAILURE_DESCRIPTIONS",
    "METHODS",
    "Failure",
    "T2Fit",
    "check_te_ms",
    "estimate_noise_sigma",
    "fit_t2",
    "signal_mask",
]
