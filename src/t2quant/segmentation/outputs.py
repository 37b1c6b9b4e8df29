"""Files of a segmentation: the label volume, its BIDS lookup, the per-level table and a QC
picture. Every file is written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from t2quant import __version__
from t2quant.io import atomic_path, bids, save_nifti, write_json, write_tsv
from t2quant.levels import ABBREVIATIONS, LEVEL_COLORS, LEVELS

__all__ = ["dseg_lookup", "records_table", "write_segmentation"]


def dseg_lookup() -> pd.DataFrame:
    """The BIDS ``dseg.tsv`` lookup of the seven disc labels."""
    return pd.DataFrame(
        {
            "index": range(1, len(LEVELS) + 1),
            "name": [f"disc {lvl}" for lvl in LEVELS],
            "abbreviation": [ABBREVIATIONS[lvl] for lvl in LEVELS],
            "color": [LEVEL_COLORS[lvl] for lvl in LEVELS],
        }
    )


def records_table(seg) -> pd.DataFrame:
    """One row per level: found, confidence, centroid (world mm), volume, height, warnings."""
    rows = []
    for r in seg.records:
        x, y, z = r.centroid_mm if r.centroid_mm is not None else (np.nan,) * 3
        level_warnings = [w for w in seg.warnings if w.startswith(r.level)]
        rows.append(
            {
                "level": r.level,
                "index": r.index,
                "found": r.found,
                "confidence": round(r.confidence, 3),
                "centroid_x_mm": x,
                "centroid_y_mm": y,
                "centroid_z_mm": z,
                "volume_mm3": round(r.volume_mm3, 1),
                "height_mm": round(r.height_mm, 2) if np.isfinite(r.height_mm) else np.nan,
                "n_slices": r.n_slices,
                "note": r.note,
                "warnings": "; ".join(level_warnings),
            }
        )
    return pd.DataFrame(rows)


def write_segmentation(
    seg, image: NDArray, affine: NDArray, outdir: str | Path, stem: str, *, source: str = "",
    orientation: str | None = None, method: str = "",
) -> dict[str, Path]:  # fmt: skip
    """Write ``<stem>_dseg.nii.gz``, ``<stem>_dseg.tsv``, ``<stem>_discs.tsv`` (+ JSON with
    the warnings and flags) and ``<stem>_qc.png`` into ``outdir``."""
    out = Path(outdir)
    paths = {key: out / name for key, name in bids.segmentation_names(stem).items()}
    save_nifti(seg.labels.astype(np.uint8), affine, paths["dseg"], dtype=np.uint8)
    write_tsv(dseg_lookup(), paths["lookup"])
    write_tsv(records_table(seg), paths["discs"])
    write_json(
        {
            "Sources": [source] if source else [],
            "Method": method,
            "Orientation": orientation or "from the affine",
            "Flags": list(seg.flags),
            "Warnings": list(seg.warnings),
            "SoftwareVersion": f"t2quant {__version__}",
        },
        paths["discs_json"],
    )
    qc_picture(seg, image, affine, paths["qc"], orientation=orientation)
    return paths


def qc_slices(labels: NDArray) -> list[int]:
    """Sagittal slices of a canonical ``PIR`` label volume to show: the disc's centre and a
    quarter of its span to either side (or of the image without discs); one for one slice."""
    nz = labels.shape[2]
    if nz == 1:
        return [0]
    present = np.flatnonzero(labels.any(axis=(0, 1)))
    if not present.size:
        return [nz // 4, nz // 2, 3 * nz // 4]
    span = present[-1] - present[0]
    return [present[0] + span // 4, (present[0] + present[-1]) // 2, present[-1] - span // 4]


def qc_picture(seg, image: NDArray, affine: NDArray, path: Path, *, orientation=None) -> Path:
    """Three sagittal slices (centre and either side; one for a one-slice image) with each
    disc coloured and named."""
    import nibabel.orientations as nio
    from matplotlib.colors import ListedColormap

    from t2quant.plotting import pyplot
    from t2quant.segmentation.frame import to_canonical

    plt = pyplot()

    frame = to_canonical(image, affine, orientation=orientation)
    lab = nio.apply_orientation(np.asarray(seg.labels).astype(int), frame.transform)
    slices = qc_slices(lab)
    nz = frame.data.shape[2]
    colors = ListedColormap(["#00000000"] + [LEVEL_COLORS[lvl] for lvl in LEVELS])
    aspect = frame.voxel_mm[1] / frame.voxel_mm[0]
    fig, axes = plt.subplots(1, len(slices), figsize=(4 * len(slices), 6.5), squeeze=False)
    hi = np.percentile(frame.data, 99.5)
    for ax, z in zip(axes[0], slices, strict=True):
        ax.imshow(frame.data[:, :, z].T, cmap="gray", vmin=0, vmax=hi, aspect=aspect)
        ax.imshow(np.ma.masked_equal(lab[:, :, z].T, 0), cmap=colors, vmin=0, vmax=7,
                  alpha=0.55, aspect=aspect, interpolation="nearest")  # fmt: skip
        for k, lvl in enumerate(LEVELS, start=1):
            pts = np.argwhere(lab[:, :, z] == k)
            if pts.size:
                x, y = pts.mean(axis=0)
                ax.text(x - 25 / frame.voxel_mm[0], y, lvl, color=LEVEL_COLORS[lvl], fontsize=8,
                        ha="right", va="center", weight="bold")  # fmt: skip
        ax.set_title(f"sagittal slice {z + 1} of {nz}", fontsize=9)
        ax.axis("off")
    note = "; ".join(seg.flags) if seg.flags else "no flags"
    fig.suptitle(f"{bids.stem_of(path.name)}: {note}", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return path
