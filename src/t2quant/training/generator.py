"""Random training images from the bank's label slices (NumPy and SciPy only), SynthSeg-style.

:func:`sample` draws one (image, target) pair: a random bank slice, a sacral ala on lateral
slices, random clutter blobs (bowel, pelvis), random intensities per label and per
vertebra/disc (T2w-like or fully random), smooth textures, random geometry (scale, rotation,
elastic warp), a random field of view with zero padding, lower acquisition resolution and
blur, a bias field with an anterior-posterior ramp, Rician noise, optional 8-bit export,
then the run-time normalisation (:func:`t2quant.segmentation.network.normalise`). Every
random choice comes from the ``numpy.random.Generator`` passed in; :class:`Stage` holds what
differs between training stage 1 and stage 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi

from t2quant.segmentation.network import normalise
from t2quant.training.labels import N_LABELS, Label, label_to_class

__all__ = ["PATCH", "STAGE1", "STAGE2", "Bank", "Stage", "sample"]

PATCH = (224, 160)  # rows (S->I) x columns (A->P), 1 mm
SLICE_WEIGHTS = np.array([3.0, 3.0, 2.0, 1.5, 1.0])  # mid-sagittal .. far lateral
T2W_GAIN = {  # label: (low, high) multiplicative range on the T2w-like base signal
    Label.FAT: (1.0, 2.6),
    Label.MARROW: (0.8, 2.6),
    Label.SACRAL_MARROW: (0.8, 2.6),
    Label.CSF: (0.7, 1.4),
    Label.NUCLEUS: (0.6, 1.5),
    Label.ANNULUS: (0.6, 1.6),
    Label.MUSCLE: (0.7, 2.5),
    Label.SOFT: (0.5, 3.0),
    Label.POSTERIOR: (0.6, 2.5),
}
REMNANT_GAIN = (0.5, 8.0)  # stage 2: the S1/S2 remnant can be as bright as a disc
TIED = {  # label: label whose intensity it shares (same tissue, different class)
    Label.SACRAL_MARROW: Label.MARROW,
    Label.SACRAL_CORTEX: Label.CORTEX,
    Label.ROOTS: Label.CORD,
}
ALA_HOSTS = [Label.SOFT, Label.MUSCLE, Label.FAT, Label.POSTERIOR, Label.LIGAMENT, Label.VESSEL]


@dataclass(frozen=True)
class Stage:
    """What differs between the training stages: the probability of a disc-like (widened,
    bright) S1/S2 remnant, and whether sacral bone and nerve roots share the lumbar bone's
    and the cord's intensity."""

    remnant_prob: float = 0.0
    tie_gains: bool = False


STAGE1 = Stage()
STAGE2 = Stage(remnant_prob=0.5, tie_gains=True)


@dataclass
class Bank:
    """All bank slices in memory: per entry, (slices, rows, columns) arrays."""

    labels: list[NDArray[np.uint8]]
    inst: list[NDArray[np.uint8]]
    base: list[NDArray[np.float16]]

    @classmethod
    def load(cls, folder: Path, limit: int | None = None) -> Bank:
        """The first ``limit`` entries (all by default) of a bank folder."""
        files = sorted(Path(folder).glob("entry_*.npz"))[:limit]
        if not files:
            raise FileNotFoundError(f"no bank entries in {folder}")
        data = [np.load(f) for f in files]
        return cls([d["labels"] for d in data], [d["inst"] for d in data],
                   [d["base"] for d in data])  # fmt: skip

    def __len__(self) -> int:
        return len(self.labels)


def smooth_noise(shape: tuple[int, int], cells: tuple[int, int], rng) -> NDArray[np.float64]:
    """Smooth zero-mean unit-SD random field of ``shape``: a coarse Gaussian grid of
    ``cells + 1`` points, cubic upsampling to a quarter of ``shape``, then bilinear."""
    coarse = rng.normal(size=(cells[0] + 1, cells[1] + 1))
    quarter = (max(shape[0] // 4, cells[0] + 1), max(shape[1] // 4, cells[1] + 1))
    mid = ndi.zoom(coarse, np.divide(quarter, coarse.shape), order=3, mode="nearest")
    out = ndi.zoom(mid, np.divide(shape, mid.shape), order=1, mode="nearest")
    out = out[: shape[0], : shape[1]]
    return (out - out.mean()) / (out.std() + 1e-6)


def tie(values: NDArray, rng, stage: Stage) -> NDArray:
    """Stage 2: sacral bone gets the lumbar bone's intensity and the roots the cord's (with a
    few per cent jitter); real images do not tell S1 from L5 by brightness."""
    if stage.tie_gains:
        for label, same in TIED.items():
            values[label] = values[same] * np.exp(rng.normal(0.0, 0.06))
    return values


def add_clutter(labels: NDArray, inst: NDArray, rng) -> tuple[NDArray, NDArray]:
    """Random blobs (bowel loops, pelvic bone, vessels, facet fluid) as ``Label.CLUTTER``:
    large ones in soft tissue, muscle and vessels (85%), small ones also in fat and the
    posterior elements (50%); each blob gets its own instance (200..255) and intensity."""
    labels, inst = labels.copy(), inst.copy()
    layers = [((8, 24), (6, 18), [Label.SOFT, Label.MUSCLE, Label.VESSEL], 0.85)]
    layers.append(((30, 60), (25, 50), [Label.POSTERIOR, Label.FAT, Label.MUSCLE], 0.5))
    for rows, cols, hosts, prob in layers:
        if rng.random() > prob:
            continue
        cells = (int(rng.integers(*rows)), int(rng.integers(*cols)))
        blobs = smooth_noise(labels.shape, cells, rng) > rng.uniform(0.4, 1.6)
        blobs &= np.isin(labels, hosts)
        comp, _ = ndi.label(blobs)
        labels[blobs] = Label.CLUTTER
        inst[blobs] = 200 + comp[blobs] % 56
    return labels, inst


def add_ala(labels: NDArray, inst: NDArray, mid_inst: NDArray, rng) -> tuple[NDArray, NDArray]:
    """A sacral ala on a lateral slice: the mid-sagittal S1 (sometimes also S2) outline,
    grown or shrunk by up to 3 px and shifted by up to 6 px, painted as sacral bone where the
    slice has soft tissue (the phantom's sacrum is only as wide as the bodies)."""
    n_vert = int(mid_inst[mid_inst < 100].max())
    ids = [n_vert - 3] + ([n_vert - 2] if rng.random() < 0.5 else [])
    ala = np.isin(mid_inst, ids)
    r = int(rng.integers(-3, 4))
    ala = ndi.binary_dilation(ala, iterations=r) if r > 0 else ala
    ala = ndi.binary_erosion(ala, iterations=-r) if r < 0 else ala
    ala = np.roll(ala, tuple(rng.integers(-6, 7, 2)), axis=(0, 1)) & np.isin(labels, ALA_HOSTS)
    labels, inst = labels.copy(), inst.copy()
    labels[ala] = Label.SACRAL_MARROW
    labels[ala & ~ndi.binary_erosion(ala)] = Label.SACRAL_CORTEX
    inst[ala] = n_vert - 3
    return labels, inst


def widen_remnant(labels: NDArray, rng) -> NDArray:
    """Grow the thin S1/S2 remnant 1-3 px into the sacral bone around it, so that a disc-like
    remnant below S1 is still sacrum."""
    remnant = labels == Label.SACRAL_REMNANT
    if not remnant.any():
        return labels
    grown = ndi.binary_dilation(remnant, iterations=int(rng.integers(1, 4)))
    out = labels.copy()
    out[grown & np.isin(labels, [Label.SACRAL_MARROW, Label.SACRAL_CORTEX])] = Label.SACRAL_REMNANT
    return out


def label_gains(rng, stage: Stage) -> NDArray:
    """Per-label multiplicative gains on the T2w-like base signal."""
    gains = np.exp(rng.normal(0.0, 0.25, N_LABELS))
    for label, (lo, hi) in T2W_GAIN.items():
        gains[label] *= rng.uniform(lo, hi)
    if stage.remnant_prob > 0:
        gains[Label.SACRAL_REMNANT] *= rng.uniform(*REMNANT_GAIN)
    gains[Label.AIR] = 1.0
    return tie(gains, rng, stage)


def intensities(labels: NDArray, inst: NDArray, base: NDArray, rng, stage: Stage) -> NDArray:
    """A random noiseless image of one label slice (T2w-like 75%, fully random 25%)."""
    base = base.astype(np.float32)
    counts = np.bincount(labels.ravel(), minlength=N_LABELS)
    sums = np.bincount(labels.ravel(), weights=base.ravel(), minlength=N_LABELS)
    means = np.where(counts > 0, sums / np.maximum(counts, 1), 0.2).astype(np.float32)
    means[Label.CLUTTER] = rng.uniform(0.0, 0.6)
    if rng.random() < 0.75:
        ref = np.where(labels == Label.CLUTTER, means[Label.CLUTTER], base)
        img = ref * label_gains(rng, stage)[labels]
    else:
        level = rng.uniform(0.0, 1.0, N_LABELS).astype(np.float32)
        level[Label.AIR] = rng.uniform(0.0, 0.08)
        level = tie(level, rng, stage)
        texture = (base / np.maximum(means[labels], 1e-3)) ** rng.uniform(0.0, 1.0)
        img = level[labels] * np.where(labels == Label.CLUTTER, 1.0, texture)
    inst_gain = np.exp(rng.normal(0.0, 0.12, 256)).astype(np.float32)
    inst_gain[200:] = np.exp(rng.normal(0.0, 0.9, 56))  # clutter blobs: very different
    inst_gain[0] = 1.0
    img = img * inst_gain[inst]
    tex = smooth_noise(img.shape, (int(rng.integers(10, 40)),) * 2, rng)
    return (img * (1.0 + rng.uniform(0.0, 0.25) * tex)).astype(np.float32)


def sample_geometry(shape_src: tuple[int, int], inst: NDArray, rng, patch=PATCH) -> NDArray:
    """Source coordinates ``(2, H, W)`` of a patch: centred on a spine pixel (half of the
    time in the lower half of the column) + N(0, 25/15 mm), scale 0.78-1.28 (anisotropy
    sd 0.06), rotation N(0, 8 deg), elastic warp 0-4 mm."""
    spine = np.argwhere(inst > 0)
    if len(spine) < 100:  # a far-lateral slice that misses the bodies
        spine = np.argwhere(np.ones(shape_src, bool))
    if rng.random() < 0.5:
        spine = spine[spine[:, 0] >= np.median(spine[:, 0])]
    anchor = spine[rng.integers(len(spine))] + rng.normal(0, [25.0, 15.0])
    scale = rng.uniform(0.78, 1.28) * np.exp(rng.normal(0, 0.06, 2))
    angle = np.deg2rad(rng.normal(0, 8.0))
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    grid = np.mgrid[: patch[0], : patch[1]].reshape(2, -1).astype(np.float32)
    grid -= np.array(patch, np.float32)[:, None] / 2.0
    coords = ((rot * scale[None, :]) @ grid + anchor[:, None]).reshape(2, *patch)
    amp = rng.uniform(0.0, 4.0)
    for axis in range(2):
        coords[axis] += amp * smooth_noise(patch, (4, 3), rng)
    return coords.astype(np.float32)


def fov_mask(patch: tuple[int, int], rng) -> NDArray[np.bool_]:
    """Random field-of-view rectangle: each edge cut (probability 0.2 top/bottom, 0.15
    front/back) by 2-35%; the rest is zero-filled padding."""
    mask = np.ones(patch, bool)
    for axis, prob in ((0, 0.4), (1, 0.3)):
        for side in (0, 1):
            if rng.random() < prob / 2:
                cut = int(rng.uniform(0.02, 0.35) * patch[axis])
                idx = slice(0, cut) if side == 0 else slice(patch[axis] - cut, None)
                if axis == 0:
                    mask[idx] = False
                else:
                    mask[:, idx] = False
    return mask


def degrade(img: NDArray, rng) -> NDArray[np.float32]:
    """Lower acquisition resolution (60%: 1-2.4x per axis) and blur (0-0.9 px), a bias field
    with a front-back ramp, Rician noise (0-6% of the 95th percentile)."""
    if rng.random() < 0.6:
        factor = rng.uniform(1.0, 2.4, 2)
        small = ndi.zoom(img, 1.0 / factor, order=1)
        img = ndi.zoom(small, np.array(img.shape) / np.array(small.shape), order=1)
    img = ndi.gaussian_filter(img, rng.uniform(0.0, 0.9, 2))
    bias = rng.uniform(0.0, 0.5) * smooth_noise(img.shape, (3, 3), rng)
    ramp = np.linspace(-1.0, 1.0, img.shape[1])[None, :] * rng.uniform(-0.3, 1.2)
    img = img * np.exp(bias + ramp)
    sigma = rng.uniform(0.0, 0.06) * float(np.percentile(img, 95))
    noisy = img + rng.normal(0.0, sigma, img.shape)
    return np.hypot(noisy, rng.normal(0.0, sigma, img.shape)).astype(np.float32)


def quantise(img: NDArray, rng) -> NDArray[np.float32]:
    """8-bit export (min..max to 0..255) half of the time, else a random integer scale."""
    lo, hi = float(img.min()), float(img.max())
    if rng.random() < 0.5:
        return np.round(255.0 * (img - lo) / max(hi - lo, 1e-6)).astype(np.float32)
    return np.round(img * rng.uniform(200.0, 4000.0) / max(hi, 1e-6)).astype(np.float32)


def _labels_of(bank: Bank, e: int, k: int, rng, stage: Stage) -> tuple[NDArray, NDArray]:
    """Label and instance maps of bank slice (e, k) with ala, remnant and clutter drawn."""
    labels, inst = bank.labels[e][k], bank.inst[e][k]
    if k >= 3 and rng.random() < 0.7:  # slices 14-27 mm from the midline
        labels, inst = add_ala(labels, inst, bank.inst[e][0], rng)
    if stage.remnant_prob > 0 and rng.random() < stage.remnant_prob:
        labels = widen_remnant(labels, rng)
    return add_clutter(labels, inst, rng)


def sample(
    bank: Bank, rng: np.random.Generator, stage: Stage = STAGE1, patch=PATCH
) -> tuple[NDArray[np.float32], NDArray[np.uint8]]:
    """One random pair: the normalised image (float32 ``patch``) and its class target
    (uint8 ``patch``, :class:`~t2quant.segmentation.network.Cls`)."""
    e = int(rng.integers(len(bank)))
    w = SLICE_WEIGHTS[: bank.labels[e].shape[0]]
    k = int(rng.choice(len(w), p=w / w.sum()))
    labels, inst = _labels_of(bank, e, k, rng, stage)
    img_src = intensities(labels, inst, bank.base[e][k], rng, stage)
    coords = sample_geometry(labels.shape, bank.inst[e][k], rng, patch)
    img = ndi.map_coordinates(img_src, coords, order=1, mode="constant", cval=0.0)
    lab = ndi.map_coordinates(labels, coords, order=0, mode="constant", cval=0)
    img = degrade(np.maximum(img, 0.0), rng)
    fov = fov_mask(patch, rng) & (ndi.map_coordinates(np.ones_like(img_src), coords, order=0) > 0)
    img = quantise(np.where(fov, img, 0.0), rng)
    target = np.where(fov, label_to_class(lab), 0).astype(np.uint8)
    valid = fov & (img > 0) if (fov & (img > 0)).any() else fov
    return normalise(img, valid) * np.float32(np.exp(rng.normal(0, 0.1))), target
