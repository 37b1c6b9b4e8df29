"""The learned part of the segmenter: a 2D U-Net run with onnxruntime on CPU.

The network's contract, shared with the training code (:mod:`t2quant.training`): one
sagittal slice at 1 mm pixels, rows superior->inferior, columns anterior->posterior, height
and width padded with zeros to multiples of :data:`MULTIPLE`, normalised by
:func:`normalise`; output logits ``(N, N_CLASSES, H, W)`` of the classes :class:`Cls`.
The weights ship in the package (``t2quant/data/discseg.onnx``); nothing is downloaded and
no training framework is imported at run time.

Arrays here are ``(SI, AP, LR)``: axis 0 superior->inferior, axis 1 anterior->posterior,
axis 2 the sagittal slices.
"""

from __future__ import annotations

import functools
import os
from enum import IntEnum
from importlib import resources

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi

__all__ = [
    "MULTIPLE",
    "N_CLASSES",
    "PIXEL_MM",
    "Cls",
    "class_map",
    "normalise",
    "packaged_session",
    "session",
]

WEIGHTS = "discseg.onnx"
PIXEL_MM = 1.0  # in-plane pixel of the network
SLICE_STEP_MM = 2.0  # sagittal slices closer than this are subsampled, then interpolated
MULTIPLE = 16  # height and width must be multiples of this (4 poolings)
BATCH = 8
LOW_PCT, HIGH_PCT = 1.0, 99.0


class Cls(IntEnum):
    """Output classes of the network."""

    BACKGROUND = 0
    DISC = 1  # nucleus and annulus of every disc
    BODY = 2  # vertebral bodies above the sacrum (marrow, endplates, cortex)
    SACRUM = 3  # S1-S4 bone, the S1/S2 remnant, the alae
    CANAL = 4  # cerebrospinal fluid and the cauda-equina roots
    CORD = 5  # the spinal cord down to the conus


N_CLASSES = len(Cls)


def normalise(image: NDArray, valid: NDArray | None = None) -> NDArray[np.float32]:
    """Scale an image so that the 1st..99th percentile of its ``valid`` pixels is 0..1.

    Without ``valid`` the pixels that are exactly 0 (zero-filled padding outside the field of
    view) are left out. The result is clipped to [-0.5, 2] and float32 (any shape).
    """
    img = np.asarray(image, np.float32)
    mask = img != 0 if valid is None else valid
    vals = img[mask] if mask.any() else img.ravel()
    lo, hi = np.percentile(vals, [LOW_PCT, HIGH_PCT])
    out = (img - lo) / max(float(hi - lo), 1e-6)
    return np.clip(out, -0.5, 2.0).astype(np.float32)


def weights_sha256() -> str:
    """SHA-256 of the packaged weights: names the model in the methods text."""
    import hashlib

    return hashlib.sha256(
        resources.files("t2quant.data").joinpath(WEIGHTS).read_bytes()
    ).hexdigest()


def default_threads() -> int:
    """onnxruntime threads: ``OMP_NUM_THREADS`` when set, else up to 2."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    return int(env) if env.isdigit() and int(env) > 0 else min(2, os.cpu_count() or 1)


def session(threads: int):
    """The packaged network in a CPU onnxruntime session (cached per thread count)."""
    return packaged_session(WEIGHTS, threads)


@functools.lru_cache(maxsize=8)
def packaged_session(weights: str, threads: int):
    """A CPU onnxruntime session of the packaged model file ``weights`` (in
    ``t2quant/data``), cached per file and thread count; the disc-appearance network
    (:mod:`t2quant.features.appearance`) is run through it too."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    model = resources.files("t2quant.data").joinpath(weights).read_bytes()
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


def probabilities(slices: NDArray, threads: int) -> NDArray[np.float32]:
    """Softmax class probabilities ``(N, C, H, W)`` of raw 1 mm slices ``(N, H, W)``."""
    n, h, w = slices.shape
    pad = [(0, -h % MULTIPLE), (0, -w % MULTIPLE)]
    net = session(threads)
    out = np.empty((n, N_CLASSES, h, w), np.float32)
    for start in range(0, n, BATCH):
        chunk = slices[start : start + BATCH]
        x = np.stack([normalise(np.pad(np.maximum(s, 0.0), pad)) for s in chunk])[:, None]
        logits = net.run(None, {"image": x})[0][:, :, :h, :w]
        e = np.exp(logits - logits.max(1, keepdims=True))
        out[start : start + len(chunk)] = e / e.sum(1, keepdims=True)
    return out


def slice_indices(n: int, spacing_mm: float) -> NDArray[np.intp]:
    """Sagittal slices to run: every slice, or about every ``SLICE_STEP_MM`` (ends included)."""
    step = max(1, int(np.round(SLICE_STEP_MM / spacing_mm)))
    idx = np.arange(0, n, step)
    return idx if idx[-1] == n - 1 else np.append(idx, n - 1)


def _zoom(arr: NDArray, factors: tuple[float, ...]) -> NDArray:
    """Linear resampling by ``factors`` (a no-op for factors of 1)."""
    if np.allclose(factors, 1.0):
        return arr
    return ndi.zoom(arr, factors, order=1, grid_mode=True, mode="nearest")


def _argmax_between(probs: NDArray, idx: NDArray, n: int) -> tuple[NDArray, NDArray]:
    """Classes ``(H, W, n)`` (uint8) and disc probability (float32) from probabilities
    ``(k, C, H, W)`` at slices ``idx``, interpolated linearly between computed slices."""
    classes = np.empty((*probs.shape[2:], n), np.uint8)
    disc = np.empty((*probs.shape[2:], n), np.float32)
    pos = np.interp(np.arange(n), idx, np.arange(len(idx)))
    for j, p in enumerate(pos):
        lo = int(np.floor(p))
        frac = np.float32(p - lo)
        mix = probs[lo] if frac == 0 else probs[lo] * (1 - frac) + probs[lo + 1] * frac
        classes[..., j] = mix.argmax(0)
        disc[..., j] = mix[Cls.DISC]
    return classes, disc


def class_map(
    data: NDArray, spacing_mm: NDArray, threads: int | None = None
) -> tuple[NDArray[np.uint8], NDArray[np.float32]]:
    """Network classes and disc probability of a ``(SI, AP, LR)`` image, on its own grid.

    ``spacing_mm`` is the voxel size along the three axes. Every sagittal slice (or one every
    ~2 mm, the rest interpolated) is resampled to 1 mm, run through the network, and its
    class probabilities are resampled back.
    """
    d_i, d_p, d_s = (float(v) for v in spacing_mm)
    idx = slice_indices(data.shape[2], d_s)
    stack = np.moveaxis(data[:, :, idx], 2, 0)  # (k, SI, AP)
    fine = _zoom(stack, (1.0, d_i / PIXEL_MM, d_p / PIXEL_MM))
    probs = probabilities(fine, threads or default_threads())
    back = (1.0, 1.0, data.shape[0] / fine.shape[1], data.shape[1] / fine.shape[2])
    return _argmax_between(_zoom(probs, back), idx, data.shape[2])


def field_of_view(data: NDArray) -> NDArray[np.bool_]:
    """Imaged region of a ``(SI, AP, LR)`` image: nonzero pixels, closed and hole-filled per
    slice (zero-filled padding outside the field of view stays out)."""
    square = np.ones((7, 7, 1), bool)
    closed = ndi.binary_closing(data > 0, square, border_value=1)
    return np.stack([ndi.binary_fill_holes(closed[:, :, k]) for k in range(data.shape[2])], -1)
