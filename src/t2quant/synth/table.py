"""The synthetic trial as a disc-level table, straight from the generative model.

:func:`simulate_disc_table` draws the same participants, grades and T2 offsets as
:func:`t2quant.synth.writer.write_synthetic_study`, but without rendering images: the
whole-disc T2 is the model's natural mean plus the offsets of :mod:`t2quant.synth.study`.
It lets the moderator stage be checked over many seeds in seconds; the image-based study is
the end-to-end check.

:func:`true_subgroup_effects` gives, for any subgroup of a table, the true between-group net
difference in T2 change that a correct analysis should recover.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from t2quant.io import bids
from t2quant.levels import LEVEL_INDEX, LEVELS
from t2quant.synth.study import (
    SESSION_WEEKS,
    SESSIONS,
    TrueEffects,
    disc_offsets_ms,
    draw_participants,
    participant_truth,
)
from t2quant.synth.tissues import disc_appearance, level_t2_factor

__all__ = [
    "NUCLEUS_FRACTION",
    "natural_t2_ms",
    "simulate_disc_table",
    "true_subgroup_effects",
]

NUCLEUS_FRACTION = 0.45
"""Share of a disc's voxels in the nucleus, for the model-level natural mean T2."""

COVARIATES = tuple(bids.PARTICIPANT_COVARIATES)


def natural_t2_ms(grade: int, level: str) -> float:
    """Whole-disc mean T2 (ms) of a disc of ``grade`` at ``level`` before any offset:
    nucleus and mean annulus T2 mixed by :data:`NUCLEUS_FRACTION`, times the level factor."""
    look = disc_appearance(grade)
    annulus = 0.5 * (look.annulus_anterior_t2_ms + look.annulus_posterior_t2_ms)
    mixed = NUCLEUS_FRACTION * look.nucleus_t2_ms + (1 - NUCLEUS_FRACTION) * annulus
    return mixed * level_t2_factor(level)


def simulate_disc_table(
    n_participants: int = 40, seed: int = 0, effects: TrueEffects | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A disc table in the layout of ``discs.tsv`` and the per-participant truth.

    Returns
    -------
    table
        One row per participant x session x level (``n * 3 * 7`` rows) with
        ``t2_mean_ms``, ``pfirrmann`` (the true grade, fixed over sessions),
        ``timepoint_weeks``, ``group`` and the ``participants.tsv`` covariates.
    truth
        :func:`t2quant.synth.study.participant_truth`: ``true_effect_<session>_ms`` per
        participant (0 for controls).
    """
    effects = effects or TrueEffects()
    people = draw_participants(n_participants, seed)
    truth = participant_truth(people, effects, seed)
    rows = []
    for i, person in enumerate(people.itertuples()):
        offsets = disc_offsets_ms(truth.iloc[i], effects, seed, i)
        for ses in SESSIONS:
            for level in LEVELS:
                grade = person.grades[level]
                rows.append(
                    {
                        "participant_id": person.participant_id,
                        "session": ses,
                        "timepoint_weeks": SESSION_WEEKS[ses],
                        "group": person.group,
                        "level": level,
                        "level_index": LEVEL_INDEX[level],
                        "t2_mean_ms": natural_t2_ms(grade, level) + offsets[ses][level],
                        "pfirrmann": grade,
                        **{c: getattr(person, c) for c in COVARIATES},
                        "qc_status": "ok",
                        "qc_reason": "",
                    }
                )
    return pd.DataFrame(rows), truth


def true_subgroup_effects(
    table: pd.DataFrame, truth: pd.DataFrame, weeks: dict[str, int] | None = None
) -> dict[int, float]:
    """True net difference (run minus control) in T2 change at each follow-up week for the
    discs in ``table``: the disc-weighted mean true effect of its runners (controls have
    none, and the common drift cancels)."""
    weeks = weeks or SESSION_WEEKS
    base = table[(table["group"] == "run") & (table["timepoint_weeks"] == 0)]
    per = base.groupby("participant_id").size()
    t = truth.set_index("participant_id")
    out = {}
    for ses, week in weeks.items():
        if week == 0:
            continue
        effect = t.loc[per.index, f"true_effect_{ses}_ms"]
        out[week] = float(np.average(effect, weights=per)) if len(per) else float("nan")
    return out
