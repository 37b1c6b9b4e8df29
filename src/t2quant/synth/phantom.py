"""Sagittal lumbar-spine phantom: tissue, disc labels and T1/T2/PD maps on a voxel grid.

The anatomy (:mod:`t2quant.synth.anatomy`) is continuous; it is sampled at the voxel
centres of an acquisition grid (:mod:`t2quant.synth.protocol`).  Painting goes from the
outside in, each structure overriding the ones before it: trunk soft tissue and muscle,
subcutaneous fat, vessels, spinal canal and cord, posterior elements, vertebral bodies with
cortex and endplates, and finally the discs with nucleus and annulus.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import numpy as np
from scipy.spatial import cKDTree

from t2quant.errors import InputError
from t2quant.levels import LEVEL_INDEX, LEVELS
from t2quant.synth.anatomy import (
    Disc,
    SpineAnatomy,
    Vertebra,
    build_anatomy,
    column_curve,
)
from t2quant.synth.protocol import CLINICAL, Grid, Protocol, slab_grid
from t2quant.synth.tissues import TISSUES, Tissue, disc_appearance, level_t2_factor

ENDPLATE_MM = 1.2
CORTEX_MM = 1.0
CONCAVITY_MM = 1.2


@dataclass(frozen=True)
class SpinePhantom:
    """Ground-truth maps of one simulated session on its voxel grid.

    Attributes
    ----------
    tissue : (X, Y, Z) int16 array of :class:`~t2quant.synth.tissues.Tissue` codes.
    discs : (X, Y, Z) int16 array, 0 or the disc level index (1..7 = T11/T12..L5/S1;
        8 = L5/L6, 9 = L6/S1 with a sixth lumbar vertebra).
    t2_ms, t1_ms : (X, Y, Z) float32 arrays (ms).
    pd : (X, Y, Z) float32 proton density relative to water (0 in air).
    affine : (4, 4) voxel-to-world (RAS+ mm).
    grades : Pfirrmann grade of each labelled disc level.
    levels_in_fov : labelled levels with at least one voxel in the grid.
    anatomy : the geometry that was sampled.
    """

    tissue: np.ndarray
    discs: np.ndarray
    t2_ms: np.ndarray
    t1_ms: np.ndarray
    pd: np.ndarray
    affine: np.ndarray
    grades: dict[str, int]
    levels_in_fov: tuple[str, ...]
    anatomy: SpineAnatomy | None = None
    notes: dict = field(default_factory=dict)

    def true_disc_t2_ms(self) -> dict[str, float]:
        """Mean of the true T2 map over each labelled disc (ms); NaN if outside the grid."""
        out = {}
        for level in self.grades:
            mask = self.discs == LEVEL_INDEX[level]
            out[level] = float(self.t2_ms[mask].mean()) if mask.any() else float("nan")
        return out


def _plane_waves(seed: int, wavelength_mm: tuple[float, float], n_modes: int):
    """Wave vectors (n_modes, 3) in rad/mm and phases of :func:`smooth_field`'s modes."""
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=(n_modes, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    k = 2 * np.pi / rng.uniform(*wavelength_mm, size=n_modes)
    phase = rng.uniform(0, 2 * np.pi, size=n_modes)
    return direction * k[:, None], phase


def smooth_field(
    points: np.ndarray,
    seed: int,
    *,
    wavelength_mm: tuple[float, float] = (8, 40),
    n_modes: int = 24,
) -> np.ndarray:
    """A smooth random field of about unit variance at ``points`` (..., 3) mm.

    A sum of random plane waves, so it is continuous in space, independent of the grid it
    is sampled on, and reproducible for a seed.
    """
    waves, phase = _plane_waves(seed, wavelength_mm, n_modes)
    arg = points @ waves.T + phase
    return np.sqrt(2.0 / n_modes) * np.cos(arg).sum(axis=-1)


def smooth_field_on_grid(
    origin: np.ndarray,
    steps: np.ndarray,
    shape: tuple[int, int, int],
    seed: int,
    *,
    wavelength_mm: tuple[float, float] = (8, 40),
    n_modes: int = 24,
) -> np.ndarray:
    """:func:`smooth_field` at the points ``origin + i*steps[0] + j*steps[1] + k*steps[2]``
    of a grid of ``shape``, flattened in C order (the same field, to rounding).

    Each plane wave factors into one complex exponential per grid axis, so the field is a sum
    of outer products (a matrix product) instead of a cosine per point and mode.
    """
    waves, phase = _plane_waves(seed, wavelength_mm, n_modes)
    base = np.exp(1j * (phase + waves @ np.asarray(origin, float)))
    factors = [np.exp(1j * np.outer(np.arange(n), waves @ step)) for n, step in
               zip(shape, np.asarray(steps, float), strict=True)]  # fmt: skip
    ij = (factors[0] * base)[:, None, :] * factors[1][None, :, :]  # (X, Y, modes)
    field = ij.reshape(-1, n_modes) @ factors[2].T  # (X*Y, Z)
    return np.sqrt(2.0 / n_modes) * field.real.reshape(-1)


@dataclass(frozen=True)
class _YZ:
    """Every voxel's (y, z) subject coordinates. In a sagittal slab posed by a pitch about
    the left-right axis they are the same in every slice, so what depends on them alone is
    computed on one slice (``plane``) and repeated ``repeat`` times: the same numbers, a
    fraction of the work."""

    plane: np.ndarray
    repeat: int

    @classmethod
    def of(cls, yz: np.ndarray, shape: tuple[int, int, int]) -> _YZ:
        grid = yz.reshape(*shape, 2)
        if shape[2] > 1 and bool((grid == grid[:, :, :1]).all()):
            return cls(np.ascontiguousarray(grid[:, :, 0].reshape(-1, 2)), shape[2])
        return cls(yz, 1)

    def expand(self, values: np.ndarray) -> np.ndarray:
        """Per-plane values to per-voxel values."""
        return values if self.repeat == 1 else np.repeat(values, self.repeat)


def _superellipse(v: np.ndarray, x: np.ndarray, a: float, b: float, p: float = 2.5) -> np.ndarray:
    return (np.abs(v / a) ** p + np.abs(x / b) ** p) ** (1.0 / p)


def _frame(yz: _YZ, centre: np.ndarray, theta: float) -> tuple[np.ndarray, np.ndarray]:
    """(u, v): coordinates along the column axis (superior) and anterior, about ``centre``."""
    d = yz.plane - centre
    u = d[..., 0] * np.sin(theta) + d[..., 1] * np.cos(theta)
    v = d[..., 0] * np.cos(theta) - d[..., 1] * np.sin(theta)
    return yz.expand(u), yz.expand(v)


class _Canvas:
    """Mutable painting state over the flattened voxel list."""

    def __init__(self, n: int) -> None:
        self.tissue = np.zeros(n, np.int16)
        self.discs = np.zeros(n, np.int16)
        self.t2 = np.full(n, TISSUES[Tissue.BACKGROUND].t2_ms, np.float64)
        self.t1 = np.full(n, TISSUES[Tissue.BACKGROUND].t1_ms, np.float64)
        self.pd = np.zeros(n, np.float64)

    def paint(self, mask: np.ndarray, tissue: Tissue, *, t2=None, pd=None) -> None:
        props = TISSUES[tissue]
        self.tissue[mask] = tissue
        self.discs[mask] = 0
        self.t1[mask] = props.t1_ms
        self.t2[mask] = props.t2_ms if t2 is None else t2
        self.pd[mask] = props.pd if pd is None else pd


def _paint_soft_tissue(c: _Canvas, s, v, x, depth, a: SpineAnatomy, zlumbar) -> None:
    back = -(0.5 * depth + a.canal_depth_mm + 9 + a.spinous_length_mm + 12) - 0.002 * x**2
    skin = back - a.fat_thickness_mm
    inside = (v > skin) & (v < 170.0 - 0.004 * x**2)
    c.paint(inside & (v > -0.5 * depth), Tissue.SOFT_TISSUE)
    c.paint(inside & (v <= -0.5 * depth), Tissue.MUSCLE)
    c.paint(inside & (v <= back), Tissue.FAT)
    lo, hi = zlumbar
    psoas = (np.abs(x) > 14 + 0.4 * depth) & (np.abs(x) < 70) & (v > -0.4 * depth)
    psoas &= (v < 0.5 * depth + 15) & (s > lo) & (s < hi)
    c.paint(inside & psoas, Tissue.MUSCLE)
    # Aorta (left, to its bifurcation at L4) and inferior vena cava (right): flow voids.
    aorta = ((x + 12) ** 2 + (v - 0.5 * depth - 14) ** 2 < 10.0**2) & (s > lo + 30)
    ivc = ((x - 20) ** 2 + (v - 0.5 * depth - 12) ** 2 < 11.0**2) & (s > lo + 20)
    c.paint(inside & (aorta | ivc), Tissue.VESSEL)
    # Anterior longitudinal ligament and prevertebral fat.
    c.paint(inside & (np.abs(v - 0.5 * depth - 2.5) < 1.0) & (np.abs(x) < 12), Tissue.LIGAMENT)


def _paint_canal(c: _Canvas, s, v, x, depth, a: SpineAnatomy, s_conus: float, s_end: float) -> None:
    taper = np.where(s < 0, np.clip(1 + s / 120.0, 0.35, 1.0), 1.0)
    half_d = 0.5 * a.canal_depth_mm * taper
    half_w = 0.5 * a.canal_width_mm * taper
    vc = -0.5 * depth - 1.5 - half_d
    canal = ((v - vc) / half_d) ** 2 + (x / half_w) ** 2 < 1.0
    c.paint(canal & (s > s_end), Tissue.CSF)
    cord_r = np.clip((s - s_conus + 15.0) / 15.0, 0.0, 1.0)
    cord = ((v - vc) / (4.0 * cord_r + 1e-9)) ** 2 + (x / (5.0 * cord_r + 1e-9)) ** 2 < 1.0
    c.paint(canal & cord & (cord_r > 0), Tissue.CORD)
    # Cauda equina: nerve roots layered posteriorly in the thecal sac below the conus.
    roots = (s < s_conus) & (s > -40) & (np.abs(v - vc + 0.45 * half_d) < 1.2) & (np.abs(x) < 5)
    c.paint(canal & roots, Tissue.CORD)


def _paint_posterior_elements(c: _Canvas, yz, x, vert: Vertebra, a: SpineAnatomy) -> None:
    u, v = _frame(yz, vert.centre, vert.theta)
    h, d = vert.height_mm, vert.depth_mm
    sacral = vert.name.startswith("S")
    cw, cd = a.canal_width_mm, a.canal_depth_mm
    if sacral:
        plate = (v < -0.5 * d - 0.6 * cd) & (v > -0.5 * d - 0.6 * cd - 10) & (np.abs(u) < 0.5 * h)
        c.paint(plate & (np.abs(x) < 0.5 * cw + 15), Tissue.POSTERIOR_ELEMENTS)
        return
    canal_back = -0.5 * d - 1.5 - cd
    pedicle = (v < -0.5 * d) & (v > canal_back) & (np.abs(x) > 0.5 * cw - 2)
    pedicle &= (np.abs(x) < 0.5 * cw + 8) & (u > -0.05 * h) & (u < 0.45 * h)
    lamina = (v <= canal_back) & (v > canal_back - 7) & (np.abs(x) < 0.5 * cw + 8)
    lamina &= (u > -0.5 * h - 6) & (u < 0.3 * h)
    pillar = (np.abs(x) > 0.5 * cw + 1) & (np.abs(x) < 0.5 * cw + 13)
    pillar &= (v > canal_back - 6) & (v < canal_back + 9) & (u > -0.5 * h - 7) & (u < 0.5 * h - 3)
    tip = canal_back - 7 - a.spinous_length_mm
    slope = -0.35 * (canal_back - 7 - v)  # spinous processes slope caudally
    spinous = (v <= canal_back - 7) & (v > tip) & (np.abs(x) < 3.5)
    spinous &= (u > slope - 0.3 * h) & (u < slope + 0.3 * h)
    c.paint(pedicle | lamina | pillar | spinous, Tissue.POSTERIOR_ELEMENTS)


def _body_masks(yz, x, vert: Vertebra):
    """Body interior, distance to endplates, and cross-section radius of a vertebra."""
    _u, v = _frame(yz, vert.centre, vert.theta)
    rho = _superellipse(v, x, 0.5 * vert.depth_mm, 0.5 * vert.width_mm)
    conc = CONCAVITY_MM * np.clip(1.0 - rho**2, 0.0, None)
    inf = np.asarray(vert.inferior.centre)
    sup = np.asarray(vert.superior.centre)
    d_inf, _ = _frame(yz, inf, vert.inferior.theta)
    d_sup, _ = _frame(yz, sup, vert.superior.theta)
    d_sup = -d_sup
    inside = (d_inf >= conc) & (d_sup >= conc) & (rho <= 1.0)
    return inside, np.minimum(d_inf, d_sup) - conc, rho, (d_inf > -2) & (d_sup > -2)


def _paint_body(c: _Canvas, yz, x, vert: Vertebra) -> None:
    inside, to_endplate, rho, between = _body_masks(yz, x, vert)
    c.paint(between & (rho <= 1.0 + 1.5 / (0.5 * vert.depth_mm)) & ~inside, Tissue.LIGAMENT)
    c.paint(inside, Tissue.MARROW)
    shell = inside & (rho > 1.0 - CORTEX_MM / (0.5 * vert.depth_mm))
    c.paint(shell, Tissue.CORTEX)
    if vert.name not in ("S2", "S3", "S4"):
        c.paint(inside & (to_endplate < ENDPLATE_MM), Tissue.ENDPLATE)


def _disc_geometry(yz, x, disc: Disc):
    """Disc mask and relative coordinates (v, height fraction u_rel) inside it."""
    lower, upper = disc.below.superior, disc.above.inferior
    _, v = _frame(yz, disc.centre, disc.theta)
    rho_b = _superellipse(v, x, 0.5 * disc.depth_mm, 0.5 * disc.width_mm)
    conc = CONCAVITY_MM * np.clip(1.0 - rho_b**2, 0.0, None)
    d_lo, _ = _frame(yz, np.asarray(lower.centre), lower.theta)
    d_up, _ = _frame(yz, np.asarray(upper.centre), upper.theta)
    d_lo, d_up = d_lo + conc, -d_up + conc
    rho = _superellipse(
        v, x, 0.5 * disc.depth_mm + disc.bulge_mm, 0.5 * disc.width_mm + disc.bulge_mm
    )
    inside = (d_lo >= 0) & (d_up >= 0) & (rho <= 1.0)
    u_rel = (d_lo - d_up) / np.maximum(d_lo + d_up, 1e-6)
    return inside, v, u_rel


def _paint_disc(c: _Canvas, yz, x, disc: Disc, texture: np.ndarray, nucleus_offset: float) -> None:
    inside, v, u_rel = _disc_geometry(yz, x, disc)
    if disc.level == "S1/S2":
        c.paint(inside & (np.abs(v) < 0.35 * disc.depth_mm), Tissue.SACRAL_REMNANT_DISC)
        return
    look = disc_appearance(disc.grade)
    half_d, half_w = 0.5 * disc.depth_mm, 0.5 * disc.width_mm
    r = np.sqrt(
        ((v - nucleus_offset * disc.depth_mm) / (0.62 * half_d)) ** 2
        + (x / (0.62 * half_w)) ** 2
        + (u_rel / 0.75) ** 2
    )
    frac = 1.0 / (1.0 + np.exp(np.clip((r - 1.0) / look.transition, -50, 50)))
    ant = np.clip(0.5 * (v / half_d + 1.0), 0.0, 1.0)
    annulus_t2 = look.annulus_posterior_t2_ms + ant * (
        look.annulus_anterior_t2_ms - look.annulus_posterior_t2_ms
    )
    t2 = frac * look.nucleus_t2_ms + (1 - frac) * annulus_t2
    pd = frac * look.nucleus_pd + (1 - frac) * look.annulus_pd
    if look.band:
        band = (np.abs(u_rel) < 0.13) & (r < 1.0)
        t2 = np.where(band, 0.7 * t2, t2)
        pd = np.where(band, 0.92 * pd, pd)
    # exp(s * texture), not 1 + s * texture: at the inhomogeneity of grades IV-V (0.20-0.25,
    # issue 18) a deep trough of the texture would drive T2 through zero
    t2 = t2 * level_t2_factor(disc.level) * np.exp(look.inhomogeneity * texture)
    pd = pd * (1.0 + 0.3 * look.inhomogeneity * texture)
    tissue = np.where(frac >= 0.5, Tissue.NUCLEUS, Tissue.ANNULUS)
    for code in (Tissue.NUCLEUS, Tissue.ANNULUS):
        m = inside & (tissue == code)
        c.paint(m, code, t2=t2[m], pd=pd[m])
    if disc.labelled and disc.level in LEVEL_INDEX:
        c.discs[inside] = LEVEL_INDEX[disc.level]


def rasterise(anatomy: SpineAnatomy, grid: Grid) -> _Canvas:
    """Sample ``anatomy`` at the voxel centres of ``grid``; returns flat arrays."""
    world = grid.world_coordinates().reshape(-1, 3)
    subj = anatomy.to_subject(world)
    x, yz = subj[:, 0], _YZ.of(subj[:, 1:], grid.shape)
    curve, arclength = column_curve(anatomy)
    s, v = _curve_coordinates(yz, curve, arclength)
    s_of = _vertebra_arclength(anatomy, curve, arclength)
    depth_at = np.interp(s, *_depth_profile(anatomy, s_of))
    trunk, trunk_s = trunk_curve(anatomy)
    st, vt_ = _curve_coordinates(yz, trunk, trunk_s)
    t_of = _vertebra_arclength(anatomy, trunk, trunk_s)
    depth_t = np.interp(st, *_depth_profile(anatomy, t_of))
    lumbar = (t_of.get("L6", t_of["L5"]), t_of["T12"])
    c = _Canvas(len(x))
    _paint_soft_tissue(c, st, vt_, x, depth_t, anatomy, lumbar)
    _paint_canal(c, s, v, x, depth_at, anatomy, s_of[anatomy.conus_level], s_of["S3"])
    for vert in anatomy.vertebrae:
        _paint_posterior_elements(c, yz, x, vert, anatomy)
    for vert in anatomy.vertebrae:
        _paint_body(c, yz, x, vert)
    field = partial(smooth_field_on_grid, subj[0], _subject_steps(anatomy, grid), grid.shape)
    _apply_texture(c, field, anatomy.texture_seed)
    disc_texture = field(anatomy.texture_seed + 7, wavelength_mm=(4, 16))
    for disc in anatomy.discs:
        _paint_disc(c, yz, x, disc, disc_texture, anatomy.nucleus_offset)
    return c


def _subject_steps(anatomy: SpineAnatomy, grid: Grid) -> np.ndarray:
    """Subject-space displacement (mm) of one step along each array axis of ``grid``."""
    corners = np.vstack([np.zeros(3), np.eye(3)]) @ grid.affine[:3, :3].T + grid.affine[:3, 3]
    subj = anatomy.to_subject(corners)
    return subj[1:] - subj[0]


def _curve_coordinates(yz: _YZ, curve: np.ndarray, arclength: np.ndarray):
    """Arc length ``s`` and signed anterior distance ``v`` (mm) of points relative to a curve."""
    tangent = np.gradient(curve, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    _, nearest = cKDTree(curve).query(yz.plane)
    rel = yz.plane - curve[nearest]
    s = arclength[nearest] + np.einsum("ij,ij->i", rel, tangent[nearest])
    v = rel[:, 0] * tangent[nearest, 1] - rel[:, 1] * tangent[nearest, 0]
    return yz.expand(s), yz.expand(v)


def trunk_curve(anatomy: SpineAnatomy, step_mm: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """A gently curved line (quadratic y(z) through the T11..L5 body centres) for the trunk.

    The column curve turns sharply at the sacrum; soft-tissue layers far from the spine use
    this smoother line so their straightened coordinates never fold.
    """
    centres = np.array([v.centre for v in anatomy.vertebrae if v.name[0] in "TL"])
    coef = np.polyfit(centres[:, 1], centres[:, 0], 2)
    z = np.arange(centres[:, 1].min() - 250.0, centres[:, 1].max() + 250.0, step_mm)
    pts = np.column_stack([np.polyval(coef, z), z])
    arclength = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
    return pts, arclength - np.interp(0.0, z, arclength)


def _vertebra_arclength(anatomy: SpineAnatomy, curve, arclength) -> dict[str, float]:
    """Arc length (mm) of the curve point nearest each vertebral body centre."""
    return {
        vt.name: float(arclength[np.argmin(np.linalg.norm(curve - vt.centre, axis=1))])
        for vt in anatomy.vertebrae
    }


def _depth_profile(anatomy: SpineAnatomy, s_of: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """Vertebral body depth (mm) against arc length, sorted for interpolation."""
    s = np.array([s_of[vt.name] for vt in anatomy.vertebrae])
    d = np.array([vt.depth_mm for vt in anatomy.vertebrae])
    order = np.argsort(s)
    return s[order], d[order]


def _apply_texture(c: _Canvas, field, seed: int) -> None:
    """Multiply each textured tissue's T2 and PD by smooth fields (``field(seed)``)."""
    field_t2 = field(seed)
    field_pd = field(seed + 1)
    for tissue, props in TISSUES.items():
        if props.texture_sd == 0:
            continue
        m = c.tissue == tissue
        c.t2[m] *= 1.0 + props.texture_sd * field_t2[m]
        c.pd[m] *= 1.0 + 0.5 * props.texture_sd * field_pd[m]


def scale_disc_t2(
    t2: np.ndarray,
    discs: np.ndarray,
    *,
    targets: dict[str, float] | None = None,
    offsets: dict[str, float] | None = None,
) -> None:
    """Rescale each disc's T2 pattern in place so its mean hits a target (ms).

    ``targets`` gives the whole-disc mean directly; ``offsets`` adds to the disc's current
    mean.  The pattern inside the disc (nucleus, annulus, texture) is scaled, not shifted.
    Levels with no voxel in ``discs`` are skipped.
    """
    wanted = {}
    for level, mask in (
        (lvl, discs == LEVEL_INDEX[lvl]) for lvl in {**(targets or {}), **(offsets or {})}
    ):
        if not mask.any():
            continue
        mean = t2[mask].mean()
        target = (targets or {}).get(level, mean) + (offsets or {}).get(level, 0.0)
        if not target > 0:
            raise InputError(f"target whole-disc T2 of {level} must be positive, got {target!r} ms")
        wanted[level] = (mask, target / mean)
    for mask, factor in wanted.values():
        t2[mask] *= factor


def default_grades() -> dict[str, int]:
    """Grades of a typical adult lumbar spine: 2 above L4, 3 at L4/L5 and L5/S1."""
    return {lvl: (3 if lvl in ("L4/L5", "L5/S1") else 2) for lvl in LEVELS}


def phantom_levels(extra_lumbar: bool) -> tuple[str, ...]:
    """Labelled disc levels of a phantom, superior to inferior."""
    if extra_lumbar:
        return (*LEVELS[:6], "L5/L6", "L6/S1")
    return LEVELS


def make_spine_phantom(
    *,
    seed: int = 0,
    grades: dict[str, int] | None = None,
    protocol: Protocol = CLINICAL,
    slab: str = "sagittal",
    oblique_deg: float = 30.0,
    missing_t11_t12: bool = False,
    extra_lumbar: bool = False,
    disc_t2_ms: dict[str, float] | None = None,
    disc_t2_offset_ms: dict[str, float] | None = None,
    fat_thickness_mm: float | None = None,
    size_scale: float | None = None,
    session_seed: int | None = None,
) -> SpinePhantom:
    """Build a sagittal lumbar-spine phantom with ground truth.

    Parameters
    ----------
    seed
        Anatomy seed: body size, curvature, disc heights, texture, position in the field of view.
    grades
        Pfirrmann grade (1..5) per level; missing levels get :func:`default_grades` values.
        With ``extra_lumbar`` the keys include ``"L5/L6"`` and ``"L6/S1"``.
    protocol
        Acquisition grid (field of view, voxel size, slices).
    slab
        ``"sagittal"`` (default), or ``"axial"`` / ``"oblique"`` to test orientation checks.
    missing_t11_t12
        Place the field of view so that the T11/T12 disc lies above it.
    extra_lumbar
        Transitional anatomy: a sixth lumbar vertebra.
    disc_t2_ms
        Target whole-disc mean T2 (ms) per level; each disc's T2 pattern is scaled so the
        mean of the true map over its label mask equals the target exactly.
    disc_t2_offset_ms
        Change (ms) added to each disc's natural whole-disc mean T2, by the same scaling.
    fat_thickness_mm, size_scale
        Override the seeded subcutaneous fat thickness and body size factor.
    session_seed
        Seeds the subject's position and pitch in the scanner (repositioning between
        sessions); ``None`` uses ``seed``.
    """
    levels = phantom_levels(extra_lumbar)
    full = default_grades()
    if extra_lumbar:
        full = {lvl: full.get(lvl, 3) for lvl in levels}
    full.update(grades or {})
    unknown = set(full) - set(levels)
    if unknown:
        raise InputError(f"grades given for levels not in this phantom: {sorted(unknown)}")
    for level, g in full.items():
        if g not in (1, 2, 3, 4, 5):
            raise InputError(f"Pfirrmann grade of {level} must be 1..5, got {g!r}")
    anatomy = build_anatomy(
        grades=full,
        seed=seed,
        extra_lumbar=extra_lumbar,
        fat_thickness_mm=fat_thickness_mm,
        size_scale=size_scale,
    )
    anatomy, centre = _place_in_scanner(
        anatomy, protocol, slab, missing_t11_t12, seed if session_seed is None else session_seed
    )
    grid = slab_grid(protocol, centre, slab=slab, oblique_deg=oblique_deg)
    c = rasterise(anatomy, grid)
    if disc_t2_ms or disc_t2_offset_ms:
        scale_disc_t2(c.t2, c.discs, targets=disc_t2_ms, offsets=disc_t2_offset_ms)
    shape = grid.shape
    present = tuple(lvl for lvl in levels if (c.discs == LEVEL_INDEX[lvl]).any())
    return SpinePhantom(
        tissue=c.tissue.reshape(shape),
        discs=c.discs.reshape(shape),
        t2_ms=c.t2.reshape(shape).astype(np.float32),
        t1_ms=c.t1.reshape(shape).astype(np.float32),
        pd=np.clip(c.pd, 0.0, None).reshape(shape).astype(np.float32),
        affine=grid.affine,
        grades=full,
        levels_in_fov=present,
        anatomy=anatomy,
        notes={"slab": slab, "missing_t11_t12": missing_t11_t12, "extra_lumbar": extra_lumbar},
    )


def _place_in_scanner(
    anatomy: SpineAnatomy, protocol: Protocol, slab: str, missing_t11_t12: bool, seed: int
) -> tuple[SpineAnatomy, np.ndarray]:
    """Pose the subject (pitch, translation) and return the slab centre in world mm."""
    from dataclasses import replace

    rng = np.random.default_rng([seed, 9173])
    top = anatomy.disc("T11/T12").centre
    bottom = anatomy.vertebra("S2").centre
    lumbar = np.mean([d.centre for d in anatomy.discs if d.labelled], axis=0)
    if slab == "axial":
        target_yz = np.asarray(anatomy.disc("L4/L5").centre)
    elif missing_t11_t12:
        z = top[1] - 14.0 - 0.5 * protocol.fov_si_mm
        target_yz = np.array([lumbar[0] - 20.0, z])
    else:
        target_yz = np.array([lumbar[0] - 20.0, 0.5 * (top[1] + 25.0 + bottom[1])])
    target_yz = target_yz + rng.uniform(-6.0, 6.0, size=2)
    pitch = rng.uniform(-4.0, 4.0)
    posed = replace(anatomy, pitch_deg=float(pitch), position_mm=(0.0, 0.0, 0.0))
    offset = posed.to_world(target_yz[None])[0]
    posed = replace(posed, position_mm=(float(rng.uniform(-3.0, 3.0)), -offset[1], -offset[2]))
    return posed, np.zeros(3)
