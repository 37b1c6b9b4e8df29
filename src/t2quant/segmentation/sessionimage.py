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

from t2quant.io import save_nifti

__all__ = ["segmentation_image"]


def segmentation_image(anat_dir: Path, reference: Path, out: Path) -> tuple[Path, str]:
    """Write the segmentation image of the session in ``anat_dir`` onto the grid of
    ``reference`` (a map of the MESE fit); returns its path and a note of its source."""
    ref = nib.load(str(reference))
    t2w = sorted(Path(anat_dir).glob("*_T2w.nii*"))
    if t2w:
        img = nib.load(str(t2w[0]))
        same = img.shape[:3] == ref.shape[:3] and np.allclose(img.affine, ref.affine, atol=1e-3)
        if same:
            data = np.asanyarray(img.dataobj).astype(np.float32)
            return save_nifti(data, ref.affine, out), f"{t2w[0]} (on the MESE grid)"
        from nibabel.processing import resample_from_to

        moved = resample_from_to(img, (ref.shape[:3], ref.affine), order=1)
        data = np.asarray(moved.dataobj, dtype=np.float32)
        return save_nifti(data, ref.affine, out), f"{t2w[0]} resampled onto the MESE grid"
    from t2quant.io.echoes import load_bids_session
    from t2quant.segmentation.files import mese_t2w_image

    me = load_bids_session(anat_dir)
    image = mese_t2w_image(me.data, me.te_ms)
    return save_nifti(image, me.affine, out), "T2-weighted image derived from the echoes"
