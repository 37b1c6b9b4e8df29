"""``segment_discs``: whole-disc masks and level names on a sagittal T2-weighted volume.

Steps (each in its own module):

1. :mod:`~t2quant.segmentation.frame`: check the slab and move it to the canonical ``PIR``
   frame (from the affine, or from an ``orientation`` override).
2. :mod:`~t2quant.segmentation.column`: on the mid-sagittal slab, find the canal and a curve
   along its anterior wall, and straighten the column along it.
3. :mod:`~t2quant.segmentation.profile`: down the straightened column, find the vertebral
   bodies and the gaps between them, each holding one disc.
4. :mod:`~t2quant.segmentation.naming`: name the gaps upward from the sacrum and flag
   anything that makes the count unsure.
5. :mod:`~t2quant.segmentation.planes`: outline each named disc on every sagittal slice where
   the bodies above and below it are seen, and paint the outlines into the label volume.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi

from t2quant.errors import InputError
from t2quant.levels import LEVEL_INDEX, LEVELS
from t2quant.segmentation.column import STEP_MM, Column, find_column, mid_sagittal
from t2quant.segmentation.conus import conus_tip_mm
from t2quant.segmentation.frame import Frame, to_canonical
from t2quant.segmentation.naming import Naming, name_gaps
from t2quant.segmentation.planes import DiscOutline, outline_disc
from t2quant.segmentation.profile import column_profile, find_gaps

__all__ = ["DiscSegmentation", "LevelRecord", "segment_discs"]


@dataclass(frozen=True)
class LevelRecord:
    """What was found for one of the seven levels."""

    level: str
    index: int
    found: bool
    confidence: float  # 0..1
    centroid_mm: tuple[float, float, float] | None  # world (scanner) coordinates
    volume_mm3: float
    height_mm: float  # mid-sagittal disc height, centre of the disc
    n_slices: int
    note: str = ""

    @classmethod
    def missing(cls, level: str, note: str) -> LevelRecord:
        """The record of a level with no disc."""
        return cls(level, LEVEL_INDEX[level], False, 0.0, None, 0.0, float("nan"), 0, note)


@dataclass(frozen=True)
class DiscSegmentation:
    """Disc labels in the input grid (0, or 1..7 = T11/T12..L5/S1), per-level records and
    warnings. ``flags`` holds machine-readable warnings such as ``level_uncertain``."""

    labels: NDArray[np.uint8]
    records: tuple[LevelRecord, ...]
    warnings: tuple[str, ...]
    flags: tuple[str, ...] = field(default=())

    def record(self, level: str) -> LevelRecord:
        return next(r for r in self.records if r.level == level)


def segment_discs(
    image: NDArray,
    affine: NDArray,
    *,
    fluid: NDArray | None = None,
    orientation: str | None = None,
    name: str = "image",
) -> DiscSegmentation:
    """Segment and name the intervertebral discs of a sagittal T2-weighted volume.

    Parameters
    ----------
    image : (X, Y, Z) array
        A sagittal T2-weighted volume (a fast spin-echo image, or an image derived from the
        echoes of a multi-echo acquisition).
    affine : (4, 4) array
        Voxel to world (RAS+ mm).
    fluid : (X, Y, Z) array, optional
        An image of the same grid in which fluid is the brightest tissue, used to find the
        spinal canal and the end of the cord (default: ``image``). A multi-echo acquisition
        with a short repetition time leaves cerebrospinal fluid no brighter than a nucleus
        or fat at any single echo; :func:`~t2quant.segmentation.files.mese_fluid_image`
        makes one from the echoes.
    orientation : str, optional
        Axis codes overriding the affine's orientation (e.g. ``"IPR"``: axis 0 points
        inferior, axis 1 posterior, axis 2 right as the index grows).
    name : str
        How to call the image in messages (a file name).

    Returns
    -------
    DiscSegmentation
        Labels in the input grid, one record per level T11/T12..L5/S1, warnings and flags.

    Raises
    ------
    ValueError
        For a 2D, empty or constant image, or a slab that is not sagittal.
    """
    frame = to_canonical(image, affine, orientation=orientation, name=name)
    mid = mid_sagittal(frame.data, frame.voxel_mm)
    wet = frame if fluid is None else _same_frame(fluid, affine, orientation, name, image.shape)
    column = find_column(mid_sagittal(wet.data, wet.voxel_mm), frame.voxel_mm)
    if column is None:
        return _nothing(frame, affine, f"{name}: no spinal canal found; no disc was segmented")
    straight = column.straighten(mid)
    prof, level = column_profile(straight, column.inside(mid.shape), column.d_mm, STEP_MM)
    gaps = find_gaps(prof, column.s_mm, STEP_MM)
    midline = column.straighten(mid_sagittal(wet.data, wet.voxel_mm, half_width_mm=2.0))
    naming = name_gaps(gaps, prof, column, STEP_MM, conus_tip_mm(midline, column))
    labels, outlines = _paint(frame, column, naming, level)
    back = frame.back(labels)
    records = _records(naming, outlines, back, affine, frame)
    return DiscSegmentation(back.astype(np.uint8), records, naming.warnings, naming.flags)


def _same_frame(
    fluid: NDArray, affine: NDArray, orientation: str | None, name: str, shape: tuple
) -> Frame:
    if fluid.shape != shape:
        raise InputError(f"{name}: the fluid image has shape {fluid.shape}, not {shape}")
    return to_canonical(fluid, affine, orientation=orientation, name=f"{name} (fluid image)")


def _nothing(frame: Frame, affine: NDArray, why: str) -> DiscSegmentation:
    labels = frame.back(np.zeros(frame.data.shape, np.uint8))
    records = tuple(LevelRecord.missing(lvl, "not found") for lvl in LEVELS)
    return DiscSegmentation(labels, records, (why,), ("no_canal",))


def _paint(
    frame: Frame, column: Column, naming: Naming, level: float
) -> tuple[NDArray[np.uint8], dict[str, list[DiscOutline | None]]]:
    """Outline every named disc on every slice and paint the label volume (canonical).

    A disc is kept on the run of slices around the slab centre where its outline keeps at
    least ``MIN_AREA_RATIO`` of its central area: beyond the vertebral body's side, pedicles
    and muscle can mimic the body-disc-body pattern but give small, broken outlines.
    """
    shape = frame.data.shape
    outlines: dict[str, list[DiscOutline | None]] = {lvl: [] for lvl in naming.gaps}
    for z in range(shape[2]):
        plane = frame.data[:, :, z]
        straight = column.straighten(plane)
        _, plane_level = column_profile(straight, column.inside(plane.shape), column.d_mm, STEP_MM)
        plane_level = plane_level if 0.5 < plane_level / level < 2.0 else level
        for lvl, gap in naming.gaps.items():
            out = outline_disc(straight, gap, column.s_mm, column.d_mm, STEP_MM, plane_level)
            outlines[lvl].append(out)
    for lvl in outlines:
        outlines[lvl] = _within_envelope(_central_run(outlines[lvl]))
    labels = np.zeros(shape, np.uint8)
    s_pix, d_pix = column.coordinates(shape[:2])
    d_idx = np.rint((d_pix - column.d_mm[0]) / STEP_MM).astype(np.intp)
    inside_d = (d_idx >= 0) & (d_idx < column.d_mm.size)
    d_idx = np.clip(d_idx, 0, column.d_mm.size - 1)
    for lvl, per_slice in outlines.items():
        if LEVEL_INDEX.get(lvl, 99) > 7:
            continue
        for z, out in enumerate(per_slice):
            if out is None:
                continue
            top = np.full(column.d_mm.size, np.inf)
            bottom = np.full(column.d_mm.size, -np.inf)
            top[out.d_index] = out.top_mm
            bottom[out.d_index] = out.bottom_mm
            hit = inside_d & (s_pix >= top[d_idx]) & (s_pix <= bottom[d_idx])
            labels[:, :, z][hit & (labels[:, :, z] == 0)] = LEVEL_INDEX[lvl]
    _keep_main_component(labels)
    return labels, outlines


MIN_AREA_RATIO = 0.5


def _within_envelope(per_slice: list[DiscOutline | None]) -> list[DiscOutline | None]:
    """Clip each slice's outline to the central slice's: away from the midline a disc is no
    deeper and no taller (lateral slices cut shorter chords of a kidney-shaped disc)."""
    present = [i for i, o in enumerate(per_slice) if o is not None]
    if not present:
        return per_slice
    ref = per_slice[present[len(present) // 2]]
    top = dict(zip(ref.d_index.tolist(), ref.top_mm, strict=True))
    bottom = dict(zip(ref.d_index.tolist(), ref.bottom_mm, strict=True))
    out: list[DiscOutline | None] = []
    for o in per_slice:
        if o is None:
            out.append(None)
            continue
        keep = np.isin(o.d_index, ref.d_index)
        d = o.d_index[keep]
        t = np.maximum(o.top_mm[keep], [top[j] - ENVELOPE_MM for j in d])
        b = np.minimum(o.bottom_mm[keep], [bottom[j] + ENVELOPE_MM for j in d])
        ok = b > t
        out.append(DiscOutline(d[ok], t[ok], b[ok]) if ok.any() else None)
    return out


ENVELOPE_MM = 0.5


def _central_run(per_slice: list[DiscOutline | None]) -> list[DiscOutline | None]:
    """Keep the outlines on the contiguous run of slices around the centre whose area stays
    above MIN_AREA_RATIO of the central (median of the three middle) area."""
    n = len(per_slice)
    areas = np.array([o.area_mm2 if o is not None else 0.0 for o in per_slice])
    centre = n // 2
    ref = float(np.median(areas[max(0, centre - 1) : centre + 2]))
    if ref <= 0:
        return [None] * n
    keep = [False] * n
    for direction in (-1, 1):
        z = centre if direction == -1 else centre + 1
        while 0 <= z < n and areas[z] >= MIN_AREA_RATIO * ref:
            keep[z] = True
            z += direction
    return [o if k else None for o, k in zip(per_slice, keep, strict=True)]


def _keep_main_component(labels: NDArray[np.uint8]) -> None:
    """Each disc label keeps its largest 3D connected piece (slices where a neighbouring
    structure mimicked the disc fall away)."""
    for index in np.unique(labels[labels > 0]):
        mask = labels == index
        pieces, n = ndi.label(mask)
        if n > 1:
            sizes = np.bincount(pieces.ravel())[1:]
            labels[mask & (pieces != 1 + int(np.argmax(sizes)))] = 0


def _records(naming, outlines, back, affine, frame) -> tuple[LevelRecord, ...]:
    voxel_mm3 = float(np.prod(frame.voxel_mm))
    out = []
    for lvl in LEVELS:
        index = LEVEL_INDEX[lvl]
        mask = back == index
        if lvl not in naming.gaps or not mask.any():
            out.append(LevelRecord.missing(lvl, naming.missing.get(lvl, "not found")))
            continue
        centroid = _centroid_mm(mask, affine)
        n_slices = int(sum(o is not None for o in outlines[lvl]))
        height = _mid_height(outlines[lvl])
        out.append(
            LevelRecord(
                lvl,
                index,
                True,
                naming.confidence[lvl],
                centroid,
                float(mask.sum()) * voxel_mm3,
                height,
                n_slices,
                naming.notes.get(lvl, ""),
            )
        )
    return tuple(out)


def _centroid_mm(mask: NDArray[np.bool_], affine: NDArray) -> tuple[float, float, float]:
    """Centre of a mask in world (scanner) mm."""
    ijk = np.argwhere(mask).mean(axis=0)
    x, y, z = (np.asarray(affine) @ np.append(ijk, 1.0))[:3]
    return float(x), float(y), float(z)


def _mid_height(outlines: list[DiscOutline | None]) -> float:
    """Disc height (mm) at the middle third of its depth, on the central slice that has it."""
    present = [o for o in outlines if o is not None and o.d_index.size]
    if not present:
        return float("nan")
    o = present[len(present) // 2]
    n = o.d_index.size
    mid = slice(n // 3, max(n // 3 + 1, 2 * n // 3))
    return float(np.median(o.bottom_mm[mid] - o.top_mm[mid]))


def records_from_labels(
    labels: NDArray, affine: NDArray, *, confidence: float
) -> tuple[tuple[LevelRecord, ...], list[str]]:
    """Records of a finished label volume (imported or corrected masks): centroid, volume and
    the number of sagittal slices; the height is not measured here (NaN)."""
    voxel = np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0))
    voxel_mm3 = float(np.prod(voxel))
    records, missing = [], []
    for lvl in LEVELS:
        index = LEVEL_INDEX[lvl]
        mask = labels == index
        if not mask.any():
            records.append(LevelRecord.missing(lvl, "not in mask"))
            missing.append(lvl)
            continue
        centroid = _centroid_mm(mask, affine)
        slice_axis = int(np.argmax(np.abs(np.asarray(affine)[0, :3])))  # the left-right axis
        other = tuple(a for a in range(3) if a != slice_axis)
        n_slices = int(mask.any(axis=other).sum())
        records.append(
            LevelRecord(
                level=lvl,
                index=index,
                found=True,
                confidence=confidence,
                centroid_mm=centroid,
                volume_mm3=float(mask.sum()) * voxel_mm3,
                height_mm=float("nan"),
                n_slices=n_slices,
            )
        )
    return tuple(records), missing
