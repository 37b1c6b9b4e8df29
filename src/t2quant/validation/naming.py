"""A slice's level naming against a rater's count of its visible discs (SPIDER's
``n_discs``): the figures of issue 17's naming target, shared by the segmentation bench and
the tests.

Pure: a :class:`~t2quant.segmentation.naming.Naming` and a count in, booleans out.
"""

from __future__ import annotations

from dataclasses import dataclass

from t2quant.levels import LEVELS
from t2quant.segmentation.naming import UPWARD, Naming

__all__ = ["ALERT", "CountCheck", "count_check"]

ALERT = frozenset({"no_sacrum", "level_uncertain", "transitional_anatomy", "missing_level"})


@dataclass(frozen=True)
class CountCheck:
    """How a slice's names compare with the rater's count of visible discs.

    ``target``: every disc from L5/S1 up to the top of the view or to T11/T12 (whichever is
    lower) named, consecutively from an anchored L5/S1, and no more named than are visible
    (discs cut by the edge aside): the issue's reading. ``good``: the count matches with or
    without the named discs cut by the edge. ``strict``: it matches exactly. ``alert``: a
    flag other than ``missing_level`` warns that the count may be off."""

    named: int
    edge: int
    anchored: bool
    strict: bool
    good: bool
    target: bool
    alert: bool


def count_check(naming: Naming, n_discs: int) -> CountCheck:
    """Compare ``naming`` with ``n_discs`` visible discs (see :class:`CountCheck`)."""
    named = naming.names
    consecutive = named == list(UPWARD[: len(named)])[::-1]
    edge = [d for d in naming.discs if d.name and (d.partial or d.above_cut)]
    low = naming.disc("L5/S1")
    anchored = bool(low and (low.on_sacrum or low.on_s1_body) and low.under_body)
    strict = len(named) == n_discs and consecutive and anchored
    good = len(named) - len(edge) <= n_discs <= len(named) and consecutive and anchored
    required = min(n_discs, len(LEVELS))  # LEVELS: T11/T12..L5/S1
    target = (required <= len(named) and len(named) - len(edge) <= n_discs
              and consecutive and anchored)  # fmt: skip
    alert = bool((ALERT - {"missing_level"}) & set(naming.flags))
    return CountCheck(len(named), len(edge), anchored, strict, good, target, alert)
