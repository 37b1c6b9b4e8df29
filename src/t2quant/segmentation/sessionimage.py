"""The image a session's discs are segmented and measured on, on the MESE grid.

A session's own T2-weighted image is the better picture of the discs; it is resampled onto
the grid of the echoes (trilinear) so the labels, the T2 map and the features share one
grid. Without a T2w, the T2-weighted image derived from the echoes is used
(:func:`t2quant.segmentation.files.mese_t2w_image`).
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from t2quant.grids import same_grid
from t2quant.io import save_nifti

__all__ = ["segmentation_image"]


def segmentation_image(
    reference: Path, out: Path, *, t2w: Path | None = None, echoes: list[Path] | None = None
) -> tuple[Path, str]:
    """Write the session's segmentation image onto the grid of ``reference`` (a map of the
    MESE fit): ``t2w`` when given, else the image derived from the ``echoes`` (a BIDS MESE
    series). Returns its path and a note of its source."""
    ref = nib.load(str(reference))
    if t2w is not None:
        img = nib.load(str(t2w))
        if same_grid(img.shape, img.affine, ref.shape, ref.affine):
            data = np.asanyarray(img.dataobj).astype(np.float32)
            return save_nifti(data, ref.affine, out), f"{t2w} (on the MESE grid)"
        from nibabel.processing import resample_from_to

        moved = resample_from_to(img, (ref.shape[:3], ref.affine), order=1)
        data = np.asarray(moved.dataobj, dtype=np.float32)
        return save_nifti(data, ref.affine, out), f"{t2w} resampled onto the MESE grid"
    from t2quant.io.echoes import load_bids_echoes
    from t2quant.segmentation.files import mese_t2w_image

    me = load_bids_echoes(echoes or [])
    image = mese_t2w_image(me.data, me.te_ms)
    return save_nifti(image, me.affine, out), "T2-weighted image derived from the echoes"
