"""``disc_features``: one row of measurements per disc level of a session.

Inputs are arrays in the canonical ``PIR`` frame (see :mod:`t2quant.segmentation.frame`): a
label volume (0, or 1..7 = T11/T12..L5/S1), the T2-weighted image the grader looks at, and
optionally a T2 map in ms. No file I/O here. A one-slice image (left-right length 1) is
measured on that slice; what needs several slices (the volume) is NaN, with the reason in
``qc_reason``.

Default T2: ``t2_mean_ms`` is the whole-disc mean over every labelled voxel, as in the
whole-disc T2 of the trial analysis. ``t2_eroded_*`` repeat the statistics without the
one-voxel in-plane outline, which carries partial volume with endplates and CSF.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from t2quant.features.appearance import appearance_scores
from t2quant.features.geometry import (
    ap_length_mm,
    bulge_index,
    disc_axes,
    heights_mm,
)
from t2quant.features.intensity import band_depth, summary, two_peak_mixture
from t2quant.features.patch import disc_patch
from t2quant.features.regions import csf_signal, erode_in_plane, nucleus_mask, vertebra_signal
from t2quant.levels import LEVEL_INDEX, LEVELS

__all__ = [
    "BAND_DEPTH",
    "FEATURE_COLUMNS",
    "MIN_VOXELS",
    "ONE_SLICE_REASON",
    "disc_features",
    "mid_slice",
    "session_reference",
]

MIN_VOXELS = 20  # fewer labelled voxels than this: the disc is not measured
BAND_DEPTH = 0.08  # a dip this deep across the nucleus counts as a horizontal band
ONE_SLICE_REASON = "one sagittal slice: volume not measured (it needs several slices)"

FEATURE_COLUMNS: dict[str, str] = {
    "level": "disc level, T11/T12 .. L5/S1",
    "level_index": "label index 1..7",
    "qc_status": "ok, or failed (not measured; see qc_reason)",
    "qc_reason": "why a disc was not measured, or what limits a measurement",
    "n_voxels": "labelled voxels",
    "volume_mm3": "disc volume (mm3); NaN for a one-slice image (see qc_reason)",
    "n_slices": "sagittal slices the disc spans",
    "midsagittal_area_mm2": "disc area on its mid-sagittal slice (mm2)",
    "ap_length_mm": "disc length along its own axis on the mid-sagittal slice (mm)",
    "height_anterior_mm": "mean height over a strip at 15% of the length from the front (mm)",
    "height_middle_mm": "mean height over a strip at the middle of the disc (mm)",
    "height_posterior_mm": "mean height over a strip at 85% of the length from the front (mm)",
    "disc_height_index": "middle height / mean height of the adjacent vertebral bodies",
    "height_ratio": "middle height / median middle height of the session's measured discs",
    "bulge_index": "length at mid-height / length next to the endplates - 1",
    "t2_mean_ms": "whole-disc mean T2 (ms); the default disc T2",
    "t2_median_ms": "whole-disc median T2 (ms)",
    "t2_sd_ms": "whole-disc SD of T2 (ms)",
    "t2_iqr_ms": "whole-disc interquartile range of T2 (ms)",
    "t2_eroded_mean_ms": "mean T2 without the one-voxel in-plane outline (ms)",
    "t2_eroded_median_ms": "median T2 without the outline (ms)",
    "t2_eroded_sd_ms": "SD of T2 without the outline (ms)",
    "t2_eroded_iqr_ms": "interquartile range of T2 without the outline (ms)",
    "t2_failed_fraction": "share of disc voxels whose T2 fit failed (excluded above)",
    "nucleus_t2_ms": "mean T2 of the nucleus region (ms)",
    "annulus_t2_ms": "mean T2 of the annulus region (ms)",
    "nucleus_annulus_t2_contrast": "(nucleus - annulus) / (nucleus + annulus) of mean T2",
    "nucleus_signal_au": "median T2-weighted signal of the nucleus region (image units)",
    "annulus_signal_au": "median T2-weighted signal of the annulus region (image units)",
    "nucleus_annulus_contrast": "(nucleus - annulus) / (nucleus + annulus) of median signal",
    "csf_signal_au": "median signal of the CSF in the canal behind the disc (image units)",
    "n_csf_voxels": "voxels taken as CSF",
    "nucleus_csf_ratio": "nucleus signal / CSF signal",
    "vertebra_signal_au": "median signal of the vertebral bodies above and below the disc (mean "
    "of the two sides; image units)",
    "n_vertebra_voxels": "voxels taken as vertebral body",
    "nucleus_vertebra_ratio": "nucleus signal / vertebral body signal",
    "nucleus_brightest_ratio": "nucleus signal / that of the brightest measured disc of the same "
    "spine (1 = the brightest)",
    "peak_low_au": "darker peak of a two-Gaussian mixture of the disc's signal",
    "peak_high_au": "brighter peak of the mixture",
    "peak_separation_au": "distance between the two peaks (image units)",
    "peak_separation_csf": "peak separation / CSF signal",
    "nucleus_signal_cv": "SD / mean of the nucleus signal (0 = homogeneous)",
    "band_depth": "depth of the deepest dip across the nucleus's height (0 = none)",
    "horizontal_band": "band_depth >= 0.08 (an intranuclear cleft)",
    "appearance_score": "the disc's look on its mid-sagittal slice, relative to the session's "
    "vertebral bodies, read as an expected Pfirrmann grade (1..5) by the disc-appearance "
    "network trained on radiologists' grades (docs/appearance_model_card.md)",
}
"""Columns of the feature table and what each holds; units are in the names."""


def disc_features(
    labels: NDArray,
    t2w: NDArray,
    voxel_mm: NDArray,
    *,
    t2_ms: NDArray | None = None,
    appearance: bool = True,
) -> pd.DataFrame:
    """Measure every disc level of one session.

    Parameters
    ----------
    labels : (AP, SI, LR) int array
        Disc labels in the canonical ``PIR`` frame, 1..7 = T11/T12..L5/S1.
    t2w : (AP, SI, LR) array
        The T2-weighted image on the same grid (any units; ratios to CSF are unit-free).
    voxel_mm : (3,) array
        Voxel size along the three canonical axes (mm).
    t2_ms : (AP, SI, LR) array, optional
        T2 map in ms, NaN where the fit failed. Without it the T2 columns are NaN.
    appearance : bool
        Run the disc-appearance network (``appearance_score``; the packaged weights, read
        once). False leaves the column NaN (used while training that network).

    Returns
    -------
    pandas.DataFrame
        One row per level of :data:`~t2quant.levels.LEVELS`, columns
        :data:`FEATURE_COLUMNS`. A level without a measurable disc keeps its row, with
        ``qc_status = "failed"``, NaN measurements and the reason in ``qc_reason``.
    """
    labels = np.asarray(labels)
    t2w = np.asarray(t2w, dtype=np.float64)
    voxel_mm = np.asarray(voxel_mm, dtype=np.float64)
    if t2w.shape != labels.shape or (t2_ms is not None and np.shape(t2_ms) != labels.shape):
        raise ValueError(
            f"labels {labels.shape}, T2-weighted image {t2w.shape} and T2 map "
            f"{None if t2_ms is None else np.shape(t2_ms)} must share one grid"
        )
    rows = [_one_disc(labels, t2w, t2_ms, voxel_mm, lvl) for lvl in LEVELS]
    patches = [row.pop("_patch", None) for row in rows]
    table = pd.DataFrame(rows).reindex(columns=list(FEATURE_COLUMNS))
    _session_heights(table, labels, voxel_mm)
    _brightest_disc(table)
    if appearance:
        _appearance(table, patches)
    else:
        table["appearance_score"] = np.nan
    return table


def _failed(level: str, reason: str, n_voxels: int = 0) -> dict:
    return {
        "level": level,
        "level_index": LEVEL_INDEX[level],
        "qc_status": "failed",
        "qc_reason": reason,
        "n_voxels": n_voxels,
    }


def _one_disc(labels, t2w, t2_ms, voxel_mm, level: str) -> dict:
    mask = labels == LEVEL_INDEX[level]
    n = int(mask.sum())
    if n == 0:
        return _failed(level, "not segmented")
    if n < MIN_VOXELS:
        return _failed(level, f"only {n} voxels labelled (fewer than {MIN_VOXELS})", n)
    row = _failed(level, "", n) | {"qc_status": "ok"}
    slices = np.flatnonzero(mask.any(axis=(0, 1)))
    z = mid_slice(mask)
    plane = mask[:, :, z]
    axes = disc_axes(plane, voxel_mm[:2])
    row["_patch"] = disc_patch(t2w[:, :, z], plane, axes, voxel_mm[:2], 1.0)
    h = heights_mm(plane, voxel_mm[:2], axes)
    row |= {
        "volume_mm3": n * float(np.prod(voxel_mm)),
        "n_slices": int(slices.size),
        "midsagittal_area_mm2": float(plane.sum() * np.prod(voxel_mm[:2])),
        "ap_length_mm": ap_length_mm(plane, voxel_mm[:2], axes),
        "height_anterior_mm": h["anterior"],
        "height_middle_mm": h["middle"],
        "height_posterior_mm": h["posterior"],
        "bulge_index": bulge_index(plane, voxel_mm[:2], axes),
    }
    eroded = erode_in_plane(mask)
    nucleus = nucleus_mask(mask, eroded, axes, voxel_mm)
    annulus = mask & ~nucleus
    row |= _t2_columns(t2_ms, mask, eroded, nucleus, annulus)
    row |= _signal_columns(t2w, t2_ms, labels, mask, nucleus, annulus, axes, voxel_mm, z, h)
    reasons = []
    if labels.shape[2] == 1:
        row["volume_mm3"] = float("nan")
        reasons.append(ONE_SLICE_REASON)
    if not nucleus.any():
        reasons.append("no nucleus region (disc too thin for the central region)")
    if not np.isfinite(row["csf_signal_au"]):
        reasons.append("no CSF found behind the disc")
    if not np.isfinite(row["vertebra_signal_au"]):
        reasons.append("no vertebral body found above or below the disc")
    row["qc_reason"] = "; ".join(reasons)
    return row


def mid_slice(mask: NDArray[np.bool_]) -> int:
    """The sagittal slice through a disc's left-right centre of mass (if labelled there),
    else the slice with the largest area; ``mask`` is the disc's ``(AP, SI, LR)`` mask."""
    area = mask.sum(axis=(0, 1))
    z = round(float((area * np.arange(area.size)).sum() / area.sum()))
    return z if area[z] > 0 else int(np.argmax(area))


def _t2_columns(t2_ms, mask, eroded_mask, nucleus, annulus) -> dict:
    if t2_ms is None:
        return {}
    t2 = np.asarray(t2_ms, dtype=np.float64)
    whole = summary(t2[mask])
    eroded = summary(t2[eroded_mask])
    nuc = float(np.nanmean(t2[nucleus])) if np.isfinite(t2[nucleus]).any() else np.nan
    ann = float(np.nanmean(t2[annulus])) if np.isfinite(t2[annulus]).any() else np.nan
    out = {f"t2_{k}_ms": v for k, v in whole.items()}
    out |= {f"t2_eroded_{k}_ms": v for k, v in eroded.items()}
    return out | {
        "t2_failed_fraction": float(1.0 - np.isfinite(t2[mask]).mean()),
        "nucleus_t2_ms": nuc,
        "annulus_t2_ms": ann,
        "nucleus_annulus_t2_contrast": _contrast(nuc, ann),
    }


def _contrast(a: float, b: float) -> float:
    return float((a - b) / (a + b)) if np.isfinite(a + b) and a + b > 0 else float("nan")


def _signal_columns(t2w, t2_ms, labels, mask, nucleus, annulus, axes, voxel_mm, z, h) -> dict:
    nuc = float(np.median(t2w[nucleus])) if nucleus.any() else float("nan")
    ann = float(np.median(t2w[annulus])) if annulus.any() else float("nan")
    csf, n_csf = _csf_near(t2w, t2_ms, labels, mask, axes, voxel_mm, z, h)
    half = 0.5 * np.nanmax([h["anterior"], h["middle"], h["posterior"], 2.0])
    body, n_body = vertebra_signal(
        t2w[:, :, z], mask[:, :, z], labels[:, :, z] > 0, axes, voxel_mm[:2], half
    )
    mix = two_peak_mixture(t2w[mask])
    nuc_values = t2w[nucleus]
    cv = float(nuc_values.std() / nuc_values.mean()) if nuc_values.size > 1 else np.nan
    depth = _band(t2w[:, :, z], nucleus[:, :, z], axes, voxel_mm[:2])
    return {
        "nucleus_signal_au": nuc,
        "annulus_signal_au": ann,
        "nucleus_annulus_contrast": _contrast(nuc, ann),
        "csf_signal_au": csf,
        "n_csf_voxels": n_csf,
        "nucleus_csf_ratio": nuc / csf if csf > 0 else float("nan"),
        "vertebra_signal_au": body,
        "n_vertebra_voxels": n_body,
        "nucleus_vertebra_ratio": nuc / body if body > 0 else float("nan"),
        "peak_low_au": mix.low_mean,
        "peak_high_au": mix.high_mean,
        "peak_separation_au": mix.separation,
        "peak_separation_csf": mix.separation / csf if csf > 0 else float("nan"),
        "nucleus_signal_cv": cv,
        "band_depth": depth,
        "horizontal_band": bool(depth >= BAND_DEPTH) if np.isfinite(depth) else False,
    }


def _csf_near(t2w, t2_ms, labels, mask, axes, voxel_mm, z, h) -> tuple[float, int]:
    """CSF signal behind the disc on its mid-sagittal slice and the two next to it."""
    values, counts = [], []
    half = 0.5 * np.nanmax([h["anterior"], h["middle"], h["posterior"], 2.0])
    for k in (z - 1, z, z + 1):
        if not 0 <= k < mask.shape[2] or not mask[:, :, k].any():
            continue
        t2_plane = None if t2_ms is None else np.asarray(t2_ms)[:, :, k]
        csf, n = csf_signal(
            t2w[:, :, k], t2_plane, mask[:, :, k], labels[:, :, k] > 0, axes, voxel_mm[:2], half
        )
        if n:
            values.append(csf)
            counts.append(n)
    if not values:
        return float("nan"), 0
    return float(np.median(values)), int(sum(counts))


def _band(plane, nucleus_plane, axes, pixel_mm) -> float:
    """Band depth of the nucleus's mean signal profile across its height (mid slice)."""
    ij = np.argwhere(nucleus_plane)
    if ij.shape[0] < 6:
        return float("nan")
    _, w = axes.project(ij * pixel_mm)
    pitch = float(np.abs(axes.across * pixel_mm).sum())
    bins = np.floor((w - w.min()) / pitch).astype(int)
    sums = np.bincount(bins, weights=plane[ij[:, 0], ij[:, 1]])
    counts = np.bincount(bins)
    profile = sums[counts > 0] / counts[counts > 0]
    return band_depth(profile) if profile.size >= 3 else 0.0


def _session_heights(table: pd.DataFrame, labels: NDArray, voxel_mm: NDArray) -> None:
    """Height ratio to the session's median disc, and the disc height index.

    The vertebral body between two labelled discs is the distance between their centres of
    mass less half of each disc's middle height; the disc height index divides the middle
    height by the mean of the bodies above and below that could be measured (one for the
    end discs)."""
    h = table["height_middle_mm"].to_numpy(dtype=float)
    ok = table["qc_status"].eq("ok").to_numpy()
    median = np.nanmedian(h[ok]) if ok.any() else np.nan
    table["height_ratio"] = h / median if np.isfinite(median) and median > 0 else np.nan
    centres = [_centre_mm(labels == LEVEL_INDEX[lvl], voxel_mm) for lvl in LEVELS]
    bodies = np.full(len(LEVELS) - 1, np.nan)
    for i in range(len(LEVELS) - 1):
        if ok[i] and ok[i + 1]:
            gap = float(np.linalg.norm(centres[i] - centres[i + 1]))
            bodies[i] = gap - 0.5 * (h[i] + h[i + 1])
    dhi = np.full(len(LEVELS), np.nan)
    for i in range(len(LEVELS)):
        near = [bodies[j] for j in (i - 1, i) if 0 <= j < bodies.size and bodies[j] > 0]
        if ok[i] and near:
            dhi[i] = h[i] / float(np.mean(near))
    table["disc_height_index"] = dhi


def _brightest_disc(table: pd.DataFrame) -> None:
    """Nucleus signal relative to the brightest measured nucleus of the same spine."""
    nucleus = pd.to_numeric(table["nucleus_signal_au"], errors="coerce")
    ok = table["qc_status"].eq("ok") & nucleus.gt(0)
    top = float(nucleus[ok].max()) if ok.any() else float("nan")
    table["nucleus_brightest_ratio"] = np.where(ok, nucleus / top, np.nan)


def session_reference(table: pd.DataFrame) -> float:
    """The session's vertebral-body signal: the median of ``vertebra_signal_au`` over its
    measured discs (NaN without one). Disc patches are read relative to it."""
    body = pd.to_numeric(table["vertebra_signal_au"], errors="coerce")
    body = body[table["qc_status"].eq("ok") & body.gt(0)]
    return float(body.median()) if len(body) else float("nan")


def _appearance(table: pd.DataFrame, patches: list) -> None:
    """``appearance_score`` of every measured disc (patches taken with reference 1 are
    divided by the session's vertebral-body signal here)."""
    table["appearance_score"] = np.nan
    ref = session_reference(table)
    have = [i for i, p in enumerate(patches) if p is not None]
    if not have or not np.isfinite(ref):
        return
    x = np.stack([patches[i] for i in have])
    x[:, 0] -= np.float32(np.log(ref))
    score, _ = appearance_scores(x)
    table.loc[have, "appearance_score"] = score


def _centre_mm(mask: NDArray[np.bool_], voxel_mm: NDArray) -> NDArray:
    if not mask.any():
        return np.full(3, np.nan)
    return np.argwhere(mask).mean(axis=0) * voxel_mm
