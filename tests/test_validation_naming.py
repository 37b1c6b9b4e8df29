"""The naming check against a rater's visible-disc count (t2quant.validation.naming)."""

from __future__ import annotations

import numpy as np

from t2quant.segmentation.naming import SACRUM_ID, UPWARD, Disc, Naming
from t2quant.validation.naming import count_check


def _naming(n: int, *, top_cut: bool = False, flags: tuple[str, ...] = ()) -> Naming:
    """``n`` discs named L5/S1 upward, L5/S1 on the sacrum, the top one cut if asked."""
    discs = []
    for k in range(n):
        below = SACRUM_ID if k == 0 else k
        d = Disc(k, np.array([200.0 - 35 * k, 100.0]), 300.0, k + 1, below, False)
        d.name = UPWARD[k]
        discs.append(d)
    discs[-1].partial = top_cut
    return Naming(discs[::-1], flags)


def test_a_full_count_from_the_sacrum_meets_the_target():
    c = count_check(_naming(6), 6)
    assert (c.named, c.edge, c.anchored, c.strict, c.good, c.target) == (6, 0, True, True,
                                                                          True, True)  # fmt: skip


def test_a_disc_cut_by_the_top_edge_may_or_may_not_be_counted():
    assert count_check(_naming(7, top_cut=True), 6).good  # the rater left it out
    assert count_check(_naming(7, top_cut=True), 7).strict  # the rater counted it
    assert not count_check(_naming(7), 6).target  # a whole disc more than visible: invented


def test_the_target_needs_only_t11_t12_and_below():
    # nine visible discs: naming L5/S1..T11/T12 (7) and one more meets the target
    assert count_check(_naming(8, top_cut=True), 9).target
    assert not count_check(_naming(6), 9).target  # T11/T12 missing


def test_an_unanchored_or_gapped_count_misses_and_a_flag_is_an_alert():
    naming = _naming(6, flags=("level_uncertain",))
    naming.discs[-1].below = 3  # L5/S1 not on the sacrum
    c = count_check(naming, 6)
    assert not c.anchored and not c.target and c.alert
    gapped = _naming(6, flags=("missing_level",))
    gapped.discs[2].name = "L1/L2"  # L3/L4 renamed: not consecutive
    c = count_check(gapped, 6)
    assert not c.target and not c.alert  # missing_level alone is no alert
