"""Disc instances and level names from the network's classes, counted up from the sacrum.

Naming works on the mid-sagittal slab (the slices within 4 mm of the one with the widest
spinal canal; each pixel takes the majority class over the slab). There, a disc is a
connected piece of the disc class in front of the canal that touches a vertebral body above
it and a body or the sacrum below it (the top disc may instead be cut by the edge of the
field of view); pieces between the same two bones are one disc. The anchor is the sacrum
class (its pieces across a thin S1/S2 remnant are one sacrum): the biggest disc between a
vertebral body and the sacrum is L5/S1; without one, the disc nearest the sacrum, or the
lowest disc on a body resting on the sacrum (S1 taken for a lumbar body), flagged. Names go
up from there, each disc sharing a vertebral body with the one below it; a thin disc that
leaves two bodies one bone region is taken back by its place in the column (in a double
step, one vertebra at a time; or one step above the chain, in line with the column's own
curve), spare pieces of one broken disc counting as one, and a step of several median
steps with no disc in it counts the missing discs in the names above (flagged). An L5/S1
much smaller than the discs above it is flagged (it may be the S1/S2 remnant). The named
discs then seed the 3D masks: every disc voxel connected to a seed takes the level of the
nearest seed in the sagittal plane. Nothing is renumbered to look normal: an unsure count is a flag.

Flags: ``no_sacrum`` (no sacrum in view: nothing is named), ``level_uncertain`` (the count
may be off), ``transitional_anatomy`` (the cord ends where an extra or missing lumbar
vertebra would put it: the second check), ``missing_level`` (one of T11/T12..L5/S1 is not
named), ``partial_disc`` (a named disc, or the body above it, is cut by the edge of the
field of view: kept as seen, not dropped or stretched), ``no_canal`` (no spinal canal seen).

Arrays are ``(SI, AP, LR)`` (see :mod:`t2quant.segmentation.network`); positions in mm are
(row, column) = (superior->inferior, anterior->posterior).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi

from t2quant.levels import LEVEL_INDEX, LEVELS
from t2quant.segmentation.network import Cls

__all__ = ["UPWARD", "Disc", "Naming", "name_discs"]

UPWARD = (
    "L5/S1", "L4/L5", "L3/L4", "L2/L3", "L1/L2", "T12/L1", "T11/T12",
    "T10/T11", "T9/T10", "T8/T9", "T7/T8", "T6/T7", "T5/T6", "T4/T5",
)  # fmt: skip
SEEDED = {name: LEVEL_INDEX[name] for name in (*LEVELS, "T10/T11")}  # levels painted in 3D
MIN_DISC_MM2 = 25.0  # smallest disc cross-section kept (mid-sagittal)
MIN_BODY_MM2 = 60.0  # smallest vertebral body cross-section kept
MIN_SACRUM_MM2 = 250.0  # smallest sacrum cross-section that anchors the count
REMNANT_MM = 8.0  # sacrum pieces this close to the largest are one sacrum (across S1/S2)
TOUCH_MM = 4.0  # a disc "touches" bone within this distance
SLAB_MM = 4.0  # half-thickness of the mid-sagittal slab
POSTERIOR_MM = 2.0  # a disc pixel this far behind the canal's front wall is behind it
SPREAD_MM = 10.0  # farthest a 3D disc voxel may lie from its seed in the sagittal plane
ANCHOR_GAP_MM = 25.0  # farthest a disc may lie from the sacrum and still be taken as L5/S1
INLINE_MM = 40.0  # a disc in line with the column: centroids this close front-to-back
MAX_STEP_MM = 60.0  # farthest step between neighbouring discs
SPACING_RANGE = (0.55, 1.65)  # neighbouring discs this many median steps apart are even
LATERAL_RATIO = 0.75  # disc half-width / depth (phantom 0.725 + bulge; anatomy 0.65-0.75)
CONUS_WINDOW = (3.25, 4.75)  # usual cord tip in disc steps above L5/S1: L2/L3..T12/L1 with a
# quarter-step margin inside (a sixth lumbar vertebra puts a normal conus above T12/L1)
SACRUM_ID = 10_000  # bone id of the sacrum in the bone map
GAP_DEPTH_RATIO = 1.4  # a step between named discs over this x their depth may hide a disc
PART_DEPTH_RATIO = 0.45  # a disc found in such a gap leaves steps of at least this x depth
INLINE_DETOUR = 1.15  # ... and lies in line: the path through it at most this x the step
INLINE_TURN = float(np.arctan(0.5))  # a disc above the chain: its step turns at most this
JOIN_MM = 6.0  # spare pieces of one broken disc: centres this close in height
REMNANT_AREA_RATIO = 0.3  # an L5/S1 smaller than this x the discs above may be the S1/S2
REMNANT_DEPTH_RATIO = 0.7  # ... or shorter front-to-back than this x the discs above
REMNANT_SHORT_AREA_RATIO = 0.5  # ... and smaller than this x their area
# remnant (set after the real-anatomy phantom's T2w was named one level low without a flag;
# on SPIDER, phantoms and the real volumes it adds no alarm to an unflagged session)


@dataclass
class Disc:
    """One mid-sagittal disc: centroid (mm, row S->I and column A->P), area, neighbours."""

    label: int  # component number in the slab
    centroid_mm: NDArray[np.float64]
    area_mm2: float
    above: int | None  # bone id above (body number, or SACRUM_ID)
    below: int | None
    partial: bool  # the disc itself is cut by the edge of the field of view
    name: str | None = None
    above_cut: bool = False  # the body above is cut by the edge (or missing)
    merged: list[int] = field(default_factory=list)  # other slab components of this disc
    depth_mm: float = 0.0  # length along the disc's long (front-to-back) axis
    on_s1_body: bool = False  # anchored on a body resting on the sacrum (S1 taken for one)

    @property
    def on_sacrum(self) -> bool:
        return self.below == SACRUM_ID

    @property
    def under_body(self) -> bool:
        return self.above is not None and self.above != SACRUM_ID


@dataclass
class Naming:
    """Discs (superior to inferior; ``name`` None when not named), flags, warnings, and
    where each of T11/T12..L5/S1 that is not named would be (``missing``)."""

    discs: list[Disc] = field(default_factory=list)
    flags: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    conus_steps: float | None = None  # cord tip in disc steps above L5/S1
    mid_slice: int = 0
    missing: dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.discs if d.name]

    def disc(self, level: str) -> Disc | None:
        return next((d for d in self.discs if d.name == level), None)


class _Log:
    """Warnings and flags collected while naming."""

    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.flags: set[str] = set()

    def add(self, warning: str, *flags: str) -> None:
        self.warnings.append(warning)
        self.flags.update(flags)


def _slab_range(centre: int, n: int, spacing: NDArray) -> slice:
    width = max(1, int(np.round(SLAB_MM / spacing[2])))
    return slice(max(centre - width, 0), min(centre + width + 1, n))


def mid_slab(classes: NDArray, spacing: NDArray) -> tuple[NDArray[np.uint8], int]:
    """Majority class over the slab around the slice with the widest canal, and its centre."""
    canal = ((classes == Cls.CANAL) | (classes == Cls.CORD)).sum((0, 1)).astype(float)
    width = max(1, int(np.round(SLAB_MM / spacing[2])))
    centre = int(np.argmax(ndi.uniform_filter1d(canal, 2 * width + 1, mode="constant")))
    sub = classes[:, :, _slab_range(centre, classes.shape[2], spacing)]
    votes = np.stack([(sub == c).sum(2) for c in range(int(Cls.CORD) + 1)])
    return votes.argmax(0).astype(np.uint8), centre


def _components(mask: NDArray, min_mm2: float, pixel_mm2: float) -> tuple[NDArray, NDArray]:
    """Connected components of ``mask`` and their areas (mm2); those below ``min_mm2`` are 0."""
    comps, n = ndi.label(mask)
    sizes = np.bincount(comps.ravel(), minlength=n + 1)[1:] * pixel_mm2
    if n:
        comps[np.isin(comps, np.flatnonzero(sizes < min_mm2) + 1)] = 0
    return comps, sizes


def _bones(slab: NDArray, spacing: NDArray) -> NDArray:
    """Bone id map: vertebral bodies 1..n (big enough); the largest sacrum piece, with the
    pieces a thin band (the S1/S2 remnant) away from it, as SACRUM_ID."""
    px = spacing[0] * spacing[1]
    bodies, _ = _components(slab == Cls.BODY, MIN_BODY_MM2, px)
    sac, sizes = _components(slab == Cls.SACRUM, MIN_BODY_MM2, px)
    if sizes.size and sizes.max() >= MIN_SACRUM_MM2:
        near = ndi.binary_dilation(sac == int(np.argmax(sizes)) + 1, _disk(spacing, REMNANT_MM))
        bodies[np.isin(sac, np.unique(sac[near & (sac > 0)]))] = SACRUM_ID
    return bodies


def _disk(spacing: NDArray, radius: float) -> NDArray[np.bool_]:
    r = np.maximum(np.round(radius / spacing[:2]).astype(int), 1)
    ii, pp = np.ogrid[-r[0] : r[0] + 1, -r[1] : r[1] + 1]
    return (ii * spacing[0]) ** 2 + (pp * spacing[1]) ** 2 <= radius**2


def _neighbours(pts, axes, grown, bones, spacing) -> tuple[int | None, int | None]:
    """Bones touching a disc's superior and inferior faces (most touching pixels each), the
    faces told apart along the disc's short axis (the first of ``axes``, the principal axes
    of its pixel positions ``pts``), so steep discs (L5/S1) work too."""
    centre = pts.mean(0)
    normal = axes[:, 0] if len(pts) > 3 else [1.0, 0.0]
    normal = np.asarray(normal) * (1 if normal[0] >= 0 else -1)  # points inferior
    touch = grown & (bones > 0)
    side = (np.argwhere(touch) * spacing[:2] - centre) @ normal
    ids = bones[touch]
    return _most(ids[side < 0]), _most(ids[side > 0])


def _most(ids: NDArray) -> int | None:
    return int(np.bincount(ids).argmax()) if ids.size else None


def canal_front(slab: NDArray) -> NDArray | None:
    """Column of the anterior wall of the spinal canal for every row (interpolated between
    rows where the canal is seen), or None without a canal."""
    canal = (slab == Cls.CANAL) | (slab == Cls.CORD)
    rows = np.flatnonzero(canal.any(1))
    if rows.size < 10:
        return None
    front = np.argmax(canal[rows], axis=1).astype(float)
    return np.interp(np.arange(slab.shape[0]), rows, ndi.median_filter(front, 9, mode="nearest"))


def _drop_behind_canal(comps: NDArray, front: NDArray, spacing: NDArray) -> None:
    """Remove disc pieces lying mostly behind the canal's front wall (facets, spinous
    processes)."""
    rows, cols = np.nonzero(comps)
    behind = cols > front[rows] + POSTERIOR_MM / spacing[1]
    for k in np.unique(comps[rows[behind], cols[behind]]):
        part = comps == k
        r, c = np.nonzero(part)
        if np.mean(c > front[r]) > 0.5:
            comps[part] = 0


def _slab_discs(slab: NDArray, fov: NDArray, spacing: NDArray, log: _Log):
    """Disc candidates of the slab (in front of the canal) with their bony neighbours."""
    comps, _ = ndi.label(slab == Cls.DISC)
    front = canal_front(slab)
    if front is None:
        log.add("no spinal canal found on the mid-sagittal slab", "no_canal")
    else:
        _drop_behind_canal(comps, front, spacing)
    bones = _bones(slab, spacing)
    cut = _cut_bones(bones, fov)
    disk = _disk(spacing, TOUCH_MM)
    out = []
    for k, sl in enumerate(ndi.find_objects(comps), start=1):
        if sl is None:  # removed as lying behind the canal
            continue
        pad = tuple(
            slice(max(s.start - r, 0), s.stop + r) for s, r in zip(sl, disk.shape, strict=True)
        )
        disc = _one_disc(comps[pad] == k, k, pad, bones[pad], fov[pad], slab.shape, disk, spacing)
        if disc is not None:
            disc.above_cut = disc.above is None or disc.above in cut
            out.append(disc)
    return out, comps, bones


def _one_disc(mask, k, pad, bones, fov, shape, disk, spacing) -> Disc | None:
    """The disc of slab component ``k`` (``mask`` in its padded box), or None if too small."""
    area = float(mask.sum() * spacing[0] * spacing[1])
    if area < MIN_DISC_MM2:
        return None
    grown = ndi.binary_dilation(mask, disk)
    cen = (np.argwhere(mask) + [p.start for p in pad]).mean(0) * spacing[:2]
    pts = np.argwhere(mask) * spacing[:2]  # in the padded box (mm)
    axes = _axes(pts)
    above, below = _neighbours(pts, axes, grown, bones, spacing)
    edge = not fov[grown].all() or _at_border(pad, grown, shape)
    if edge and above == below:  # a disc cut by the edge touches only the bone below
        above = None
    return Disc(k, cen, area, above, below, bool(edge), depth_mm=_depth(pts, axes, spacing))


def _axes(pts: NDArray) -> NDArray | None:
    """Principal axes (columns, short first) of pixel positions ``pts`` (mm), or None for
    fewer than 3 pixels."""
    return np.linalg.eigh(np.cov((pts - pts.mean(0)).T))[1] if len(pts) >= 3 else None


def _depth(pts: NDArray, axes: NDArray | None, spacing: NDArray) -> float:
    """Extent (mm) of a disc piece (pixel positions ``pts``, principal ``axes`` as columns,
    short first) along its long axis."""
    if axes is None:
        return float(np.ptp(pts[:, 1])) if len(pts) else 0.0
    along = pts @ axes[:, -1]
    return float(along.max() - along.min() + spacing[:2].mean())


def _cut_bones(bones: NDArray, fov: NDArray) -> set[int]:
    """Bones cut by the edge of the field of view (or of the image)."""
    outside = ~fov
    outside[[0, -1], :] = True
    near = ndi.binary_dilation(outside, iterations=2)
    return {int(i) for i in np.unique(bones[near]) if i > 0}


def _at_border(pad: tuple[slice, ...], grown: NDArray, shape: tuple[int, ...]) -> bool:
    """Whether a grown disc mask (in its padded box) reaches the first or last image row."""
    return (pad[0].start == 0 and grown[0].any()) or (pad[0].stop >= shape[0] and grown[-1].any())


def _keep(discs: list[Disc]) -> list[Disc]:
    """Discs between two bones (or cut by the field of view above a bone); one per bone pair,
    superior to inferior."""
    kept: dict[tuple, Disc] = {}
    for d in sorted(discs, key=lambda d: -d.area_mm2):
        if d.below is None or (d.above is None and not d.partial) or d.above == d.below:
            continue  # not between two bones (a fragment inside one bone, or loose)
        key = (d.above if d.above is not None else -d.label, d.below)
        host = kept.get(key)
        if host is None:
            kept[key] = d
            continue
        host.merged.append(d.label)
        host.area_mm2 += d.area_mm2
        host.partial |= d.partial
    return sorted(kept.values(), key=lambda d: d.centroid_mm[0])


def _anchor(discs: list[Disc], bones: NDArray, spacing: NDArray, log: _Log) -> int | None:
    """Index of L5/S1 in the superior->inferior list, or None when it cannot be anchored."""
    if not (bones == SACRUM_ID).any():
        log.add("no sacrum in the field of view: levels cannot be anchored",
                "no_sacrum", "level_uncertain")  # fmt: skip
        return None
    on = [i for i, d in enumerate(discs) if d.on_sacrum and d.under_body]
    if on:  # the biggest disc between a body and the sacrum (small ones are artefacts)
        return max(on, key=lambda i: discs[i].area_mm2)
    sacrum = np.argwhere(bones == SACRUM_ID) * spacing[:2]
    gaps = [np.min(np.linalg.norm(sacrum - d.centroid_mm, axis=1)) for d in discs]
    best = int(np.argmin(gaps))
    if gaps[best] > ANCHOR_GAP_MM:
        return _anchor_on_s1(discs, bones, spacing, log)
    log.add(f"no disc lies between a vertebral body and the sacrum: the disc nearest the "
            f"sacrum ({gaps[best]:.0f} mm) is taken as L5/S1; check the count",
            "level_uncertain")  # fmt: skip
    discs[best].on_s1_body = discs[best].below in _bodies_on_sacrum(bones, spacing)
    return best


def _anchor_on_s1(discs: list[Disc], bones: NDArray, spacing: NDArray, log: _Log) -> int | None:
    """L5/S1 as the lowest disc on a body resting on the sacrum (S1 taken for a lumbar
    body), or None (flagged) when there is none."""
    s1 = _bodies_on_sacrum(bones, spacing)
    on = [i for i, d in enumerate(discs) if d.below in s1 and d.under_body]
    if on:  # the lowest disc on such a body
        log.add("no disc lies between a vertebral body and the sacrum: the body resting on the "
                "sacrum is taken as S1 and the disc above it as L5/S1; check the count",
                "level_uncertain")  # fmt: skip
        low = max(on, key=lambda i: discs[i].centroid_mm[0])
        discs[low].on_s1_body = True
        return low
    log.add("no disc lies next to the sacrum: levels cannot be anchored", "level_uncertain")
    return None


def _bodies_on_sacrum(bones: NDArray, spacing: NDArray) -> set[int]:
    """Vertebral bodies within ``REMNANT_MM`` of the sacrum: resting on it with no disc
    between, or across a thin remnant; S1 itself when the network takes it for a lumbar
    body."""
    near = ndi.binary_dilation(bones == SACRUM_ID, _disk(spacing, REMNANT_MM))
    return {int(i) for i in np.unique(bones[near]) if 0 < i != SACRUM_ID}


def _next_up(cur: Disc, rest: list[Disc], log: _Log) -> Disc | None:
    """The disc above ``cur``: the one sharing its upper vertebral body, else the nearest in
    line with the column (flagged), else None (the chain stops, flagged)."""
    nxt = next((d for d in rest if cur.above is not None and d.below == cur.above), None)
    if nxt is not None:
        return nxt
    inline = [d for d in rest if abs(d.centroid_mm[1] - cur.centroid_mm[1]) < INLINE_MM]
    if not inline or np.linalg.norm(inline[0].centroid_mm - cur.centroid_mm) > MAX_STEP_MM:
        return None
    log.add("two neighbouring discs do not share a vertebral body: a disc may be missed or a "
            "body split; check the count", "level_uncertain")  # fmt: skip
    return inline[0]


def _chain(discs: list[Disc], anchor: int, log: _Log) -> list[Disc]:
    """Discs from L5/S1 upward (see :func:`_next_up`)."""
    chain = [discs[anchor]]
    rest = discs[:anchor][::-1]  # nearest first
    while rest:
        nxt = _next_up(chain[-1], rest, log)
        if nxt is None:
            log.add(f"the chain of discs stops above {len(chain)} disc(s): the discs above are "
                    "not named", "level_uncertain")  # fmt: skip
            break
        chain.append(nxt)
        rest = [d for d in rest if d.centroid_mm[0] < nxt.centroid_mm[0]]
    skipped = len(discs[:anchor]) - (len(chain) - 1)
    if skipped:
        log.add(f"{skipped} disc-like region(s) off the chain of vertebrae not named")
    return chain


def _fill_gaps(chain: list[Disc], spare: list[Disc]) -> tuple[list[Disc], list[Disc]]:
    """The chain (L5/S1 upward) with the discs it stepped over, and those found.

    A thin or dark disc that does not fully part two vertebral bodies leaves them one bone
    region, so it is not "between two bones" and the chain steps over it or stops below it.
    A spare disc piece is taken into the chain where a step is double (over
    ``GAP_DEPTH_RATIO`` x the discs' depth, one vertebra being about one depth tall, or
    over ``SPACING_RANGE[1]`` x the median step) and the piece lies in line, at least half
    as deep, leaving ``PART_DEPTH_RATIO`` x depth on either side (the nearest first, so
    a step hiding two discs gives both in order); and above the top of the chain, one
    ordinary step up at a time along the column's curve.
    """
    steps = np.linalg.norm(np.diff([d.centroid_mm for d in chain], axis=0), axis=1)
    typical = float(np.median(steps)) if steps.size >= 2 else np.inf
    out, found = [chain[0]], []
    for upper in chain[1:]:
        while hidden := _hidden(out[-1], upper, _unused(spare, found), typical):
            found.append(hidden)
            out.append(hidden)
        out.append(upper)
    while above := _above(out[-1], _unused(spare, found), typical, out[-3:-1]):
        found.append(above)
        out.append(above)
    return out, found


def _join(pieces: list[Disc], comps: NDArray, spacing: NDArray) -> list[Disc]:
    """Spare pieces of one broken disc as one: pieces between the same bones whose centres
    lie within ``JOIN_MM`` in height (side by side, front to back) are joined, with the
    area, centre and depth of their union."""
    groups: list[list[Disc]] = []
    for d in sorted(pieces, key=lambda d: d.centroid_mm[0]):
        host = next((g for g in groups if _same_disc(g[-1], d)), None)
        if host is None:
            groups.append([d])
        else:
            host.append(d)
    return [g[0] if len(g) == 1 else _union(g, comps, spacing) for g in groups]


def _same_disc(a: Disc, b: Disc) -> bool:
    return (a.above, a.below) == (b.above, b.below) and (
        abs(a.centroid_mm[0] - b.centroid_mm[0]) <= JOIN_MM
    )


def _union(group: list[Disc], comps: NDArray, spacing: NDArray) -> Disc:
    """One disc of several slab components (see :func:`_join`)."""
    labels = [d.label for d in group]
    pts = np.argwhere(np.isin(comps, labels)) * spacing[:2]
    first = group[0]
    return Disc(first.label, pts.mean(0), sum(d.area_mm2 for d in group), first.above,
                first.below, any(d.partial for d in group), merged=labels[1:],
                depth_mm=_depth(pts, _axes(pts), spacing))  # fmt: skip


def _unused(spare: list[Disc], found: list[Disc]) -> list[Disc]:
    return [d for d in spare if all(d is not f for f in found)]


def _hidden(low: Disc, up: Disc, spare: list[Disc], typical: float) -> Disc | None:
    """The spare piece hidden in a double step from ``low`` up to ``up`` nearest ``low``
    (the next vertebra up), if any."""
    depth = (low.depth_mm + up.depth_mm) / 2
    step = float(np.linalg.norm(up.centroid_mm - low.centroid_mm))
    if depth <= 0 or step <= min(GAP_DEPTH_RATIO * depth, SPACING_RANGE[1] * typical):
        return None
    fits = []
    for d in spare:
        a = float(np.linalg.norm(d.centroid_mm - low.centroid_mm))
        b = float(np.linalg.norm(up.centroid_mm - d.centroid_mm))
        if (min(a, b) >= PART_DEPTH_RATIO * depth and a + b <= INLINE_DETOUR * step
                and d.depth_mm >= 0.5 * depth):  # fmt: skip
            fits.append(d)
    # the next vertebra up first: the fitting piece nearest the lower disc
    return min(fits, key=lambda d: float(np.linalg.norm(d.centroid_mm - low.centroid_mm)),
               default=None)  # fmt: skip


def _above(
    top: Disc, spare: list[Disc], typical: float, below: list[Disc] | None = None
) -> Disc | None:
    """The nearest spare piece one ordinary step above the top of the chain, if any, in line
    with the column: its step turns at most ``INLINE_TURN`` from the column's axis (from
    the lowest of ``below``, the one or two discs under ``top``, up to ``top``; the
    vertical without them), so a curved column is followed."""
    if top.partial:
        return None
    reach = min(GAP_DEPTH_RATIO * top.depth_mm, SPACING_RANGE[1] * typical)
    axis = top.centroid_mm - below[0].centroid_mm if below else np.array([-1.0, 0.0])
    axis = axis / np.linalg.norm(axis)
    fits = []
    for d in spare:
        vec = d.centroid_mm - top.centroid_mm
        step = float(np.linalg.norm(vec))
        inline = vec[0] < 0 and float(vec @ axis) >= np.cos(INLINE_TURN) * step
        if (inline and PART_DEPTH_RATIO * top.depth_mm <= step <= reach
                and d.depth_mm >= 0.5 * top.depth_mm):  # fmt: skip
            fits.append((step, d))
    return min(fits, key=lambda f: f[0])[1] if fits else None


def _offsets(chain: list[Disc], log: _Log) -> list[int]:
    """Level offsets above L5/S1 of the chain's discs: one per disc, plus the discs missing
    in a step of k >= ``SPACING_RANGE[1]`` median steps (round(k) - 1 each; flagged), so a
    disc the network did not paint at all does not shift every name above it."""
    steps = np.linalg.norm(np.diff([d.centroid_mm for d in chain], axis=0), axis=1)
    if steps.size < 3:
        return list(range(len(chain)))
    typical = float(np.median(steps))
    offsets, offset = [0], 0
    for step in steps:
        missing = int(np.round(step / typical)) - 1 if step >= SPACING_RANGE[1] * typical else 0
        if missing:
            below = UPWARD[offset] if offset < len(UPWARD) else "the disc below"
            log.add(f"{missing} disc(s) missing above {below} ({step:.0f} mm to the next "
                    f"disc, typical {typical:.0f}): counted in the names above",
                    "level_uncertain", "missing_level")  # fmt: skip
        offset += 1 + missing
        offsets.append(offset)
    return offsets


def _check_spacing(named: list[Disc], log: _Log) -> None:
    """Neighbouring named discs must be evenly spaced (a missed or split disc is not)."""
    if len(named) < 3:
        return
    gaps = np.linalg.norm(np.diff([d.centroid_mm for d in named], axis=0), axis=1)
    typical = float(np.median(gaps))
    for up, low, g in zip(named[:-1], named[1:], gaps, strict=True):
        if UPWARD.index(up.name) - UPWARD.index(low.name) > 1:
            continue  # a gap already counted (see _offsets)
        if not SPACING_RANGE[0] * typical <= g <= SPACING_RANGE[1] * typical:
            log.add(f"{up.name} to {low.name}: {g:.0f} mm apart (typical {typical:.0f})",
                    "level_uncertain")  # fmt: skip


def _check_anchor_size(named: list[Disc], log: _Log) -> None:
    """Flag an L5/S1 much smaller (mid-sagittal area) than the discs above it, or small and
    short front-to-back (a collapsed disc keeps its depth, the S1/S2 remnant does not): a
    collapsed L5/S1, or the remnant taken for it (then every name is one level low)."""
    if len(named) < 3:
        return
    above = float(np.median([d.area_mm2 for d in named[-5:-1]]))
    depth = float(np.median([d.depth_mm for d in named[-5:-1]]))
    ratio = named[-1].area_mm2 / above
    short = named[-1].depth_mm < REMNANT_DEPTH_RATIO * depth  # a collapsed disc keeps its depth
    if ratio < REMNANT_AREA_RATIO or (short and ratio < REMNANT_SHORT_AREA_RATIO):
        log.add(f"L5/S1 is {ratio:.2f} x the size of the discs above it: a collapsed L5/S1, or "
                "the S1/S2 remnant taken for it (then every name is one level too low); check "
                "the count", "level_uncertain")  # fmt: skip


def _conus(slab: NDArray, named: list[Disc], spacing: NDArray) -> float | None:
    """Tip of the largest cord component in disc steps above L5/S1 (None if not seen)."""
    cord, n = ndi.label(slab == Cls.CORD)
    if n == 0 or len(named) < 5:
        return None
    rows = np.nonzero(cord == int(np.argmax(np.bincount(cord.ravel())[1:])) + 1)[0]
    if rows.max() >= slab.shape[0] - 1:
        return None
    disc_rows = np.array([d.centroid_mm[0] for d in named])  # superior -> inferior
    steps = np.arange(len(named))[::-1].astype(float)
    return float(np.interp(rows.max() * spacing[0], disc_rows, steps, left=np.nan, right=np.nan))


def _check_conus(steps: float | None, log: _Log) -> None:
    """The second check: flag a cord that ends outside its usual window by this count."""
    if steps is not None and not CONUS_WINDOW[0] <= steps <= CONUS_WINDOW[1]:
        log.add(f"the cord ends {steps:.1f} disc steps above L5/S1 by this count (usually "
                f"{CONUS_WINDOW[0]}-{CONUS_WINDOW[1]}): an extra or missing lumbar vertebra?",
                "transitional_anatomy", "level_uncertain")  # fmt: skip


def _name(discs, spare, bones, slab, spacing, log: _Log) -> float | None:
    """Give names upward from the anchor (taking in the discs hidden in double steps, added
    to ``discs``); run the checks; return the conus position."""
    anchor = _anchor(discs, bones, spacing, log)
    if anchor is None:
        return None
    if anchor < len(discs) - 1:
        log.add(f"{len(discs) - 1 - anchor} disc-like region(s) below L5/S1 not named")
    chain, found = _fill_gaps(_chain(discs, anchor, log), spare)
    for offset, d in zip(_offsets(chain, log), chain, strict=True):
        d.name = UPWARD[offset] if offset < len(UPWARD) else None
    for d in found:
        log.add(f"{d.name}: a disc that does not fully part the vertebral bodies around it; "
                "found by its place in the column")  # fmt: skip
    for lower in chain[:-1]:
        lower.above_cut = False  # a disc sits on the body above it: that body is whole
    discs[:] = sorted([*discs, *found], key=lambda d: d.centroid_mm[0])
    named = [d for d in discs if d.name]
    _check_spacing(named, log)
    _check_anchor_size(named, log)
    steps = _conus(slab, named, spacing)
    _check_conus(steps, log)
    for d in named:
        if d.partial or d.above_cut:
            what = "the disc" if d.partial else "the vertebral body above it"
            log.add(f"{d.name}: {what} is cut by the edge of the field of view", "partial_disc")
    return steps


def _where_missing(naming: Naming, fov: NDArray, spacing: NDArray) -> dict[str, str]:
    """Why each of T11/T12..L5/S1 is not named: above the field of view, at its top edge, or
    not found (extrapolating the named discs' spacing upward)."""
    named = [d for d in naming.discs if d.name in LEVELS]
    if not named:
        why = naming.warnings[-1] if naming.warnings else "no disc found"
        return {lvl: f"not named: {why}" for lvl in LEVELS}
    rows = np.flatnonzero(fov.any(1))
    top_mm = float(rows[0] * spacing[0]) if rows.size else 0.0
    top = min(named, key=lambda d: d.centroid_mm[0])
    steps = np.diff(sorted(d.centroid_mm[0] for d in named))
    step = float(np.median(steps)) if steps.size else 35.0
    out = {}
    low = max(LEVELS.index(d.name) for d in named)
    for lvl in LEVELS[LEVELS.index(top.name) + 1 : low]:
        if all(d.name != lvl for d in named):
            out[lvl] = "not found: a gap in the column between the named discs"
    for lvl in LEVELS[: LEVELS.index(top.name)]:
        expected = top.centroid_mm[0] - (LEVELS.index(top.name) - LEVELS.index(lvl)) * step
        if expected < top_mm - 0.1 * step:
            out[lvl] = "above the field of view"
        elif expected < top_mm + 0.6 * step:
            out[lvl] = "at the top edge of the field of view; not segmented"
        else:
            out[lvl] = "not found in the image"
    return out


def _spread(classes: NDArray, seeds: NDArray, centre: int, spacing: NDArray) -> NDArray:
    """3D level map: disc voxels connected to a seed take the nearest seed's value, out to
    ``LATERAL_RATIO`` times the seed's front-to-back depth on either side of the midline."""
    comps, _ = ndi.label(classes == Cls.DISC)
    sl = _slab_range(centre, classes.shape[2], spacing)
    hit = np.unique(comps[:, :, sl][(seeds > 0)[:, :, None] & (comps[:, :, sl] > 0)])
    keep = np.isin(comps, hit[hit > 0])
    dist, (ii, pp) = ndi.distance_transform_edt(
        seeds == 0, sampling=spacing[:2], return_indices=True
    )
    nearest = np.where(dist <= SPREAD_MM, seeds[ii, pp], 0)
    levels = np.where(keep, nearest[:, :, None], 0).astype(np.uint8)
    lateral = np.abs(np.arange(classes.shape[2]) - centre) * spacing[2]
    for value in np.unique(seeds[seeds > 0]):
        cols = np.flatnonzero((seeds == value).any(0))
        far = lateral > LATERAL_RATIO * (cols[-1] - cols[0] + 1) * spacing[1]
        levels[:, :, far] = np.where(levels[:, :, far] == value, 0, levels[:, :, far])
    return levels


def name_discs(
    classes: NDArray, spacing: NDArray, fov: NDArray | None = None
) -> tuple[Naming, NDArray[np.uint8]]:
    """Name the discs of a class map ``(SI, AP, LR)``.

    ``spacing`` is the voxel size (mm) per axis and ``fov`` the imaged region (default: all).
    Returns the naming and a level map of the same shape: 0, or the project's label index
    (1..7 = T11/T12..L5/S1; discs above T11/T12 are named in the naming only).
    """
    spacing = np.asarray(spacing, float)
    slab, centre = mid_slab(classes, spacing)
    fov2d = np.ones(slab.shape, bool) if fov is None else fov[:, :, centre]
    log = _Log()
    pieces, comps, bones = _slab_discs(slab, fov2d, spacing, log)
    discs = _keep(pieces)
    used = {k for d in discs for k in (d.label, *d.merged)}
    spare = _join([d for d in pieces if d.label not in used], comps, spacing)
    steps = _name(discs, spare, bones, slab, spacing, log) if discs else None
    if not discs:
        log.add("no disc found between vertebral bodies", "level_uncertain")
    seeds = np.zeros(slab.shape, np.uint8)
    for d in discs:
        if d.name in SEEDED:
            seeds[np.isin(comps, [d.label, *d.merged])] = SEEDED[d.name]
    if len({d.name for d in discs} & set(LEVELS)) < len(LEVELS):
        log.flags.add("missing_level")
    naming = Naming(discs, tuple(sorted(log.flags)), tuple(log.warnings), steps, centre)
    naming.missing = _where_missing(naming, fov2d, spacing)
    levels = _spread(classes, seeds, centre, spacing)
    return naming, np.where(levels <= len(LEVELS), levels, 0).astype(np.uint8)
