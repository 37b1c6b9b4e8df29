"""Noise level and signal mask from the images themselves."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from t2quant.errors import InputError

__all__ = ["estimate_noise_sigma", "signal_mask"]

# Median of a Rayleigh variable is sigma * sqrt(2 ln 2).
_RAYLEIGH_MEDIAN = float(np.sqrt(2.0 * np.log(2.0)))


def estimate_noise_sigma(signal: ArrayLike, background: ArrayLike) -> float:
    """Noise standard deviation of the underlying complex data from background voxels.

    In magnitude images the background (no signal) is Rayleigh distributed; its median is
    ``sigma * sqrt(2 ln 2)``. The median is robust to a few tissue voxels in the background.

    Parameters
    ----------
    signal : (*S, n_echoes) array
        Magnitude echoes.
    background : (*S,) bool array
        Voxels holding noise only.

    Returns
    -------
    float
        ``sigma`` in the units of the signal.

    Raises
    ------
    ValueError
        If the background is empty or all zero (e.g. zero-filled or masked data).
    """
    arr = np.asarray(signal)
    bg = np.asarray(background, dtype=bool)
    if bg.shape != arr.shape[:-1]:
        raise InputError(f"background mask shape {bg.shape} != image shape {arr.shape[:-1]}")
    values = arr[bg]
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise InputError("cannot estimate the noise: the background mask is empty")
    median = float(np.median(values))
    if median <= 0:
        raise InputError(
            "cannot estimate the noise: the background is zero (masked or zero-filled "
            "images); pass noise_sigma explicitly"
        )
    return median / _RAYLEIGH_MEDIAN


def signal_mask(first_echo: ArrayLike) -> NDArray[np.bool_]:
    """Voxels with signal: a two-class threshold on the log of the first echo.

    Magnitude MR images are bimodal in log intensity (noise background versus tissue), so
    the log-domain Otsu classes separate them without tuning. The cut is placed midway
    between the means of the two Otsu classes (one isodata step), which keeps it inside the
    gap when the classes are well separated. Voxels that are zero or not finite are
    excluded.
    """
    from skimage.filters import threshold_otsu

    img = np.asarray(first_echo, dtype=np.float64)
    finite = np.isfinite(img) & (img > 0)
    if not finite.any():
        return np.zeros(img.shape, dtype=bool)
    log_img = np.log(img[finite])
    if np.ptp(log_img) == 0:
        return finite
    mask = np.zeros(img.shape, dtype=bool)
    otsu = threshold_otsu(log_img)
    cut = 0.5 * (log_img[log_img <= otsu].mean() + log_img[log_img > otsu].mean())
    mask[finite] = log_img > cut
    return mask
