"""Load what ``t2quant segment`` is given, run the segmenter or an import, write the files."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
from numpy.typing import NDArray

from t2quant.io import bids
from t2quant.segmentation.core import DiscSegmentation, segment_discs
from t2quant.segmentation.imports import import_labels
from t2quant.segmentation.outputs import write_segmentation

__all__ = ["load_t2w_image", "mese_fluid_image", "mese_t2w_image", "segment_to_files"]

T2W_TE_MS = (60.0, 120.0)


def mese_t2w_image(data: NDArray, te_ms: NDArray) -> NDArray[np.float32]:
    """A T2-weighted image from multi-echo data ``(..., n_echoes)``: the mean of the echoes
    with TE in 60-120 ms (or the echo nearest 90 ms when none is)."""
    te = np.asarray(te_ms, dtype=np.float64)
    pick = (te >= T2W_TE_MS[0]) & (te <= T2W_TE_MS[1])
    if not pick.any():
        pick = np.arange(te.size) == int(np.argmin(np.abs(te - 90.0)))
    return np.asarray(data[..., pick], dtype=np.float32).mean(axis=-1)


def mese_fluid_image(data: NDArray, te_ms: NDArray) -> NDArray[np.float32]:
    """An image in which fluid is brightest, from multi-echo data ``(..., n_echoes)``.

    ``late**2 / early``: ``late`` is the mean of the last third of the echoes, ``early`` the
    mean of the second to fourth echoes (the first echo alone with fewer than 6). That is the
    late signal times the late/early ratio ``exp(-dTE / T2)``: long-T2 fluid keeps its
    signal while nucleus, fat and marrow fall by the ratio once more, and air stays dark
    because its late signal is. Proton density and T1 weighting enter once, through ``late``.
    """
    te = np.asarray(te_ms, dtype=np.float64)
    order = np.argsort(te)
    n = te.size
    early_idx = order[1:4] if n >= 6 else order[:1]
    late_idx = order[-max(1, n // 3) :]
    early = np.asarray(data[..., early_idx], dtype=np.float32).mean(axis=-1)
    late = np.asarray(data[..., late_idx], dtype=np.float32).mean(axis=-1)
    return (late * late / np.maximum(early, np.finfo(np.float32).tiny)).astype(np.float32)


def load_t2w_image(inputs: list[Path], te_ms) -> tuple[NDArray, NDArray | None, NDArray, str, str]:
    """(image, fluid image or None, affine, stem, source) from a 3D NIfTI or multi-echo
    input."""
    if len(inputs) == 1 and inputs[0].is_file():
        img = nib.load(str(inputs[0]))
        if len(img.shape) == 3 or (len(img.shape) == 4 and img.shape[3] == 1):
            stem = bids.stem_of(inputs[0].name)
            return np.asanyarray(img.dataobj), None, img.affine, stem, str(inputs[0])
    from t2quant.io.echoes import load_input

    me = load_input(inputs, te_ms)
    return (
        mese_t2w_image(me.data, me.te_ms), mese_fluid_image(me.data, me.te_ms),
        me.affine, me.stem, ", ".join(map(str, me.sources)),
    )  # fmt: skip


def segment_to_files(
    inputs: list[Path], outdir: Path, *, orientation: str | None = None,
    labels_from: tuple[str, str] | None = None, te_ms=None, stem: str | None = None,
) -> tuple[DiscSegmentation, dict[str, Path]]:  # fmt: skip
    """Segment (or import) the discs of ``inputs`` and write the segmentation files named
    after ``stem`` (default: the input's own stem) into ``outdir``."""
    image, fluid, affine, found_stem, source = load_t2w_image([Path(p) for p in inputs], te_ms)
    stem = stem or found_stem
    if labels_from is not None:
        scheme, mask_path = labels_from
        mask_img = nib.load(mask_path)
        seg = import_labels(
            np.asanyarray(mask_img.dataobj).astype(np.int32), scheme, mask_affine=mask_img.affine,
            image_shape=image.shape, image_affine=affine, name=str(mask_path),
        )  # fmt: skip
        method = f"imported from {mask_path} ({scheme} labels)"
    else:
        seg = segment_discs(image, affine, fluid=fluid, orientation=orientation, name=source)
        method = "t2quant classical (canal-guided column profile, sacrum-anchored naming)"
    paths = write_segmentation(
        seg, image, affine, outdir, stem, source=source, orientation=orientation, method=method
    )
    return seg, paths
