"""Simulated acquisition: B1 field, multi-echo spin-echo and T2-weighted FSE images, noise.

All functions are pure: arrays in, arrays out.  Signal units are arbitrary scanner units:
``gain`` times the magnetisation of water at full relaxation (M0 = 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from t2quant.errors import InputError
from t2quant.relaxometry.epg import epg_mese_signal
from t2quant.synth.phantom import SpinePhantom, smooth_field_on_grid
from t2quant.synth.protocol import Protocol

FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


@dataclass(frozen=True)
class MESEAcquisition:
    """A simulated multi-echo spin-echo series.

    Attributes
    ----------
    echoes : (X, Y, Z, n_echoes) float32 magnitude images (scanner units).
    te_ms : (n_echoes,) echo times (ms).
    b1 : (X, Y, Z) float32 transmit scale; refocusing angle = 180 deg * b1.
    noise_sigma : SD of the Gaussian noise in each of the real and imaginary channels.
    affine : (4, 4) voxel-to-world (RAS+ mm).
    """

    echoes: np.ndarray
    te_ms: np.ndarray
    b1: np.ndarray
    noise_sigma: float
    affine: np.ndarray


def smooth_b1_field(
    shape: tuple[int, int, int], affine: np.ndarray, *, b1_range: tuple[float, float], seed: int
) -> np.ndarray:
    """A smooth transmit-field scale map spanning ``b1_range`` over the grid.

    Long-wavelength (150-400 mm) random field, rescaled so its minimum and maximum over the
    grid are the bounds of ``b1_range``; shape ``shape``, float32.
    """
    lo, hi = b1_range
    if not 0 < lo <= hi:
        raise InputError(f"b1_range must satisfy 0 < low <= high, got {b1_range}")
    lin, origin = np.asarray(affine, float)[:3, :3], np.asarray(affine, float)[:3, 3]
    f = smooth_field_on_grid(origin, lin.T, tuple(shape), seed, wavelength_mm=(150, 400),
                             n_modes=6).reshape(tuple(shape))  # fmt: skip
    span = f.max() - f.min()
    unit = (f - f.min()) / span if span > 0 else np.ones_like(f)
    return (lo + (hi - lo) * unit).astype(np.float32)


def add_rician_noise(signal: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Magnitude of ``signal`` plus complex Gaussian noise of SD ``sigma`` per channel."""
    if sigma < 0:
        raise InputError(f"noise sigma must be >= 0, got {sigma}")
    if sigma == 0:
        return np.abs(signal)
    real = signal + rng.normal(0.0, sigma, signal.shape)
    imag = rng.normal(0.0, sigma, signal.shape)
    return np.hypot(real, imag)


def psf_blur(volume: np.ndarray, fwhm_vox: tuple[float, float, float]) -> np.ndarray:
    """Gaussian point-spread blur over the first three axes (FWHM in voxels per axis).

    Applied to noiseless signal it mixes neighbouring tissues, which is partial-volume
    averaging; a FWHM of 0 on an axis leaves that axis untouched.
    """
    sigma = [f * FWHM_TO_SIGMA for f in fwhm_vox] + [0.0] * (volume.ndim - 3)
    return gaussian_filter(volume, sigma=sigma, mode="nearest")


def simulate_mese(
    phantom: SpinePhantom,
    protocol: Protocol,
    *,
    snr: float = 80.0,
    b1: np.ndarray | None = None,
    seed: int = 0,
    psf_fwhm_vox: tuple[float, float, float] | None = (1.0, 1.0, 1.0),
    gain: float = 1000.0,
) -> MESEAcquisition:
    """Simulate a CPMG multi-echo spin-echo series of ``phantom`` by EPG.

    Parameters
    ----------
    phantom
        Ground-truth maps (T2, T1 in ms; proton density).
    protocol
        Echo count and spacing (ms), repetition time, nominal angles, B1 range.
    snr
        Ratio of ``gain`` (water, fully relaxed, TE = 0) to the noise SD per channel.
    b1
        Transmit scale map, shape of the phantom; ``None`` draws a smooth field within
        ``protocol.b1_range``.  Refocusing = ``b1 * protocol.refocus_deg`` and excitation =
        ``b1 * protocol.excite_deg``.
    seed
        Seeds the B1 field and the noise.
    psf_fwhm_vox
        Gaussian partial-volume blur per axis (voxels) applied before noise; ``None`` for none.
    gain
        Scanner units per unit magnetisation.

    Returns
    -------
    MESEAcquisition with echoes of shape (X, Y, Z, n_echoes).
    """
    if not snr > 0:
        raise InputError(f"snr must be positive, got {snr!r}")
    shape = phantom.t2_ms.shape
    rng = np.random.default_rng([seed, 5])
    if b1 is None:
        b1 = smooth_b1_field(shape, phantom.affine, b1_range=protocol.b1_range, seed=seed)
    elif b1.shape != shape:
        raise InputError(f"b1 map shape {b1.shape} does not match the phantom {shape}")
    tissue = phantom.pd > 0
    echoes = np.zeros((*shape, protocol.n_echoes), np.float64)
    t1 = phantom.t1_ms[tissue].astype(np.float64)
    m0 = phantom.pd[tissue] * (1.0 - np.exp(-protocol.tr_ms / t1))
    decay = epg_mese_signal(
        phantom.t2_ms[tissue].astype(np.float64),
        t1,
        protocol.esp_ms,
        protocol.n_echoes,
        np.minimum(b1[tissue] * protocol.refocus_deg, 180.0),
        np.minimum(b1[tissue] * protocol.excite_deg, 180.0),
    )
    echoes[tissue] = gain * m0[:, None] * decay
    if psf_fwhm_vox is not None:
        echoes = psf_blur(echoes, psf_fwhm_vox)
    sigma = gain / snr
    noisy = add_rician_noise(echoes, sigma, rng).astype(np.float32)
    return MESEAcquisition(
        noisy, protocol.echo_times_ms, b1.astype(np.float32), sigma, phantom.affine
    )


def simulate_t2w(
    phantom: SpinePhantom,
    protocol: Protocol,
    *,
    snr: float = 60.0,
    seed: int = 0,
    psf_fwhm_vox: tuple[float, float, float] | None = (1.0, 1.0, 1.0),
    gain: float = 1000.0,
) -> np.ndarray:
    """A T2-weighted fast-spin-echo image of the same slab, (X, Y, Z) float32.

    Signal = ``gain * pd * (1 - exp(-TR/T1)) * exp(-TE_eff/T2)`` with
    ``protocol.t2w_te_ms`` and ``protocol.t2w_tr_ms``, blurred and with Rician noise.
    """
    t1 = np.maximum(phantom.t1_ms.astype(np.float64), 1e-3)
    t2 = np.maximum(phantom.t2_ms.astype(np.float64), 1e-3)
    img = gain * phantom.pd * (1 - np.exp(-protocol.t2w_tr_ms / t1))
    img = img * np.exp(-protocol.t2w_te_ms / t2)
    if psf_fwhm_vox is not None:
        img = psf_blur(img, psf_fwhm_vox)
    rng = np.random.default_rng([seed, 11])
    return add_rician_noise(img, gain / snr, rng).astype(np.float32)
