"""Acquisition protocol and voxel grid of a simulated multi-echo spin-echo slab."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from t2quant.errors import InputError

SLAB_ORIENTATIONS = ("sagittal", "axial", "oblique")


@dataclass(frozen=True)
class Protocol:
    """A multi-echo spin-echo (CPMG) protocol; lengths in mm, times in ms.

    The default is a clinical sagittal lumbar T2-mapping protocol: 0.8 mm in plane,
    4 mm slices, 12 echoes 10 ms apart.  ``b1_range`` bounds the transmit-field scale
    (fraction of the nominal 180-degree refocusing angle) of the simulated B1 field.
    """

    in_plane_mm: float = 0.8
    fov_ap_mm: float = 224.0
    fov_si_mm: float = 288.0
    slice_thickness_mm: float = 4.0
    n_slices: int = 13
    n_echoes: int = 12
    esp_ms: float = 10.0
    tr_ms: float = 2000.0
    excite_deg: float = 90.0
    refocus_deg: float = 180.0
    field_strength_t: float = 3.0
    b1_range: tuple[float, float] = (130.0 / 180.0, 1.0)
    t2w_te_ms: float = 100.0
    t2w_tr_ms: float = 4000.0

    def __post_init__(self) -> None:
        for name in (
            "in_plane_mm",
            "fov_ap_mm",
            "fov_si_mm",
            "slice_thickness_mm",
            "esp_ms",
            "tr_ms",
            "t2w_te_ms",
            "t2w_tr_ms",
        ):
            if not getattr(self, name) > 0:
                raise InputError(f"Protocol.{name} must be positive, got {getattr(self, name)!r}")
        for name in ("n_slices", "n_echoes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise InputError(f"Protocol.{name} must be an integer >= 1, got {value!r}")
        lo, hi = self.b1_range
        if not 0 < lo <= hi:
            raise InputError(f"Protocol.b1_range must satisfy 0 < low <= high, got {self.b1_range}")
        if hi * self.refocus_deg > 180.0 + 1e-9:
            raise InputError("Protocol.b1_range * refocus_deg must not exceed 180 degrees")

    @property
    def echo_times_ms(self) -> np.ndarray:
        """Echo times (ms), shape (n_echoes,): n * esp for n = 1..n_echoes."""
        return self.esp_ms * np.arange(1, self.n_echoes + 1)


CLINICAL = Protocol()
"""Clinical sagittal lumbar MESE: 280 x 360 x 13 voxels of 0.8 x 0.8 x 4 mm, 12 echoes."""

DEMO = Protocol(in_plane_mm=1.5, n_slices=7, n_echoes=8, esp_ms=12.0)
"""Coarser protocol for the built-in demo study (149 x 192 x 7 voxels, 8 echoes)."""

TINY = Protocol(in_plane_mm=2.0, n_slices=5, slice_thickness_mm=5.0, n_echoes=6, esp_ms=12.0)
"""A very coarse protocol for quick looks and tests (112 x 144 x 5 voxels, 6 echoes)."""

PRESETS: dict[str, Protocol] = {"clinical": CLINICAL, "demo": DEMO, "tiny": TINY}


@dataclass(frozen=True)
class Grid:
    """A voxel grid: array ``shape`` and the voxel-to-world (RAS+ mm) ``affine``."""

    shape: tuple[int, int, int]
    affine: np.ndarray

    def world_coordinates(self) -> np.ndarray:
        """World coordinates (mm) of every voxel centre, shape (*shape, 3)."""
        idx = np.stack(np.meshgrid(*[np.arange(n) for n in self.shape], indexing="ij"), axis=-1)
        return idx @ self.affine[:3, :3].T + self.affine[:3, 3]


def _axes_for(slab: str, oblique_deg: float) -> np.ndarray:
    """Unit world directions (columns) of array axes 0, 1, 2; axis 2 is the slice axis."""
    p, i, r = np.array([0.0, -1.0, 0.0]), np.array([0.0, 0.0, -1.0]), np.array([1.0, 0.0, 0.0])
    if slab == "sagittal":
        return np.column_stack([p, i, r])  # PIR, like most sagittal spine NIfTIs
    if slab == "axial":
        return np.column_stack([p, r, i])
    if slab == "oblique":
        a = np.deg2rad(oblique_deg)
        rot = np.array([[np.cos(a), 0.0, np.sin(a)], [0.0, 1.0, 0.0], [-np.sin(a), 0.0, np.cos(a)]])
        return rot @ np.column_stack([p, i, r])
    raise InputError(f"slab must be one of {SLAB_ORIENTATIONS}, got {slab!r}")


def slab_grid(
    protocol: Protocol, centre_mm: np.ndarray, *, slab: str = "sagittal", oblique_deg: float = 30.0
) -> Grid:
    """The acquisition grid of ``protocol`` centred on ``centre_mm`` (world RAS+ mm).

    A sagittal slab has in-plane axes (posterior, inferior) and slices toward the right
    (PIR).  ``axial`` and ``oblique`` (the sagittal slab tilted by ``oblique_deg`` about the
    anterior-posterior axis) exist to test orientation checks downstream.
    """
    axes = _axes_for(slab, oblique_deg)
    d = protocol.in_plane_mm
    if slab == "axial":
        shape = (round(protocol.fov_ap_mm / d), round(protocol.fov_ap_mm / d), protocol.n_slices)
    else:
        shape = (round(protocol.fov_ap_mm / d), round(protocol.fov_si_mm / d), protocol.n_slices)
    spacing = np.array([d, d, protocol.slice_thickness_mm])
    lin = axes * spacing
    origin = np.asarray(centre_mm, float) - lin @ ((np.array(shape) - 1) / 2.0)
    affine = np.eye(4)
    affine[:3, :3] = lin
    affine[:3, 3] = origin
    return Grid(shape=shape, affine=affine)
