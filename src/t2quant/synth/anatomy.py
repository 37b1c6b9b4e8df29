"""Geometry of the synthetic lumbar spine: a chain of rigid vertebrae on a lordotic curve.

Coordinates are world millimetres in the NIfTI RAS+ convention: ``x`` to the subject's
right, ``y`` anterior, ``z`` superior.  The spine lies near the mid-sagittal plane ``x = 0``.
In the sagittal plane every vertebral body is a region between two endplate lines; a disc
is the region between the superior endplate of the vertebra below and the inferior endplate
of the vertebra above, so disc wedging (lordosis) follows from the chain itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Healthy reference dimensions of an average adult (mm), superior to inferior.
_BODY_HEIGHT_MM = {
    "T6": 19.0,
    "T7": 19.5,
    "T8": 20.0,
    "T9": 21.0,
    "T10": 22.0,
    "T11": 23.0,
    "T12": 24.0,
    "L1": 26.0,
    "L2": 27.0,
    "L3": 28.0,
    "L4": 28.0,
    "L5": 27.0,
    "L6": 26.0,
    "S1": 26.0,
    "S2": 21.0,
    "S3": 17.0,
    "S4": 14.0,
}
_BODY_DEPTH_MM = {
    "T6": 24.0,
    "T7": 25.0,
    "T8": 26.0,
    "T9": 27.0,
    "T10": 28.0,
    "T11": 29.0,
    "T12": 30.0,
    "L1": 31.0,
    "L2": 33.0,
    "L3": 34.0,
    "L4": 35.0,
    "L5": 35.0,
    "L6": 35.0,
    "S1": 36.0,
    "S2": 30.0,
    "S3": 24.0,
    "S4": 18.0,
}
_DISC_HEIGHT_MM = {
    "T6/T7": 4.5,
    "T7/T8": 4.6,
    "T8/T9": 4.8,
    "T9/T10": 5.0,
    "T10/T11": 5.5,
    "T11/T12": 6.0,
    "T12/L1": 7.0,
    "L1/L2": 8.5,
    "L2/L3": 9.5,
    "L3/L4": 10.0,
    "L4/L5": 11.0,
    "L5/S1": 10.5,
    "L5/L6": 10.5,
    "L6/S1": 9.0,
}
# Lordotic wedge angle of each disc (deg, positive = taller anteriorly); with the body
# wedges below, L1-S1 lordosis is about 46 deg before scaling.
_DISC_WEDGE_DEG = {
    "T6/T7": -2.0,
    "T7/T8": -2.0,
    "T8/T9": -2.0,
    "T9/T10": -2.0,
    "T10/T11": -2.0,
    "T11/T12": -1.0,
    "T12/L1": 1.0,
    "L1/L2": 3.0,
    "L2/L3": 5.0,
    "L3/L4": 7.0,
    "L4/L5": 10.0,
    "L5/S1": 14.0,
    "L5/L6": 9.0,
    "L6/S1": 13.0,
}
_BODY_WEDGE_DEG = {
    "T6": -3.0,
    "T7": -3.0,
    "T8": -3.0,
    "T9": -3.0,
    "T10": -3.0,
    "T11": -3.0,
    "T12": -2.0,
    "L3": 1.0,
    "L4": 2.0,
    "L5": 4.0,
    "L6": 2.0,
}
_REFERENCE_LORDOSIS_DEG = 46.0
SACRAL = ("S1", "S2", "S3", "S4")


THORACIC = ("T6", "T7", "T8", "T9", "T10", "T11", "T12")


def vertebra_names(extra_lumbar: bool = False, top: str = "T9") -> tuple[str, ...]:
    """Vertebrae of the phantom, superior to inferior, from ``top`` (T6..T9; the phantom's
    default T9) down to S4 (``L6`` with ``extra_lumbar``)."""
    lumbar = ("L1", "L2", "L3", "L4", "L5") + (("L6",) if extra_lumbar else ())
    return (*THORACIC[THORACIC.index(top) :], *lumbar, *SACRAL)


def _line_normal(theta: float) -> np.ndarray:
    """Unit vector (y, z) along the column axis tilted ``theta`` rad toward anterior."""
    return np.array([np.sin(theta), np.cos(theta)])


@dataclass(frozen=True)
class Endplate:
    """An endplate line in the sagittal plane: centre point (y, z) mm and axis tilt (rad)."""

    centre: tuple[float, float]
    theta: float


@dataclass(frozen=True)
class Vertebra:
    """A vertebral body between its inferior and superior endplates."""

    name: str
    inferior: Endplate
    superior: Endplate
    depth_mm: float
    width_mm: float

    @property
    def theta(self) -> float:
        return 0.5 * (self.inferior.theta + self.superior.theta)

    @property
    def centre(self) -> np.ndarray:
        return 0.5 * (np.asarray(self.inferior.centre) + np.asarray(self.superior.centre))

    @property
    def height_mm(self) -> float:
        return float(np.linalg.norm(np.subtract(self.superior.centre, self.inferior.centre)))


@dataclass(frozen=True)
class Disc:
    """An intervertebral disc between ``below.superior`` and ``above.inferior``."""

    level: str
    above: Vertebra
    below: Vertebra
    grade: int
    bulge_mm: float
    labelled: bool  # part of the ground-truth label map (False for T9/T10, T10/T11, S1/S2)

    @property
    def theta(self) -> float:
        return 0.5 * (self.above.inferior.theta + self.below.superior.theta)

    @property
    def centre(self) -> np.ndarray:
        return 0.5 * (
            np.asarray(self.above.inferior.centre) + np.asarray(self.below.superior.centre)
        )

    @property
    def depth_mm(self) -> float:
        return 0.5 * (self.above.depth_mm + self.below.depth_mm)

    @property
    def width_mm(self) -> float:
        return 0.5 * (self.above.width_mm + self.below.width_mm)


@dataclass(frozen=True)
class SpineAnatomy:
    """One subject's spine and surrounding tissue, in subject coordinates (mm).

    ``vertebrae`` are superior to inferior; ``discs`` likewise.  The subject frame is
    placed in the scanner by :attr:`position_mm` (translation of the S1 endplate centre)
    and :attr:`pitch_deg` (rotation about the left-right axis).
    """

    vertebrae: tuple[Vertebra, ...]
    discs: tuple[Disc, ...]
    canal_depth_mm: float
    canal_width_mm: float
    spinous_length_mm: float
    fat_thickness_mm: float
    conus_level: str
    position_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    pitch_deg: float = 0.0
    seed: int = 0
    texture_seed: int = 0
    nucleus_offset: float = -0.08  # nucleus centre, fraction of disc depth (negative = posterior)

    def vertebra(self, name: str) -> Vertebra:
        for v in self.vertebrae:
            if v.name == name:
                return v
        raise KeyError(name)

    def disc(self, level: str) -> Disc:
        for d in self.discs:
            if d.level == level:
                return d
        raise KeyError(level)

    def to_world(self, yz: np.ndarray) -> np.ndarray:
        """Map subject sagittal points (..., 2) = (y, z) to world (..., 3) at x = 0."""
        pts = np.zeros((*yz.shape[:-1], 3))
        pts[..., 1:] = yz
        return _rigid(pts, self.position_mm, self.pitch_deg)

    def to_subject(self, world: np.ndarray) -> np.ndarray:
        """Map world points (..., 3) to subject coordinates (..., 3)."""
        c, s = np.cos(np.deg2rad(self.pitch_deg)), np.sin(np.deg2rad(self.pitch_deg))
        p = world - np.asarray(self.position_mm)
        out = p.copy()
        out[..., 1] = c * p[..., 1] + s * p[..., 2]
        out[..., 2] = -s * p[..., 1] + c * p[..., 2]
        return out


def _rigid(pts: np.ndarray, position: tuple[float, float, float], pitch_deg: float) -> np.ndarray:
    c, s = np.cos(np.deg2rad(pitch_deg)), np.sin(np.deg2rad(pitch_deg))
    out = pts.copy()
    out[..., 1] = c * pts[..., 1] - s * pts[..., 2]
    out[..., 2] = s * pts[..., 1] + c * pts[..., 2]
    return out + np.asarray(position)


def _jitter(rng: np.random.Generator, value: float, rel: float) -> float:
    return float(value * rng.uniform(1.0 - rel, 1.0 + rel))


def build_anatomy(
    *,
    grades: dict[str, int],
    seed: int = 0,
    extra_lumbar: bool = False,
    size_scale: float | None = None,
    fat_thickness_mm: float | None = None,
    lordosis_scale: float | None = None,
    sacral_slope_deg: float | None = None,
    top_vertebra: str = "T9",
) -> SpineAnatomy:
    """Draw one subject's spine geometry.

    Parameters
    ----------
    grades
        Pfirrmann grade (1..5) of every disc level present, e.g. ``{"L4/L5": 3, ...}``.
        Discs not listed (T9/T10, T10/T11) get grade 2.
    seed
        Seeds body size, curvature, disc heights and texture.
    extra_lumbar
        Add a sixth lumbar vertebra (transitional anatomy): discs L5/L6 and L6/S1 replace L5/S1.
    size_scale, fat_thickness_mm, lordosis_scale, sacral_slope_deg
        Override the seeded draws (overall size factor, subcutaneous fat thickness in mm,
        factor on the disc wedge angles, sacral slope in degrees).
    top_vertebra
        The highest vertebra drawn, T6..T9 (the segmenter's training label maps reach T6,
        as real fields of view do).
    """
    from t2quant.synth.tissues import disc_appearance

    rng = np.random.default_rng(seed)
    scale = size_scale if size_scale is not None else rng.uniform(0.9, 1.1)
    slope = sacral_slope_deg if sacral_slope_deg is not None else rng.uniform(32.0, 46.0)
    # Lumbar lordosis tracks sacral slope (lordosis ~ slope + 0..12 deg).
    lordosis = (
        lordosis_scale
        if lordosis_scale is not None
        else ((slope + rng.uniform(0.0, 12.0)) / _REFERENCE_LORDOSIS_DEG)
    )
    names = vertebra_names(extra_lumbar, top_vertebra)

    heights = {n: _jitter(rng, _BODY_HEIGHT_MM[n] * scale, 0.04) for n in names}
    depths = {n: _jitter(rng, _BODY_DEPTH_MM[n] * scale, 0.04) for n in names}
    widths = {n: depths[n] * (1.2 if n.startswith("T") else 1.45) for n in names}

    def disc_dims(level: str) -> tuple[float, float, int]:
        grade = grades.get(level, 2)
        look = disc_appearance(grade)
        h = _jitter(rng, _DISC_HEIGHT_MM[level] * scale, 0.08) * look.height_factor
        wedge = _DISC_WEDGE_DEG[level] * lordosis * max(look.height_factor, 0.5)
        return h, np.deg2rad(wedge), grade

    # Walk up from the S1 superior endplate (subject origin), then down the sacrum.
    theta = np.deg2rad(slope)
    s1_sup = Endplate((0.0, 0.0), float(theta))
    upper = [n for n in names if n not in SACRAL][::-1]  # L5 (or L6) ... T9
    below_sup = s1_sup
    built: dict[str, tuple[Endplate, Endplate]] = {}
    disc_geo: list[tuple[str, str, str, float]] = []
    lower_name = "S1"
    for name in upper:
        level = f"{name}/{lower_name}"
        h, wedge, grade = disc_dims(level)
        mid = below_sup.theta - 0.5 * wedge
        inf_centre = np.asarray(below_sup.centre) + h * _line_normal(mid)
        inf = Endplate(tuple(inf_centre), float(below_sup.theta - wedge))
        body_wedge = np.deg2rad(_BODY_WEDGE_DEG.get(name, 0.0) * lordosis)
        sup_theta = inf.theta - body_wedge
        sup_centre = inf_centre + heights[name] * _line_normal(inf.theta - 0.5 * body_wedge)
        sup = Endplate(tuple(sup_centre), float(sup_theta))
        built[name] = (inf, sup)
        disc_geo.append((level, name, lower_name, disc_appearance(grade).bulge_mm))
        below_sup, lower_name = sup, name

    # Sacrum: S1..S4 turning kyphotically, a thin remnant disc between S1 and S2.
    sup = s1_sup
    for i, name in enumerate(SACRAL):
        turn = np.deg2rad(rng.uniform(12.0, 20.0))
        inf_theta = sup.theta + turn
        inf_centre = np.asarray(sup.centre) - heights[name] * _line_normal(sup.theta + 0.5 * turn)
        inf = Endplate(tuple(inf_centre), float(inf_theta))
        built[name] = (inf, sup)
        gap = 2.0 if i == 0 else 0.0
        sup = Endplate(tuple(inf_centre - gap * _line_normal(inf_theta)), float(inf_theta))

    vertebrae = tuple(Vertebra(n, built[n][0], built[n][1], depths[n], widths[n]) for n in names)
    by_name = {v.name: v for v in vertebrae}
    discs = [
        Disc(
            level,
            by_name[up],
            by_name[low],
            grades.get(level, 2),
            bulge,
            labelled=level not in ("T9/T10", "T10/T11"),
        )
        for level, up, low, bulge in disc_geo[::-1]
    ]
    discs.append(Disc("S1/S2", by_name["S1"], by_name["S2"], 4, 0.0, labelled=False))
    fat = fat_thickness_mm if fat_thickness_mm is not None else rng.uniform(8.0, 25.0)
    return SpineAnatomy(
        vertebrae=vertebrae,
        discs=tuple(discs),
        canal_depth_mm=_jitter(rng, 16.0 * scale, 0.08),
        canal_width_mm=_jitter(rng, 23.0 * scale, 0.08),
        spinous_length_mm=_jitter(rng, 30.0 * scale, 0.1),
        fat_thickness_mm=float(fat),
        conus_level="L1",
        seed=seed,
        texture_seed=int(rng.integers(0, 2**31)),
        nucleus_offset=float(rng.uniform(-0.12, -0.04)),
    )


def column_curve(anatomy: SpineAnatomy, step_mm: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """A smooth curve through the body centres, extended straight beyond both ends.

    Returns
    -------
    points : (n, 2) array of (y, z) subject coordinates (mm), inferior to superior.
    arclength : (n,) arc length (mm), increasing superiorly, zero at the S1 endplate.
    """
    from scipy.interpolate import make_interp_spline

    centres = np.array([v.centre for v in anatomy.vertebrae])[::-1]  # inferior -> superior
    seg = np.linalg.norm(np.diff(centres, axis=0), axis=1)
    t = np.concatenate([[0.0], np.cumsum(seg)])
    spline = make_interp_spline(t, centres, k=3, bc_type="natural")
    ext = 80.0
    tt = np.arange(-ext, t[-1] + ext, step_mm)
    inside = spline(np.clip(tt, 0.0, t[-1]))
    d0 = spline.derivative()(0.0)
    d1 = spline.derivative()(t[-1])
    below = tt < 0
    above = tt > t[-1]
    inside[below] = centres[0] + np.outer(tt[below], d0 / np.linalg.norm(d0))
    inside[above] = centres[-1] + np.outer(tt[above] - t[-1], d1 / np.linalg.norm(d1))
    arclength = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(inside, axis=0), axis=1))])
    s1 = np.asarray(anatomy.vertebra("S1").superior.centre)
    zero = int(np.argmin(np.linalg.norm(inside - s1, axis=1)))
    return inside, arclength - arclength[zero]
