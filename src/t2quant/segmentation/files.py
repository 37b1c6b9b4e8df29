"""Load what ``t2quant segment`` is given, run the segmenter or an import, write the files."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from t2quant.errors import InputError
from t2quant.io import bids
from t2quant.io.images import describe_invalid, invalid_voxels, read_image, read_label_mask
from t2quant.segmentation.core import DiscSegmentation, segment_discs
from t2quant.segmentation.imports import import_labels
from t2quant.segmentation.outputs import write_segmentation

__all__ = [
    "SegmentationInput",
    "load_t2w_image",
    "mese_t2w_image",
    "segment_to_files",
]

T2W_TE_MS = (60.0, 120.0)
METHOD = (
    "t2quant learned segmenter (2D U-Net trained on synthetic phantom images, fine-tuned on "
    "three real volumes with manual disc masks; onnxruntime; discs named upward from the "
    "sacrum class; docs/segmentation_model_card.md)"
)


def mese_t2w_image(data: NDArray, te_ms: NDArray) -> NDArray[np.float32]:
    """A T2-weighted image from multi-echo data ``(..., n_echoes)``: the mean of the echoes
    with TE in 60-120 ms (or the echo nearest 90 ms when none is)."""
    te = np.asarray(te_ms, dtype=np.float64)
    pick = (te >= T2W_TE_MS[0]) & (te <= T2W_TE_MS[1])
    if not pick.any():
        pick = np.arange(te.size) == int(np.argmin(np.abs(te - 90.0)))
    return np.asarray(data[..., pick], dtype=np.float32).mean(axis=-1)


MAX_INVALID_FRACTION = 0.5
"""A segmentation image with more invalid (NaN, infinite, negative) voxels than this share is
refused; with fewer, they are masked out and the session is flagged."""


@dataclass(frozen=True)
class SegmentationInput:
    """What is segmented: the image (invalid voxels set to 0), the affine, the output stem,
    the source (for sidecars), the invalid voxels and notes."""

    image: NDArray
    affine: NDArray
    stem: str
    source: str
    invalid: NDArray
    notes: tuple[str, ...] = ()


def load_t2w_image(inputs: list[Path], te_ms) -> SegmentationInput:
    """The segmentation input from a T2-weighted NIfTI (3D, or one 2D slice) or from
    multi-echo data.

    Raises
    ------
    InputError
        When more than half of the image is NaN, infinite or negative.
    """
    if len(inputs) == 1 and inputs[0].is_file() and _is_single_image(inputs[0]):
        img = read_image(inputs[0], what="T2-weighted image", ndims=(2, 3), rescale=True)
        data = img.data if img.data.ndim == 3 else img.data[:, :, None]
        invalid = img.invalid if img.invalid.ndim == 3 else img.invalid[:, :, None]
        loaded = SegmentationInput(data, img.affine, bids.stem_of(inputs[0].name),
                                   str(inputs[0]), invalid, img.notes)  # fmt: skip
    else:
        from t2quant.io.echoes import load_input

        me = load_input(inputs, te_ms)
        image = mese_t2w_image(me.data, me.te_ms)
        invalid = invalid_voxels(image)
        notes = (f"invalid (NaN, infinite or negative) echo values: {describe_invalid(invalid)}",)
        loaded = SegmentationInput(
            image, me.affine, me.stem,
            ", ".join(map(str, me.sources)), invalid, notes if invalid.any() else (),
        )  # fmt: skip
    return _masked(loaded)


def _is_single_image(path: Path) -> bool:
    """A file holding one image (2D, 3D, or 4D with one volume), not a multi-echo 4D."""
    import nibabel as nib

    try:
        shape = nib.load(str(path)).shape
    except Exception:
        return True  # let the image reader report what is wrong with it
    return len(shape) in (2, 3) or (len(shape) == 4 and shape[3] == 1)


def _masked(loaded: SegmentationInput) -> SegmentationInput:
    share = float(loaded.invalid.mean()) if loaded.invalid.size else 0.0
    if share > MAX_INVALID_FRACTION:
        raise InputError(
            f"{loaded.source}: {describe_invalid(loaded.invalid)} are NaN, infinite or negative: "
            "too much of the image is unusable to segment; re-export or re-reconstruct it"
        )
    if not loaded.invalid.any():
        return loaded
    image = np.where(loaded.invalid, 0, loaded.image).astype(np.float32)
    return replace(loaded, image=image)


def segment_to_files(
    inputs: list[Path], outdir: Path, *, orientation: str | None = None,
    labels_from: tuple[str, str] | None = None, te_ms=None, stem: str | None = None,
    threads: int | None = None,
) -> tuple[DiscSegmentation, dict[str, Path]]:  # fmt: skip
    """Segment (or import) the discs of ``inputs`` and write the segmentation files named
    after ``stem`` (default: the input's own stem) into ``outdir``; ``threads`` are the
    network's onnxruntime threads."""
    src = load_t2w_image([Path(p) for p in inputs], te_ms)
    stem = stem or src.stem
    if labels_from is not None:
        scheme, mask_path = labels_from
        mask, mask_affine = read_label_mask(mask_path, what="disc mask")
        seg = import_labels(
            mask if mask.ndim == 3 else mask[:, :, None], scheme, mask_affine=mask_affine,
            image_shape=src.image.shape, image_affine=src.affine, name=str(mask_path),
        )  # fmt: skip
        method = f"imported from {mask_path} ({scheme} labels)"
    else:
        seg = segment_discs(src.image, src.affine, orientation=orientation, name=src.source,
                            threads=threads)  # fmt: skip
        method = METHOD
    seg = _without_invalid(seg, src)
    paths = write_segmentation(seg, src.image, src.affine, outdir, stem, source=src.source,
                               orientation=orientation, method=method)  # fmt: skip
    return seg, paths


def _without_invalid(seg: DiscSegmentation, src: SegmentationInput) -> DiscSegmentation:
    """No label on an invalid voxel; the session is flagged ``invalid_voxels`` with their
    share and place."""
    if not src.invalid.any():
        return seg
    labels = np.where(src.invalid, 0, seg.labels).astype(seg.labels.dtype)
    warning = f"{src.invalid.mean():.1%} of the image was masked out: " + "; ".join(src.notes)
    return replace(seg, labels=labels, flags=(*seg.flags, "invalid_voxels"),
                   warnings=(*seg.warnings, warning))  # fmt: skip
