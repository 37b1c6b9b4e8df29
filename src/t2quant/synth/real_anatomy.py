"""A ground-truth phantom built on a real lumbar T2-weighted MRI and its manual disc masks.

The geometric phantom (:mod:`t2quant.synth.phantom`) draws idealised anatomy. This module keeps
the anatomy of a real scan instead: the voxel grid, the shapes of the discs, vertebrae, thecal
sac and soft tissue, and their texture come from a real sagittal T2-weighted image, and only
the relaxation properties are assigned. The result is a
:class:`~t2quant.synth.phantom.SpinePhantom`, so
:func:`~t2quant.synth.acquisition.simulate_mese` and the rest of the pipeline run on it
unchanged.

Data
----
Written for the intervertebral-disc data of one asymptomatic young adult (subject 11) from
R. Menezes-Reis et al., "Lumbar intervertebral discs T2 relaxometry and T1rho relaxometry
correlation with age in asymptomatic young adults", Quant Imaging Med Surg 6(4):402-412, 2016,
doi:10.21037/qims.2016.08.01 (cite it wherever this image is used). Its manual masks label
L5/S1..L1/L2 as 1..5 (:data:`MENEZES_REIS_LABELS`); T12/L1 (at the top edge of the field of
view) and T11/T12 are not labelled. The file stores no orientation: its array axes run
superior->inferior, anterior->posterior and left-right, so the caller states them
(``axcodes="IPR"``; the left-right sense is unknown, R is assumed, which only mirrors the
volume). The core function does no file I/O: it takes arrays.

How tissue is derived (everything that is not a labelled disc)
--------------------------------------------------------------
1. Body versus air. The image is smoothed (Gaussian, sigma 2 mm) and thresholded at the lower
   of the two three-class multi-Otsu thresholds of its log intensity. Of the dark connected
   regions that touch the array border and are large (at least 1% of the voxels and a quarter
   of the largest such region), the one with the lowest median smoothed intensity is air;
   everything else, with its holes filled, is body, except that voxels within 3 mm of the air
   whose lightly smoothed intensity is below the threshold are air too (this trims the skin rim
   that the smoothing spreads into the air). Air gets ``Tissue.BACKGROUND`` (proton density 0).
   Limits: needs air darker than the surrounding tissue after smoothing, a continuous skin line
   and a sizeable air region; in this volume the air noise floor (~75) is brighter than
   cortical bone (~30), so a plain threshold would not work, but connectivity does. Bowel gas
   not connected to the outside air stays "body" (dark class).
2. Four intensity classes. The body voxels outside the disc masks are split by a four-class
   multi-Otsu threshold of the lightly smoothed (sigma 0.7 mm) log intensity: dark -> cortex,
   ligament, endplate, flow voids (``Tissue.LIGAMENT``; ``Tissue.ENDPLATE`` within 3 mm of a
   labelled disc, which also catches the longitudinal ligaments along the disc margins);
   muscle-like -> ``Tissue.MUSCLE``; intermediate -> vertebral marrow (``Tissue.MARROW``);
   bright -> fat and fluid (``Tissue.FAT``). No bias-field correction is done (this scan shows
   little shading); intensity alone cannot tell apart tissues of equal T2w brightness, so e.g.
   abdominal viscera land in the muscle or marrow classes, the posterior elements in marrow,
   vertebral bodies (whose marrow straddles the muscle/marrow threshold in this scan) become a
   mosaic of the two classes, and an unlabelled disc (T12/L1) falls in whatever class its
   brightness gives.
3. CSF. Within the bright class a second Otsu threshold keeps the brightest voxels (CSF is
   brighter than epidural fat here: ~500 versus ~340). Seeds are the first such voxels met on
   short rays cast posteriorly from each labelled disc's centre; the CSF is the part of the
   brightest voxels connected to the seeds after a morphological opening (3 mm ball, which cuts
   the thin bridges into foraminal and epidural fat), regrown by 4 mm inside the brightest
   voxels and then by 1.5 mm into the bright class (its partial-volume rim), and kept within
   0.35 disc widths of the discs' lateral centre (the vertebral canal). Non-CSF voxels enclosed
   by CSF in a sagittal plane (conus, cauda equina roots) become ``Tissue.CORD``. Limits: root
   sleeves and foraminal fluid near the canal may be included, CSF pockets cut off by the
   opening or lying beyond the lateral limit are left as fat, and the tip of the thecal sac
   thinner than the opening ball is lost. If no seed is found there is no CSF
   (``notes["csf_voxels"] == 0``).

Relaxation properties. Each class takes T1, T2 and proton density from
:data:`~t2quant.synth.tissues.TISSUES`, and T2 and proton density are modulated smoothly by the
voxel's brightness relative to its class median, ``u = log(I / median_class(I))`` clipped to
+-0.7: ``T2 = T2_class * exp(0.35 u)`` and ``pd = pd_class * exp(0.3 u)`` (capped at 1), so
brighter T2w means longer T2 within a class and the anatomy's texture carries into the
simulated echoes. The modulation is a texture device, not a measurement: T2w brightness also
reflects proton density, coil sensitivity and partial volume; T2 varies by at most -22%..+28%
and proton density by -19%..+23% around the class value. Class boundaries are hard, so T2 can
jump between neighbouring voxels of different classes; T1 is constant per class.

Discs. Voxels of the manual masks become nucleus or annulus with T2 from the Pfirrmann-grade
model (:func:`~t2quant.synth.tissues.disc_appearance`): a voxel's relative brightness ``w`` in
its disc (its lightly smoothed intensity between the disc's 5th and 95th percentiles, clipped
to 0..1) blends the nucleus T2 (``w = 1``) with the annulus T2, which runs from the posterior
to the anterior annulus value along the disc's anterior-posterior extent; the result is
multiplied by :func:`~t2quant.synth.tissues.level_t2_factor`. ``w >= 0.5`` is nucleus. Proton
density and T1 blend the same way. So every disc voxel's T2 lies between the grade's annulus
and nucleus values (times the level factor), and the bright centre of each real disc is its
nucleus. The disc shape is the real one whatever the grade: a grade sets T2 and proton density
only, not disc height, bulge or the intranuclear band. Default grades describe a healthy young
volunteer: 1 at L1/L2, L2/L3 and L3/L4, 2 at L4/L5 and L5/S1 (no grades come with the data).
``disc_t2_ms`` rescales a disc's T2 pattern so that the mean of the true T2 map over its mask
equals the target exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy import ndimage as ndi
from skimage.filters import threshold_multiotsu, threshold_otsu

from t2quant.errors import InputError
from t2quant.levels import LEVEL_INDEX, LEVELS
from t2quant.synth.phantom import SpinePhantom, scale_disc_t2
from t2quant.synth.tissues import TISSUES, Tissue, disc_appearance, level_t2_factor

__all__ = [
    "DEFAULT_GRADES",
    "MENEZES_REIS_LABELS",
    "MENEZES_REIS_SOURCE",
    "axcodes_affine",
    "make_real_anatomy_phantom",
    "segment_tissues",
]

MENEZES_REIS_LABELS: dict[int, str] = {1: "L5/S1", 2: "L4/L5", 3: "L3/L4", 4: "L2/L3", 5: "L1/L2"}
"""Label values of the Menezes-Reis et al. manual disc masks (counted up from the sacrum)."""

MENEZES_REIS_SOURCE = (
    "Menezes-Reis R. et al., Quant Imaging Med Surg 6(4):402-412, 2016, "
    "doi:10.21037/qims.2016.08.01; subject 11 of the fastcleverseg disc data (commit b476612c): "
    "sagittal 2D FSE T2w, 1.5 T, resampled to 1 mm isotropic, manual whole-disc masks"
)

DEFAULT_GRADES: dict[str, int] = {"L1/L2": 1, "L2/L3": 1, "L3/L4": 1, "L4/L5": 2, "L5/S1": 2}
"""Pfirrmann grades assumed for a healthy young volunteer when none are given."""

_DIRECTIONS = {
    "R": (1.0, 0.0, 0.0),
    "L": (-1.0, 0.0, 0.0),
    "A": (0.0, 1.0, 0.0),
    "P": (0.0, -1.0, 0.0),
    "S": (0.0, 0.0, 1.0),
    "I": (0.0, 0.0, -1.0),
}
_PAIRS = ("LR", "AP", "SI")

# Tunables of the derivation (documented in the module docstring).
_BODY_SMOOTH_MM = 2.0
_LIGHT_SMOOTH_MM = 0.7
_ENDPLATE_MM = 3.0
_CSF_OPEN_MM = 3.0
_CSF_REGROW_MM = 4.0
_CSF_RIM_MM = 1.5
_CSF_RAY_MM = 25.0
_CSF_LATERAL_WIDTHS = 0.35
_U_CLIP = 0.7
_K_T2 = 0.35
_K_PD = 0.3
_DISC_PCT = (5.0, 95.0)

_ANATOMICAL_ORDER = ("T10/T11", *LEVELS[:6], "L5/L6", "L5/S1", "L6/S1")

_CLASS_TISSUES = (Tissue.LIGAMENT, Tissue.MUSCLE, Tissue.MARROW, Tissue.FAT)


# --------------------------------------------------------------------------- geometry


def _voxel_sizes(voxel_mm) -> np.ndarray:
    vox = np.asarray(voxel_mm, dtype=float).reshape(-1)
    if vox.shape != (3,) or not np.all(np.isfinite(vox)) or not np.all(vox > 0):
        raise InputError(f"voxel_mm must be three positive sizes in mm, got {voxel_mm!r}")
    return vox


def axcodes_affine(axcodes: str, voxel_mm: Sequence[float], shape: Sequence[int]) -> np.ndarray:
    """Voxel-to-world affine (RAS+ mm) of an array whose axes point toward ``axcodes``.

    Parameters
    ----------
    axcodes
        Three nibabel axis codes, one of each pair L/R, A/P, S/I: the direction each array
        axis points toward with increasing index, e.g. ``"IPR"`` = axis 0 toward inferior,
        axis 1 toward posterior, axis 2 toward the subject's right.
    voxel_mm
        Voxel size (mm) along array axes 0, 1, 2.
    shape
        Array shape; the affine puts the volume centre at world (0, 0, 0).

    Returns
    -------
    (4, 4) float64 affine for which ``nibabel.aff2axcodes`` returns ``tuple(axcodes)``.

    Raises
    ------
    ValueError
        If the codes are not one of each pair, or the sizes or shape are invalid.
    """
    if not isinstance(axcodes, str) or len(axcodes) != 3:
        raise InputError(f"axcodes must be a 3-letter string such as 'IPR', got {axcodes!r}")
    codes = axcodes.upper()
    unknown = [c for c in codes if c not in _DIRECTIONS]
    if unknown:
        raise InputError(f"axcodes {axcodes!r} has unknown letters {unknown}; use L/R, A/P, S/I")
    for pair in _PAIRS:
        n = sum(c in pair for c in codes)
        if n != 1:
            raise InputError(
                f"axcodes {axcodes!r} must name exactly one of {pair[0]}/{pair[1]} (found {n}); "
                "each of L/R, A/P and S/I appears once"
            )
    vox = _voxel_sizes(voxel_mm)
    dims = np.asarray(shape).reshape(-1)
    if dims.shape != (3,) or not np.all(dims >= 1) or not np.all(dims == np.round(dims)):
        raise InputError(f"shape must be three positive integers, got {shape!r}")
    lin = np.column_stack([np.asarray(_DIRECTIONS[c]) * v for c, v in zip(codes, vox, strict=True)])
    affine = np.eye(4)
    affine[:3, :3] = lin
    affine[:3, 3] = -lin @ ((dims.astype(float) - 1.0) / 2.0)
    return affine


def _ellipsoid(radius_mm: float, vox: np.ndarray) -> np.ndarray:
    """Boolean ellipsoidal structuring element of radius ``radius_mm`` on the voxel grid."""
    half = np.maximum(np.floor(radius_mm / vox), 0).astype(int)
    grids = np.meshgrid(
        *[np.arange(-h, h + 1) * v for h, v in zip(half, vox, strict=True)], indexing="ij"
    )
    return sum(g**2 for g in grids) <= radius_mm**2 + 1e-9


def _world(idx: np.ndarray, affine: np.ndarray) -> np.ndarray:
    return idx @ affine[:3, :3].T + affine[:3, 3]


# --------------------------------------------------------------------------- tissue classes


def _body_mask(img: np.ndarray, light: np.ndarray, vox: np.ndarray) -> np.ndarray:
    smooth = ndi.gaussian_filter(img, _BODY_SMOOTH_MM / vox)
    logs = np.log1p(np.maximum(smooth, 0.0))
    if np.unique(logs[:: max(1, logs.size // 4096)]).size < 3:
        return np.ones(img.shape, bool)
    threshold = threshold_multiotsu(logs, classes=3)[0]
    low = logs < threshold
    lab, n = ndi.label(low)
    if n == 0:
        return np.ones(img.shape, bool)
    border = np.zeros(img.shape, bool)
    for ax in range(3):
        sl = [slice(None)] * 3
        sl[ax] = 0
        border[tuple(sl)] = True
        sl[ax] = -1
        border[tuple(sl)] = True
    touching = np.unique(lab[border & low])
    touching = touching[touching > 0]
    if touching.size == 0:
        return np.ones(img.shape, bool)
    # Air: the darkest large dark region touching the border (a large tissue region such as
    # muscle can also fall below the threshold but is brighter than air, while a dark band of
    # cortex or vessel touching the border is small next to the air).
    sizes = ndi.sum_labels(np.ones(img.shape), lab, touching)
    medians = ndi.median(smooth, lab, touching)
    large = sizes >= max(0.25 * sizes.max(), 0.01 * img.size)
    pick = touching[large][int(np.argmin(np.asarray(medians)[large]))]
    body = ndi.binary_fill_holes(lab != pick)
    # The smoothing spreads the skin into the air: within 3 mm of the air, voxels whose lightly
    # smoothed intensity is below the threshold are air too.
    rim = body & ndi.binary_dilation(~body, _ellipsoid(1.5 * _BODY_SMOOTH_MM, vox))
    return body & ~(rim & (np.log1p(light) < threshold))


def _csf_seeds(
    strict: np.ndarray, discs: np.ndarray, affine: np.ndarray, vox: np.ndarray
) -> np.ndarray:
    """First bright voxels met on rays cast posteriorly from each disc's centre."""
    seeds = np.zeros(strict.shape, bool)
    inv = np.linalg.inv(affine)
    step = 0.5 * float(vox.min())
    t = np.arange(0.0, 120.0, step)
    posterior = np.array([0.0, -1.0, 0.0])
    shape = np.array(strict.shape)
    for label in np.unique(discs[discs > 0]):
        centre = _world(np.argwhere(discs == label).mean(axis=0), affine)
        for dx in (-4.0, -2.0, 0.0, 2.0, 4.0):
            for dz in (-2.0, 0.0, 2.0):
                start = centre + np.array([dx, 0.0, dz])
                pts = start[None] + t[:, None] * posterior[None]
                ijk = np.rint(pts @ inv[:3, :3].T + inv[:3, 3]).astype(int)
                ok = np.all((ijk >= 0) & (ijk < shape), axis=1)
                ijk = ijk[ok]
                if len(ijk) == 0:
                    continue
                in_disc = discs[tuple(ijk.T)] == label
                if not in_disc.any():
                    continue
                exit_at = int(np.nonzero(in_disc)[0].max()) + 1
                n_search = int(_CSF_RAY_MM / step)
                window = ijk[exit_at : exit_at + n_search]
                hit = np.nonzero(strict[tuple(window.T)])[0] if len(window) else []
                if len(hit):
                    seeds[tuple(window[hit[0]])] = True
    return seeds


def _lateral_axis(affine: np.ndarray) -> int:
    return int(np.argmax(np.abs(affine[0, :3])))


def _csf_mask(
    bright: np.ndarray, logs: np.ndarray, discs: np.ndarray, affine: np.ndarray, vox: np.ndarray
) -> tuple[np.ndarray, float]:
    """CSF voxels (brightest voxels connected to the space behind the discs) and threshold."""
    values = logs[bright]
    if values.size < 2 or np.ptp(values) == 0 or not discs.any():
        return np.zeros(bright.shape, bool), float("nan")
    t_csf = float(threshold_otsu(values))
    strict = bright & (logs > t_csf)
    # Lateral limit: within a fraction of the disc width of the discs' lateral centre.
    disc_idx = np.argwhere(discs > 0)
    disc_x = _world(disc_idx, affine)[:, 0]
    widths = []
    for label in np.unique(discs[discs > 0]):
        xs = disc_x[discs[tuple(disc_idx.T)] == label]
        widths.append(np.percentile(xs, 98) - np.percentile(xs, 2))
    centres_x = np.mean(
        [disc_x[discs[tuple(disc_idx.T)] == lab].mean() for lab in np.unique(discs[discs > 0])]
    )
    half = _CSF_LATERAL_WIDTHS * float(np.median(widths))
    lat_ax = _lateral_axis(affine)
    coord = np.arange(strict.shape[lat_ax]) * affine[0, lat_ax] + affine[0, 3]
    keep = np.abs(coord - centres_x) <= half
    shape = [1, 1, 1]
    shape[lat_ax] = -1
    strict &= keep.reshape(shape)
    seeds = _csf_seeds(strict, discs, affine, vox)
    if not seeds.any():
        return np.zeros(bright.shape, bool), t_csf
    core = ndi.binary_opening(strict, _ellipsoid(_CSF_OPEN_MM, vox))
    lab, _ = ndi.label(core)
    ids = np.unique(lab[seeds])
    ids = ids[ids > 0]
    if ids.size == 0:  # the opening removed every seeded region: keep the seeded components
        lab, _ = ndi.label(strict)
        ids = np.unique(lab[seeds])
        ids = ids[ids > 0]
        return np.isin(lab, ids), t_csf
    core = np.isin(lab, ids)
    csf = ndi.binary_dilation(core, _ellipsoid(_CSF_REGROW_MM, vox), mask=strict) | core
    # Partial-volume rim: bright-class voxels touching the CSF.
    csf |= ndi.binary_dilation(csf, _ellipsoid(_CSF_RIM_MM, vox), mask=bright)
    return csf, t_csf


def segment_tissues(
    t2w: np.ndarray, discs: np.ndarray, affine: np.ndarray, voxel_mm: Sequence[float]
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Tissue classes of a T2-weighted volume outside labelled discs, from intensity.

    Parameters
    ----------
    t2w
        (X, Y, Z) T2-weighted magnitude image.
    discs
        (X, Y, Z) integer disc labels (> 0 inside a disc); disc voxels are left to the caller
        (their tissue code here is ``Tissue.BACKGROUND`` if outside the body, else the class
        of their intensity).
    affine
        Voxel-to-world (RAS+ mm), used for the anterior, posterior and lateral directions.
    voxel_mm
        Voxel size (mm) per array axis.

    Returns
    -------
    tissue : (X, Y, Z) int16 Tissue codes (see the module docstring for the method).
    light : (X, Y, Z) float64 lightly smoothed intensity used for the classes.
    info : thresholds (intensity units), voxel counts.
    """
    vox = _voxel_sizes(voxel_mm)
    img = np.asarray(t2w, dtype=np.float64)
    light = np.maximum(ndi.gaussian_filter(img, _LIGHT_SMOOTH_MM / vox), 0.0)
    body = _body_mask(img, light, vox)
    logs = np.log1p(light)
    disc_mask = discs > 0
    sample = logs[body & ~disc_mask]
    if sample.size < 16 or np.unique(sample[:: max(1, sample.size // 4096)]).size < 4:
        raise InputError(
            "the T2w image has too little intensity contrast inside the body "
            "to derive four tissue classes"
        )
    thresholds = threshold_multiotsu(sample, classes=4)
    cls = np.digitize(logs, thresholds)
    tissue = np.zeros(img.shape, np.int16)
    for k, code in enumerate(_CLASS_TISSUES):
        tissue[body & (cls == k)] = code
    near_disc = ndi.binary_dilation(disc_mask, _ellipsoid(_ENDPLATE_MM, vox))
    tissue[body & (cls == 0) & near_disc & ~disc_mask] = Tissue.ENDPLATE
    bright = body & (cls == 3) & ~disc_mask
    csf, t_csf = _csf_mask(bright, logs, discs, affine, vox)
    tissue[csf] = Tissue.CSF
    # Conus and roots: non-CSF voxels enclosed by CSF within a sagittal plane.
    structure = ndi.generate_binary_structure(3, 1)
    lat_ax = _lateral_axis(affine)
    centre = [1, 1, 1]
    for d in (0, 2):
        centre[lat_ax] = d
        structure[tuple(centre)] = False
    cord = ndi.binary_fill_holes(csf, structure=structure) & ~csf & body & ~disc_mask
    tissue[cord] = Tissue.CORD
    info = {
        "class_thresholds": [float(np.expm1(t)) for t in thresholds],
        "csf_threshold": float(np.expm1(t_csf)) if np.isfinite(t_csf) else None,
        "csf_voxels": int(csf.sum()),
        "cord_voxels": int(cord.sum()),
        "body_voxels": int(body.sum()),
    }
    return tissue, light, info


def _assign_properties(tissue: np.ndarray, light: np.ndarray):
    t2 = np.full(tissue.shape, TISSUES[Tissue.BACKGROUND].t2_ms, np.float64)
    t1 = np.full(tissue.shape, TISSUES[Tissue.BACKGROUND].t1_ms, np.float64)
    pd = np.zeros(tissue.shape, np.float64)
    logs = np.log1p(light)
    for code in np.unique(tissue):
        code = Tissue(int(code))
        if code == Tissue.BACKGROUND:
            continue
        m = tissue == code
        props = TISSUES[code]
        u = np.clip(logs[m] - np.median(logs[m]), -_U_CLIP, _U_CLIP)
        t2[m] = props.t2_ms * np.exp(_K_T2 * u)
        pd[m] = np.minimum(props.pd * np.exp(_K_PD * u), 1.0)
        t1[m] = props.t1_ms
    return t2, t1, pd


# --------------------------------------------------------------------------- discs


def _paint_discs(tissue, t2, t1, pd, discs, light, affine, label_grades) -> None:
    nuc_t1, ann_t1 = TISSUES[Tissue.NUCLEUS].t1_ms, TISSUES[Tissue.ANNULUS].t1_ms
    for label, (level, grade) in label_grades.items():
        idx = np.argwhere(discs == label)
        if len(idx) == 0:
            continue
        sel = tuple(idx.T)
        look = disc_appearance(grade)
        values = light[sel]
        lo, hi = np.percentile(values, _DISC_PCT)
        w = np.clip((values - lo) / (hi - lo), 0.0, 1.0) if hi > lo else np.full(len(idx), 0.5)
        y = _world(idx.astype(float), affine)[:, 1]
        y_lo, y_hi = np.percentile(y, (2.0, 98.0))
        ant = np.clip((y - y_lo) / (y_hi - y_lo), 0.0, 1.0) if y_hi > y_lo else 0.5
        annulus = look.annulus_posterior_t2_ms + ant * (
            look.annulus_anterior_t2_ms - look.annulus_posterior_t2_ms
        )
        t2[sel] = level_t2_factor(level) * (w * look.nucleus_t2_ms + (1.0 - w) * annulus)
        pd[sel] = w * look.nucleus_pd + (1.0 - w) * look.annulus_pd
        t1[sel] = w * nuc_t1 + (1.0 - w) * ann_t1
        tissue[sel] = np.where(w >= 0.5, Tissue.NUCLEUS, Tissue.ANNULUS)


# --------------------------------------------------------------------------- public API


def _check_inputs(t2w, disc_labels, label_levels):
    t2w = np.asarray(t2w)
    labels = np.asarray(disc_labels)
    if t2w.ndim != 3 or labels.ndim != 3:
        raise InputError(
            f"t2w and disc_labels must be 3D arrays, got {t2w.ndim}D and {labels.ndim}D"
        )
    if t2w.shape != labels.shape:
        raise InputError(f"t2w shape {t2w.shape} and disc_labels shape {labels.shape} differ")
    if not np.issubdtype(t2w.dtype, np.number) or np.iscomplexobj(t2w):
        raise InputError(f"t2w must be a real-valued image, got dtype {t2w.dtype}")
    if not np.all(np.isfinite(t2w)):
        raise InputError("t2w contains NaN or infinite values")
    if not np.issubdtype(labels.dtype, np.number) or np.iscomplexobj(labels):
        raise InputError(f"disc_labels must be integer labels, got dtype {labels.dtype}")
    if not np.issubdtype(labels.dtype, np.integer):
        if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
            raise InputError("disc_labels must hold integer label values")
    labels = labels.astype(np.int64)
    names = {}
    for key, level in label_levels.items():
        if level not in LEVEL_INDEX:
            raise InputError(
                f"label_levels[{key!r}] = {level!r} is not a known disc level; "
                f"known: {', '.join(LEVEL_INDEX)}"
            )
        names[int(key)] = level
    if len(set(names.values())) != len(names):
        raise InputError(f"label_levels maps several labels to one level: {dict(label_levels)}")
    if 0 in names:
        raise InputError("label 0 is background and cannot name a disc level")
    present = np.unique(labels)
    unknown = sorted(int(v) for v in present if v != 0 and int(v) not in names)
    if unknown:
        raise InputError(
            f"disc_labels contains labels {unknown} not in label_levels "
            f"(known labels: {sorted(names)})"
        )
    return t2w, labels, names, [int(v) for v in present if v != 0]


def make_real_anatomy_phantom(
    t2w: np.ndarray,
    disc_labels: np.ndarray,
    *,
    voxel_mm: Sequence[float] = (1.0, 1.0, 1.0),
    axcodes: str = "IPR",
    label_levels: Mapping[int, str] = MENEZES_REIS_LABELS,
    grades: Mapping[str, int] | None = None,
    disc_t2_ms: Mapping[str, float] | None = None,
    source: str = MENEZES_REIS_SOURCE,
) -> SpinePhantom:
    """Ground-truth phantom on the grid of a real T2w volume with manual disc labels.

    Parameters
    ----------
    t2w
        (X, Y, Z) T2-weighted magnitude image (any real dtype).
    disc_labels
        (X, Y, Z) integer disc labels, 0 = background, values keys of ``label_levels``.
    voxel_mm
        Voxel size (mm) along array axes 0, 1, 2.
    axcodes
        Direction each array axis points toward (nibabel codes); the volume's own affine is
        not used. ``"IPR"`` fits the Menezes-Reis data.
    label_levels
        Label value -> disc level name (``"L4/L5"``); default :data:`MENEZES_REIS_LABELS`.
    grades
        Pfirrmann grade (1..5) per labelled level; missing levels take
        :data:`DEFAULT_GRADES` (3 for any other level). Only labelled levels are allowed.
    disc_t2_ms
        Target mean T2 (ms) per labelled level: the disc's T2 pattern is scaled so the mean
        of the true T2 map over its mask equals the target exactly.
    source
        Citation of the image, recorded in ``notes``.

    Returns
    -------
    SpinePhantom on the input grid: ``discs`` holds project level indices
    (:data:`t2quant.levels.LEVEL_INDEX`, e.g. L5/S1 -> 7), ``affine`` from
    :func:`axcodes_affine`, ``grades`` and ``levels_in_fov`` cover the labelled levels
    present, superior to inferior; ``anatomy`` is ``None``.

    Raises
    ------
    ValueError
        On non-3D or mismatched arrays, unknown labels or level names, bad grades or targets,
        bad axis codes or voxel sizes.
    """
    t2w, labels, names, present = _check_inputs(t2w, disc_labels, label_levels)
    vox = _voxel_sizes(voxel_mm)
    affine = axcodes_affine(axcodes, vox, t2w.shape)
    present_levels = {names[v]: v for v in present}
    levels_in_fov = tuple(lvl for lvl in _ANATOMICAL_ORDER if lvl in present_levels)

    full_grades = {lvl: DEFAULT_GRADES.get(lvl, 3) for lvl in levels_in_fov}
    extra = sorted(set(grades or {}) - set(levels_in_fov))
    if extra:
        raise InputError(
            f"grades given for levels not labelled in this volume: {extra}; "
            f"labelled: {list(levels_in_fov)}"
        )
    full_grades.update(grades or {})
    for level, g in full_grades.items():
        if isinstance(g, bool) or g not in (1, 2, 3, 4, 5):
            raise InputError(f"Pfirrmann grade of {level} must be 1..5, got {g!r}")
    targets = dict(disc_t2_ms or {})
    extra = sorted(set(targets) - set(levels_in_fov))
    if extra:
        raise InputError(
            f"disc_t2_ms given for levels not labelled in this volume: {extra}; "
            f"labelled: {list(levels_in_fov)}"
        )
    for level, target in targets.items():
        if not (isinstance(target, int | float | np.number) and np.isfinite(target) and target > 0):
            raise InputError(f"disc_t2_ms[{level!r}] must be a positive T2 in ms, got {target!r}")

    tissue, light, info = segment_tissues(t2w, labels, affine, vox)
    disc_mask = labels > 0
    tissue[disc_mask] = Tissue.BACKGROUND
    t2, t1, pd = _assign_properties(tissue, light)
    label_grades = {present_levels[lvl]: (lvl, full_grades[lvl]) for lvl in levels_in_fov}
    _paint_discs(tissue, t2, t1, pd, labels, light, affine, label_grades)

    discs = np.zeros(t2w.shape, np.int16)
    for lvl, label in present_levels.items():
        discs[labels == label] = LEVEL_INDEX[lvl]
    scale_disc_t2(t2, discs, targets=targets)

    unlabelled = tuple(lvl for lvl in LEVELS if lvl not in names.values())
    notes = {
        "source": source,
        "method": "real anatomy: tissue classes from T2w intensity, disc T2 from the grade model",
        "axcodes": axcodes.upper(),
        "voxel_mm": tuple(float(v) for v in vox),
        "label_levels": dict(names),
        "unlabelled_levels": unlabelled,
        "unlabelled_note": (
            f"{', '.join(unlabelled)} carry no disc label; any of their voxels inside the "
            "volume (T12/L1 at the top edge of the Menezes-Reis field of view) are classified "
            "from intensity like other tissue"
            if unlabelled
            else ""
        ),
        "grades_given": dict(grades or {}),
        "disc_t2_ms": targets,
        **info,
    }
    return SpinePhantom(
        tissue=tissue.astype(np.int16),
        discs=discs,
        t2_ms=t2.astype(np.float32),
        t1_ms=t1.astype(np.float32),
        pd=pd.astype(np.float32),
        affine=affine,
        grades=full_grades,
        levels_in_fov=levels_in_fov,
        anatomy=None,
        notes=notes,
    )
