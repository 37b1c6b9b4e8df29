"""Disc masks from other tools and from people, mapped to the project's level labels.

Schemes (see the SPINEPS/TPTBox, TotalSpineSeg and SPIDER label conventions):

* ``spineps``: the instance mask (``seg-vert``). Disc = 100 + the number of the vertebra
  above it (vertebrae 8-19 T1-T12, 20-25 L1-L6, 28 T13): 118 T11/T12 ... 124 L5/S1; with an
  L6 (125), 124 is L5/L6 and 125 is L6/S1; 128 is T13/L1.
* ``totalspineseg``: discs 71-82 C7/T1..T11/T12, 91-95 T12/L1..L4/L5, 100 L5/S1.
* ``spider``: discs numbered from the bottom, 201 = L5/S1 ... 207 = T11/T12.
* ``project``: already 1..7 = T11/T12..L5/S1 (a corrected t2quant mask).
* a ``.tsv`` file with columns ``label`` and ``level`` (level names such as ``L4/L5``, or
  ``ignore``), for manual masks with their own numbering.

Transitional levels (L5/L6, L6/S1, T13/L1) are never renamed into the standard seven: they
stay out of the label volume and are reported with ``transitional_anatomy``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from t2quant.errors import InputError
from t2quant.grids import require_same_grid
from t2quant.levels import LEVEL_INDEX, LEVELS
from t2quant.segmentation.core import DiscSegmentation, records_from_labels

__all__ = ["SCHEMES", "import_labels", "scheme_mapping"]

SCHEMES = ("spineps", "totalspineseg", "spider", "project")


def _spineps(values: set[int]) -> dict[int, str]:
    has_l6 = 125 in values or 25 in values
    names = {118: "T11/T12", 119: "T12/L1", 120: "L1/L2", 121: "L2/L3", 122: "L3/L4"}
    names[123] = "L4/L5"
    if has_l6:
        names.update({124: "L5/L6", 125: "L6/S1"})
    else:
        names[124] = "L5/S1"
    names[128] = "T13/L1"
    return names


_TOTALSPINESEG = {82: "T11/T12", 91: "T12/L1", 92: "L1/L2", 93: "L2/L3", 94: "L3/L4"}
_TOTALSPINESEG.update({95: "L4/L5", 100: "L5/S1"})
_SPIDER = {200 + i: name for i, name in enumerate(LEVELS[::-1], start=1)}


def _is_disc_label(scheme: str, value: int) -> bool:
    """Whether an unmapped value is a disc in its scheme (vertebrae, endplates and other
    structures are expected in the input and ignored without a warning)."""
    if scheme == "spineps":
        return 100 < value < 200
    if scheme == "totalspineseg":
        return 63 <= value <= 100
    if scheme == "spider":
        return 200 < value < 300
    return True


def scheme_mapping(scheme: str | Path, values: set[int]) -> dict[int, str]:
    """Input label value -> level name for a scheme or a mapping TSV."""
    if str(scheme).endswith(".tsv"):
        table = pd.read_csv(scheme, sep="\t", dtype=str)
        missing = {"label", "level"} - set(table.columns)
        if missing:
            raise InputError(f"{scheme}: mapping TSV needs columns 'label' and 'level'")
        return {int(row.label): str(row.level) for row in table.itertuples()}
    if scheme == "spineps":
        return _spineps(values)
    if scheme == "totalspineseg":
        return dict(_TOTALSPINESEG)
    if scheme == "spider":
        return dict(_SPIDER)
    if scheme == "project":
        return {i + 1: name for i, name in enumerate(LEVELS)}
    raise InputError(f"unknown label scheme {scheme!r}; use one of {SCHEMES} or a .tsv mapping")


def import_labels(
    mask: NDArray,
    scheme: str | Path,
    *,
    mask_affine: NDArray | None = None,
    image_shape: tuple[int, ...] | None = None,
    image_affine: NDArray | None = None,
    name: str = "mask",
) -> DiscSegmentation:
    """Map an external or manual disc mask to the project labels (1..7).

    Raises
    ------
    ValueError
        When the mask's grid (shape or affine) differs from the image it belongs to.
    """
    mask = np.asarray(mask)
    if image_shape is not None or image_affine is not None:
        ref_shape = mask.shape if image_shape is None else image_shape
        require_same_grid(name, mask.shape, mask_affine, ref_shape, image_affine, "mask")
    values = {int(v) for v in np.unique(mask) if v != 0}
    mapping = scheme_mapping(scheme, values)
    labels = np.zeros(mask.shape[:3], np.uint8)
    warnings, flags = [], set()
    ignored = sorted(v for v in values if v not in mapping)
    for value in sorted(values & set(mapping)):
        level = mapping[value]
        if level == "ignore":
            continue
        if level in LEVELS:
            labels[mask == value] = LEVEL_INDEX[level]
        elif level in ("L5/L6", "L6/S1", "T13/L1"):
            warnings.append(f"{name}: label {value} is {level} (transitional anatomy); not renamed")
            flags.update({"transitional_anatomy", "level_uncertain"})
        else:
            raise InputError(f"{name}: label {value} maps to unknown level {level!r}")
    other_discs = [v for v in ignored if _is_disc_label(str(scheme), v)]
    if other_discs:
        warnings.append(
            f"{name}: disc labels {other_discs} are outside T11/T12..L5/S1 (or not discs in the "
            f"{scheme} scheme); ignored"
        )
    affine = mask_affine if mask_affine is not None else np.eye(4)
    records, missing = records_from_labels(labels, affine, confidence=1.0)
    for level in missing:
        warnings.append(f"{level}: not in the imported mask")
        flags.add("missing_level")
    return DiscSegmentation(labels, records, tuple(warnings), tuple(sorted(flags)))
