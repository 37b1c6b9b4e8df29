"""Tissue classes and relaxation properties of the synthetic lumbar spine.

Values are plausible 1.5-3 T figures for a multi-echo spin-echo train, chosen from
the literature summarised in the project notes (disc T2 by Pfirrmann grade: ESR poster data
and Marinelli et al., AJNR 2010; level differences: Hebelka et al. 2019; muscle about 35 ms;
CSF above 1 s).  Proton density (``pd``) is relative to free water (1.0).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from t2quant.levels import LEVELS


class Tissue(IntEnum):
    """Integer codes of the ground-truth tissue map."""

    BACKGROUND = 0
    CSF = 1
    CORD = 2
    NUCLEUS = 3
    ANNULUS = 4
    MARROW = 5
    ENDPLATE = 6
    POSTERIOR_ELEMENTS = 7
    MUSCLE = 8
    FAT = 9
    SOFT_TISSUE = 10
    VESSEL = 11
    LIGAMENT = 12
    SACRAL_REMNANT_DISC = 13
    CORTEX = 14


@dataclass(frozen=True)
class TissueProperties:
    """Relaxation and density of one tissue class (T1, T2 in ms; pd relative to water)."""

    t1_ms: float
    t2_ms: float
    pd: float
    texture_sd: float = 0.0  # relative SD of a smooth multiplicative texture on T2 and pd
    color: str = "#000000"


TISSUES: dict[Tissue, TissueProperties] = {
    Tissue.BACKGROUND: TissueProperties(t1_ms=1000.0, t2_ms=1.0, pd=0.0, color="#000000"),
    Tissue.CSF: TissueProperties(t1_ms=4000.0, t2_ms=1500.0, pd=1.0, color="#00bfff"),
    Tissue.CORD: TissueProperties(t1_ms=850.0, t2_ms=80.0, pd=0.75, color="#ffd700"),
    # Disc tissue is parameterised by grade (see DISC_GRADES); these are grade-2 values.
    Tissue.NUCLEUS: TissueProperties(t1_ms=1200.0, t2_ms=129.0, pd=0.9, color="#ffffff"),
    Tissue.ANNULUS: TissueProperties(t1_ms=1000.0, t2_ms=55.0, pd=0.72, color="#c0c0c0"),
    # Marrow stays at 70 ms although SPIDER's vertebral bodies are brighter relative to their
    # discs: at 85-100 ms the segmenter loses discs of the real-anatomy phantom (issue 18;
    # docs/phantom_appearance.md)
    Tissue.MARROW: TissueProperties(
        t1_ms=550.0, t2_ms=70.0, pd=0.8, texture_sd=0.06, color="#cd853f"
    ),
    Tissue.ENDPLATE: TissueProperties(t1_ms=800.0, t2_ms=12.0, pd=0.15, color="#404040"),
    Tissue.POSTERIOR_ELEMENTS: TissueProperties(
        t1_ms=550.0, t2_ms=45.0, pd=0.55, texture_sd=0.08, color="#a0522d"
    ),
    Tissue.MUSCLE: TissueProperties(
        t1_ms=1100.0, t2_ms=35.0, pd=0.7, texture_sd=0.05, color="#b22222"
    ),
    Tissue.FAT: TissueProperties(
        t1_ms=300.0, t2_ms=110.0, pd=0.9, texture_sd=0.04, color="#f0e68c"
    ),
    Tissue.SOFT_TISSUE: TissueProperties(
        t1_ms=900.0, t2_ms=50.0, pd=0.7, texture_sd=0.15, color="#8fbc8f"
    ),
    Tissue.VESSEL: TissueProperties(t1_ms=1500.0, t2_ms=150.0, pd=0.05, color="#800000"),
    Tissue.LIGAMENT: TissueProperties(t1_ms=800.0, t2_ms=15.0, pd=0.3, color="#2f4f4f"),
    Tissue.SACRAL_REMNANT_DISC: TissueProperties(
        t1_ms=1000.0, t2_ms=40.0, pd=0.55, color="#708090"
    ),
    Tissue.CORTEX: TissueProperties(t1_ms=800.0, t2_ms=10.0, pd=0.1, color="#303030"),
}


@dataclass(frozen=True)
class DiscAppearance:
    """How a Pfirrmann grade shows in the phantom.

    Attributes
    ----------
    nucleus_t2_ms, annulus_anterior_t2_ms, annulus_posterior_t2_ms
        T2 (ms) of nucleus pulposus and of the anterior and posterior annulus fibrosus.
    nucleus_pd, annulus_pd
        Proton density relative to water.
    transition
        Width of the nucleus/annulus boundary as a fraction of the nucleus radius:
        small = clear distinction (grades 1-2), larger = blurred (grades 3-5; the boundary
        of the nucleus of a real grade IV-V disc is still measurable on SPIDER's slices).
    band
        Whether a horizontal intranuclear band (cleft) is drawn (grade 2).
    height_factor
        Disc height relative to a healthy disc of the same level.
    inhomogeneity
        SD of a smooth texture on the log of disc T2 (about its relative SD).
    bulge_mm
        Radial bulge of the annulus beyond the vertebral margin (mm).
    """

    nucleus_t2_ms: float
    annulus_anterior_t2_ms: float
    annulus_posterior_t2_ms: float
    nucleus_pd: float
    annulus_pd: float
    transition: float
    band: bool
    height_factor: float
    inhomogeneity: float
    bulge_mm: float


DISC_GRADES: dict[int, DiscAppearance] = {
    # Nucleus T2 I 210, II 129, III 84, IV 51 ms; annulus anterior 55 -> 37, posterior 62 -> 40
    # from grade I to IV (project notes, section 2).  Grade V extrapolates: black, collapsed.
    # The T2 values are the literature's (the truth of the T2 maps). Proton density,
    # transition, inhomogeneity and height were brought to the appearance of real discs by
    # grade on the SPIDER slices (issue 18; docs/phantom_appearance.md): the nucleus/CSF
    # signal ratio of grades I-II (it was 0.83 and 0.50 on the T2w image, SPIDER's medians are
    # 0.45 and 0.35), the nucleus/annulus contrast of grades III-IV (0.16 and 0.06; SPIDER
    # 0.30 and 0.28; the annulus darker, but not at grade V, whose last echoes would sink into
    # the noise) and the inhomogeneity that grows with grade. Heights
    # keep Pfirrmann's definitions (V collapsed): measured with the automatic masks the
    # phantom's height index already falls less with grade than the drawn heights do.
    1: DiscAppearance(210.0, 55.0, 62.0, 0.62, 0.60, 0.08, False, 1.00, 0.03, 0.0),
    2: DiscAppearance(129.0, 49.0, 55.0, 0.62, 0.50, 0.12, True, 1.00, 0.06, 0.5),
    3: DiscAppearance(84.0, 43.0, 47.0, 0.62, 0.48, 0.35, False, 0.90, 0.16, 1.0),
    4: DiscAppearance(51.0, 37.0, 40.0, 0.62, 0.38, 0.70, False, 0.70, 0.20, 1.8),
    5: DiscAppearance(38.0, 33.0, 35.0, 0.50, 0.50, 0.90, False, 0.40, 0.25, 2.5),
}

LEVEL_T2_FACTOR: dict[str, float] = dict(
    zip(LEVELS, (1.14, 1.12, 1.06, 1.03, 1.00, 0.99, 0.97), strict=True)
)
"""Multiplicative disc-T2 factor by level at equal grade: T12/L1 runs 9-18% above the lower
lumbar levels (Hebelka 2019); the extra lumbar levels of transitional anatomy use 0.98."""


def level_t2_factor(level: str) -> float:
    """Disc T2 factor of a level (1.0 for L3/L4); 0.98 for transitional levels."""
    return LEVEL_T2_FACTOR.get(level, 0.98)


def disc_appearance(grade: int) -> DiscAppearance:
    """Appearance of a disc of Pfirrmann ``grade`` (1..5)."""
    if grade not in DISC_GRADES:
        raise ValueError(f"Pfirrmann grade must be an integer 1..5, got {grade!r}")
    return DISC_GRADES[grade]
