"""``segment_discs``: whole-disc masks and level names on a sagittal T2-weighted image.

Steps (each in its own module):

1. :mod:`~t2quant.segmentation.frame`: check the image (a 3D sagittal volume or one sagittal
   slice) and move it to the canonical ``PIR`` frame (from the affine, or from an
   ``orientation`` override).
2. :mod:`~t2quant.segmentation.network`: every sagittal slice at 1 mm through the packaged
   U-Net (onnxruntime, CPU): classes background, disc, vertebral body, sacrum, canal, cord.
3. :mod:`~t2quant.segmentation.naming`: on the mid-sagittal slab, discs between bones,
   named upward from the sacrum, the end of the cord as a second check, flags; the named
   discs seed the 3D masks.
4. Here: one :class:`LevelRecord` per level T11/T12..L5/S1 (volume, centroid, height,
   confidence, why a level is missing).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from t2quant.levels import LEVEL_INDEX, LEVELS
from t2quant.segmentation.frame import to_canonical
from t2quant.segmentation.naming import Naming, name_discs
from t2quant.segmentation.network import class_map, field_of_view

__all__ = ["DiscSegmentation", "LevelRecord", "records_from_labels", "segment_discs"]

UNSURE_FACTOR = 0.5  # confidence factor of every disc when the count is level_uncertain


@dataclass(frozen=True)
class LevelRecord:
    """What was found for one of the seven levels."""

    level: str
    index: int
    found: bool
    confidence: float  # 0..1
    centroid_mm: tuple[float, float, float] | None  # world (scanner) coordinates
    volume_mm3: float
    height_mm: float  # mid-sagittal disc height, central third of its length
    n_slices: int
    note: str = ""

    @classmethod
    def missing(cls, level: str, note: str) -> LevelRecord:
        """The record of a level with no disc."""
        return cls(level, LEVEL_INDEX[level], False, 0.0, None, 0.0, float("nan"), 0, note)


@dataclass(frozen=True)
class DiscSegmentation:
    """Disc labels in the input grid (0, or 1..7 = T11/T12..L5/S1), per-level records and
    warnings. ``flags`` holds machine-readable warnings such as ``level_uncertain``.
    ``classes`` (the network's classes, input grid) and ``naming`` are set by
    :func:`segment_discs`, not by imports."""

    labels: NDArray[np.uint8]
    records: tuple[LevelRecord, ...]
    warnings: tuple[str, ...]
    flags: tuple[str, ...] = field(default=())
    classes: NDArray[np.uint8] | None = None
    naming: Naming | None = None

    def record(self, level: str) -> LevelRecord:
        return next(r for r in self.records if r.level == level)


def segment_discs(
    image: NDArray,
    affine: NDArray,
    *,
    orientation: str | None = None,
    name: str = "image",
    threads: int | None = None,
) -> DiscSegmentation:
    """Segment and name the intervertebral discs of a sagittal T2-weighted image.

    Parameters
    ----------
    image : (X, Y, Z) or (X, Y) array
        A sagittal T2-weighted volume, or one sagittal slice (2D, or 3D with one slice along
        the left-right axis): a fast spin-echo image, or an image derived from the echoes of
        a multi-echo acquisition.
    affine : (4, 4) array
        Voxel to world (RAS+ mm); for a 2D slice its third column is the slice direction.
    orientation : str, optional
        Axis codes overriding the affine's orientation (e.g. ``"IPR"``: axis 0 points
        inferior, axis 1 posterior, axis 2 right as the index grows).
    name : str
        How to call the image in messages (a file name).
    threads : int, optional
        onnxruntime threads (default: ``OMP_NUM_THREADS``, else up to 2).

    Returns
    -------
    DiscSegmentation
        Labels in the input grid (3D, also for a 2D input), one record per level
        T11/T12..L5/S1, warnings and flags.

    Raises
    ------
    ValueError
        For an image that is neither 3D nor one slice, an empty or constant image, or a
        slab that is not sagittal.
    """
    frame = to_canonical(image, affine, orientation=orientation, name=name)
    data = frame.data.transpose(1, 0, 2)  # PIR -> (SI, AP, LR), the network's layout
    spacing = frame.voxel_mm[[1, 0, 2]]
    classes, disc_prob = class_map(data, spacing, threads)
    naming, levels = name_discs(classes, spacing, field_of_view(data))
    labels = frame.back(levels.transpose(1, 0, 2)).astype(np.uint8)
    records = _records(naming, levels, disc_prob, spacing, labels, np.asarray(affine, float))
    back_classes = frame.back(classes.transpose(1, 0, 2)).astype(np.uint8)
    return DiscSegmentation(labels, records, naming.warnings, naming.flags, back_classes, naming)


def _records(naming, levels, disc_prob, spacing, labels, affine) -> tuple[LevelRecord, ...]:
    """One record per level from the canonical ``(SI, AP, LR)`` level map ``levels``."""
    factor = UNSURE_FACTOR if "level_uncertain" in naming.flags else 1.0
    out = []
    for lvl in LEVELS:
        mask = levels == LEVEL_INDEX[lvl]
        disc = naming.disc(lvl)
        if disc is None or not mask.any():
            out.append(LevelRecord.missing(lvl, naming.missing.get(lvl, "not found")))
            continue
        mid = mask[:, :, naming.mid_slice]
        out.append(LevelRecord(
            lvl, LEVEL_INDEX[lvl], True, round(float(disc_prob[mask].mean()) * factor, 3),
            _centroid_mm(labels == LEVEL_INDEX[lvl], affine),
            float(mask.sum() * np.prod(spacing)), mid_height_mm(mid, spacing[:2]),
            int(mask.any(axis=(0, 1)).sum()), _note(disc),
        ))  # fmt: skip
    return tuple(out)


def _note(disc) -> str:
    """A named disc's note: whether it (or the body above it) is cut by the field of view."""
    if disc.partial:
        return "partial: the disc is cut by the edge of the field of view"
    if disc.above_cut:
        return "partial: the vertebral body above it is cut by the edge of the field of view"
    return ""


def mid_height_mm(plane: NDArray[np.bool_], pixel_mm: NDArray) -> float:
    """Mean height (mm) of a disc's cross-section ``(SI, AP)`` over the central third of its
    length (area of that third / its length); NaN for fewer than 4 pixels."""
    pts = np.argwhere(plane) * np.asarray(pixel_mm, float)
    if len(pts) < 4:
        return float("nan")
    centred = pts - pts.mean(0)
    long_axis = np.linalg.eigh(np.cov(centred.T))[1][:, 1]
    along = centred @ long_axis
    length = float(np.ptp(along)) + float(np.mean(pixel_mm))
    central = np.abs(along) <= length / 6.0
    return float(central.sum() * np.prod(pixel_mm) / (length / 3.0))


def _centroid_mm(mask: NDArray[np.bool_], affine: NDArray) -> tuple[float, float, float]:
    """Centre of a mask in world (scanner) mm."""
    ijk = np.argwhere(mask).mean(axis=0)
    x, y, z = (np.asarray(affine) @ np.append(ijk, 1.0))[:3]
    return float(x), float(y), float(z)


def records_from_labels(
    labels: NDArray, affine: NDArray, *, confidence: float
) -> tuple[tuple[LevelRecord, ...], list[str]]:
    """Records of a finished label volume (imported or corrected masks): centroid, volume and
    the number of sagittal slices; the height is not measured here (NaN)."""
    voxel = np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0))
    voxel_mm3 = float(np.prod(voxel))
    slice_axis = int(np.argmax(np.abs(np.asarray(affine)[0, :3])))  # the left-right axis
    other = tuple(a for a in range(3) if a != slice_axis)
    records, missing = [], []
    for lvl in LEVELS:
        mask = labels == LEVEL_INDEX[lvl]
        if not mask.any():
            records.append(LevelRecord.missing(lvl, "not in mask"))
            missing.append(lvl)
            continue
        volume = float(mask.sum()) * voxel_mm3
        n_slices = int(mask.any(axis=other).sum())
        centroid = _centroid_mm(mask, affine)
        record = LevelRecord(lvl, LEVEL_INDEX[lvl], True, confidence, centroid, volume,
                             float("nan"), n_slices)  # fmt: skip
        records.append(record)
    return tuple(records), missing
