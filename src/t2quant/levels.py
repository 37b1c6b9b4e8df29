"""Intervertebral disc levels and the project's label indices.

The project labels the seven discs from T11/T12 down to L5/S1 with indices 1..7
(index 0 is background).  Transitional anatomy gets indices above 7 so that it can be
represented in ground truth and reported, never renumbered into the standard seven.
"""

from __future__ import annotations

LEVELS: tuple[str, ...] = ("T11/T12", "T12/L1", "L1/L2", "L2/L3", "L3/L4", "L4/L5", "L5/S1")
"""The seven discs of the analysis, superior to inferior; label index = position + 1."""

EXTRA_LEVELS: dict[int, str] = {8: "L5/L6", 9: "L6/S1", 10: "T10/T11"}
"""Label indices of discs outside the standard seven (transitional anatomy, wide views)."""

LEVEL_INDEX: dict[str, int] = {name: i + 1 for i, name in enumerate(LEVELS)} | {
    name: i for i, name in EXTRA_LEVELS.items()
}
INDEX_LEVEL: dict[int, str] = {i: name for name, i in LEVEL_INDEX.items()}

ABBREVIATIONS: dict[str, str] = {name: name.replace("/", "") for name in LEVEL_INDEX}

# Distinct colours for QC pictures and BIDS dseg.tsv lookups (hex RGB).
LEVEL_COLORS: dict[str, str] = {
    "T10/T11": "#7f7f7f",
    "T11/T12": "#1f77b4",
    "T12/L1": "#ff7f0e",
    "L1/L2": "#2ca02c",
    "L2/L3": "#d62728",
    "L3/L4": "#9467bd",
    "L4/L5": "#8c564b",
    "L5/S1": "#e377c2",
    "L5/L6": "#bcbd22",
    "L6/S1": "#17becf",
}


def level_index(name: str) -> int:
    """Return the label index of a level name such as ``"L4/L5"``.

    Raises
    ------
    ValueError
        If the name is not a known level.
    """
    try:
        return LEVEL_INDEX[name]
    except KeyError:
        known = ", ".join(LEVEL_INDEX)
        raise ValueError(f"unknown disc level {name!r}; known levels: {known}") from None
