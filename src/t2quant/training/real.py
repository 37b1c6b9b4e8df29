"""Real volumes with manual disc masks as training pairs (no training framework here).

A real slice's target is the manual mask for the disc class; the other classes, which no
rater drew, are a trained network's own labels ("pseudo-labels"), except that its disc
pixels within :data:`OVERREACH_MM` of a manual disc take its best non-disc class (the rater
said: not disc). Discs far from every manual disc (T12/L1 and above, not labelled) keep the
network's disc label. Slices get the generator's geometry
(:func:`~t2quant.training.generator.sample_geometry`), a random gamma and the run-time
normalisation. Arrays are ``(SI, AP, LR)`` at 1 mm in-plane.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage as ndi

from t2quant.segmentation.frame import to_canonical
from t2quant.segmentation.network import PIXEL_MM, Cls, normalise
from t2quant.training.generator import PATCH, sample_geometry

__all__ = ["OVERREACH_MM", "RealVolume", "pseudo_target", "real_sample", "to_network_grid"]

OVERREACH_MM = 8.0  # network disc pixels this close to a manual disc are not disc


@dataclass
class RealVolume:
    """One real volume at 1 mm in-plane, ``(SI, AP, LR)``: raw image, manual discs
    (nonzero = disc), the class target of every slice, and the slices' sampling weights."""

    name: str
    image: np.ndarray
    manual: np.ndarray
    target: np.ndarray
    weights: np.ndarray


def to_network_grid(path: Path, orientation: str, order: int) -> tuple[np.ndarray, np.ndarray]:
    """A NIfTI as ``(SI, AP, LR)`` at 1 mm in-plane, and its original spacing (mm)."""
    img = nib.load(path)
    frame = to_canonical(np.asanyarray(img.dataobj), img.affine, orientation=orientation)
    data = frame.data.transpose(1, 0, 2).astype(np.float32)
    spacing = frame.voxel_mm[[1, 0, 2]]
    zoom = (spacing[0] / PIXEL_MM, spacing[1] / PIXEL_MM, 1.0)
    if not np.allclose(zoom, 1.0):
        data = ndi.zoom(data, zoom, order=order, grid_mode=True, mode="nearest")
    return data, np.array([PIXEL_MM, PIXEL_MM, spacing[2]])


def pseudo_target(probs: np.ndarray, manual: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Class target ``(SI, AP, LR)`` uint8: manual discs, the network's classes elsewhere, its
    disc pixels near a manual disc replaced by its best other class."""
    net = probs.argmax(0).astype(np.uint8)
    other = probs.copy()
    other[Cls.DISC] = -1.0
    second = other.argmax(0).astype(np.uint8)
    near = ndi.distance_transform_edt(manual == 0, sampling=spacing) <= OVERREACH_MM
    target = np.where((net == Cls.DISC) & near, second, net)
    return np.where(manual > 0, np.uint8(Cls.DISC), target).astype(np.uint8)


def real_sample(volumes: list[RealVolume], rng: np.random.Generator, patch=PATCH):
    """One augmented real (image, target) pair as the generator gives them."""
    vol = volumes[int(rng.integers(len(volumes)))]
    k = int(rng.choice(vol.image.shape[2], p=vol.weights))
    spine = (vol.target[:, :, k] == Cls.BODY) | (vol.manual[:, :, k] > 0)
    coords = sample_geometry(spine.shape, spine.astype(np.int32), rng, patch)
    img = ndi.map_coordinates(vol.image[:, :, k], coords, order=1, mode="constant", cval=0.0)
    lab = ndi.map_coordinates(vol.target[:, :, k], coords, order=0, mode="constant", cval=0)
    img = np.maximum(img, 0.0)
    peak = float(img.max()) or 1.0
    img = peak * (img / peak) ** np.exp(rng.normal(0.0, 0.2))
    return normalise(img), lab.astype(np.uint8)
