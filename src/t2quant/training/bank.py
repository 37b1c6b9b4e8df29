"""Label-map bank: phantom anatomies rendered once into compact sagittal label slices.

Each bank entry is one random anatomy from :func:`t2quant.synth.anatomy.build_anatomy`,
drawn up to T6 (real fields of view reach the mid-thoracic spine), posed with a random
pitch, and rasterised by :func:`t2quant.synth.phantom.rasterise` on five 1 mm sagittal
slices at random lateral offsets. Per slice it stores:

- ``labels`` (uint8, :class:`~t2quant.training.labels.Label`): the phantom tissues, with
  sacral bone and the cauda-equina roots split off;
- ``inst`` (uint8): 1..N vertebral body number (superior to inferior), 100 + k disc number;
- ``base`` (float16): a T2-weighted FSE-like signal (TE 100 ms, TR 4000 ms) carrying the
  phantom's textures and nucleus/annulus pattern.

Arrays are (slice, row = superior->inferior, column = anterior->posterior), 1 mm pixels.
Entry ``seed`` is a pure function of the seed: ``entry_<seed>.npz``.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from t2quant.levels import LEVELS
from t2quant.synth.anatomy import SpineAnatomy, build_anatomy, column_curve
from t2quant.synth.grades import sample_grades
from t2quant.synth.phantom import (
    _YZ,
    _body_masks,
    _curve_coordinates,
    _disc_geometry,
    _vertebra_arclength,
    rasterise,
)
from t2quant.synth.protocol import Grid
from t2quant.synth.tissues import Tissue
from t2quant.training.labels import Label

__all__ = ["FIRST_SEED", "N_ENTRIES", "build_bank", "build_entry", "draw_anatomy"]

PIXEL_MM = 1.0
FIRST_SEED, N_ENTRIES = 1000, 60  # the shipped model's bank: seeds 1000..1059
TE_MS, TR_MS = 100.0, 4000.0  # the base signal's T2-weighted FSE contrast
ROOTS_BELOW_CONUS_MM = 14.0  # cord voxels this far below the conus level are nerve roots
_INSTANCE_LABELS = [
    Label.NUCLEUS, Label.ANNULUS, Label.MARROW, Label.ENDPLATE, Label.CORTEX,
    Label.SACRAL_MARROW, Label.SACRAL_CORTEX, Label.SACRAL_REMNANT,
]  # fmt: skip


def draw_anatomy(seed: int) -> tuple[SpineAnatomy, dict[str, int]]:
    """A random anatomy for bank entry ``seed``: SPIDER-model grades (a grade-5 disc in 25%),
    an L6 in 12%, size 0.82-1.18, fat 3-45 mm, sacral slope 22-58 deg, conus at T12/L1/L1/L2
    (1:2:1), pitch +-12 deg; and its grades."""
    rng = np.random.default_rng([seed, 17])
    extra = bool(rng.random() < 0.12)
    grades = sample_grades(rng)
    if rng.random() < 0.25:
        grades[LEVELS[int(rng.integers(1, 7))]] = 5
    if extra:
        grades["L5/L6"] = int(rng.integers(1, 6))
        grades["L6/S1"] = grades.pop("L5/S1")
    anatomy = build_anatomy(
        grades=grades, seed=seed, extra_lumbar=extra, size_scale=float(rng.uniform(0.82, 1.18)),
        fat_thickness_mm=float(rng.uniform(3.0, 45.0)),
        sacral_slope_deg=float(rng.uniform(22.0, 58.0)), top_vertebra="T6",
    )  # fmt: skip
    conus = str(rng.choice(["T12", "L1", "L1", "L2"]))
    return replace(anatomy, conus_level=conus, pitch_deg=float(rng.uniform(-12, 12))), grades


def slice_positions(rng: np.random.Generator) -> NDArray[np.float64]:
    """Lateral offsets (mm) of the five slices of one anatomy: ~0, 3-8, 8-14, 14-20, 20-27
    mm, each on a random side."""
    sign = rng.choice([-1.0, 1.0], size=5)
    mags = [rng.uniform(0, 2.5), rng.uniform(3, 8), rng.uniform(8, 14), rng.uniform(14, 20)]
    mags.append(rng.uniform(20, 27))
    return np.round(sign * np.array(mags), 2)


def slice_grid(anatomy: SpineAnatomy, x_mm: float) -> Grid:
    """A one-slice PIR grid (1 mm) from above the top vertebra to 70 mm below the sacrum,
    -150..+190 mm front to back of the body centres."""
    centres = np.array([v.centre for v in anatomy.vertebrae])
    world = anatomy.to_world(centres)
    y_lo, y_hi = world[:, 1].min() - 150.0, world[:, 1].max() + 190.0
    z_lo, z_hi = world[:, 2].min() - 70.0, world[:, 2].max() + 20.0
    shape = (int((y_hi - y_lo) / PIXEL_MM), int((z_hi - z_lo) / PIXEL_MM), 1)
    affine = np.eye(4)
    affine[:3, :3] = np.array([[0, 0, 1.0], [-PIXEL_MM, 0, 0], [0, -PIXEL_MM, 0]])  # P, I, R
    affine[:3, 3] = [x_mm, y_hi, z_hi]
    return Grid(shape, affine)


def _instances(anatomy: SpineAnatomy, subj: NDArray) -> tuple[NDArray, NDArray]:
    """Vertebral body number (1..) and sacral flag of every point ``subj`` (n, 3)."""
    x, yz = subj[:, 0], _YZ(subj[:, 1:], 1)
    inst = np.zeros(len(x), np.uint8)
    sacral = np.zeros(len(x), bool)
    for k, vert in enumerate(anatomy.vertebrae, start=1):
        inside = _body_masks(yz, x, vert)[0]
        inst[inside] = k
        if vert.name.startswith("S"):
            sacral |= inside
    for k, disc in enumerate(anatomy.discs, start=1):
        inst[_disc_geometry(yz, x, disc)[0]] = 100 + k
    return inst, sacral


def _roots(anatomy: SpineAnatomy, subj: NDArray) -> NDArray[np.bool_]:
    """Points below the conus tip (where the phantom's cord voxels are nerve roots)."""
    curve, arclength = column_curve(anatomy)
    s, _ = _curve_coordinates(_YZ(subj[:, 1:], 1), curve, arclength)
    s_conus = _vertebra_arclength(anatomy, curve, arclength)[anatomy.conus_level]
    return s < s_conus - ROOTS_BELOW_CONUS_MM


def render_slice(anatomy: SpineAnatomy, x_mm: float) -> dict[str, NDArray]:
    """Labels, instances and T2w-like base signal of one sagittal slice (rows S->I)."""
    grid = slice_grid(anatomy, x_mm)
    c = rasterise(anatomy, grid)
    subj = anatomy.to_subject(grid.world_coordinates().reshape(-1, 3))
    inst, sacral = _instances(anatomy, subj)
    labels = c.tissue.astype(np.uint8)  # Label codes 0..14 are the Tissue codes (labels.py)
    bone = np.isin(c.tissue, [Tissue.MARROW, Tissue.ENDPLATE, Tissue.CORTEX]) & sacral
    labels[bone & (c.tissue == Tissue.MARROW)] = Label.SACRAL_MARROW
    labels[bone & (c.tissue != Tissue.MARROW)] = Label.SACRAL_CORTEX
    labels[(c.tissue == Tissue.CORD) & _roots(anatomy, subj)] = Label.ROOTS
    inst[~np.isin(labels, _INSTANCE_LABELS)] = 0
    t1 = np.maximum(c.t1, 1e-3)
    base = c.pd * (1 - np.exp(-TR_MS / t1)) * np.exp(-TE_MS / np.maximum(c.t2, 1e-3))
    shape = grid.shape[:2]
    return {  # PIR (A->P, S->I) -> (S->I, A->P)
        "labels": labels.reshape(shape).T,
        "inst": inst.reshape(shape).T,
        "base": base.reshape(shape).T.astype(np.float16),
    }


def build_entry(seed: int, n_slices: int = 5) -> dict[str, NDArray]:
    """The first ``n_slices`` slices of bank entry ``seed`` stacked, with its metadata."""
    anatomy, _ = draw_anatomy(seed)
    xs = slice_positions(np.random.default_rng([seed, 23]))[:n_slices]
    slices = [render_slice(anatomy, float(x)) for x in xs]
    out = {k: np.stack([s[k] for s in slices]) for k in slices[0]}
    out["x_mm"] = xs
    out["disc_levels"] = np.array([d.level for d in anatomy.discs])
    out["disc_grades"] = np.array([d.grade for d in anatomy.discs], np.int8)
    out["vertebrae"] = np.array([v.name for v in anatomy.vertebrae])
    return out


def build_bank(folder: Path, n: int = N_ENTRIES, first_seed: int = FIRST_SEED) -> list[Path]:
    """Build (or complete) the bank: one ``entry_<seed>.npz`` per seed, existing ones kept."""
    folder.mkdir(parents=True, exist_ok=True)
    t0, paths = time.time(), []
    for seed in range(first_seed, first_seed + n):
        path = folder / f"entry_{seed:05d}.npz"
        if not path.exists():
            np.savez_compressed(path, **build_entry(seed))
            print(f"{path.name} {time.time() - t0:.0f} s", flush=True)
        paths.append(path)
    return paths
