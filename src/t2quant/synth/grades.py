"""Pfirrmann grade patterns of synthetic participants, following the SPIDER gradings.

Each participant has a latent degeneration score ``z ~ N(0, 1)``; each disc's latent value
is ``sqrt(rho) * z + sqrt(1 - rho) * e`` with ``e ~ N(0, 1)``, cut into grades 1..5 at the
normal quantiles of that level's SPIDER grade distribution.  ``rho`` is the within-person
correlation estimated from SPIDER (``fixtures/make_spider_grade_model.py``), so both the
marginal grade distribution of each level and the tendency of one spine to degenerate as a
whole match the reference data.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

import numpy as np
from scipy.stats import norm

from t2quant.levels import LEVELS


@cache
def spider_grade_model() -> dict:
    """The packaged SPIDER summary: grade counts by level and the latent correlation."""
    text = resources.files("t2quant.data").joinpath("spider_grade_model.json").read_text()
    return json.loads(text)


def level_cutpoints(counts: list[int]) -> np.ndarray:
    """Normal-score thresholds (4,) separating grades 1..5 for one level's grade counts."""
    p = np.cumsum(counts)[:-1] / np.sum(counts)
    return norm.ppf(p)


def sample_grades(rng: np.random.Generator, *, latent: float | None = None) -> dict[str, int]:
    """Draw the seven Pfirrmann grades of one participant (T11/T12..L5/S1).

    ``latent`` fixes the participant's degeneration score instead of drawing it.
    """
    model = spider_grade_model()
    rho = model["within_person_latent_correlation"]
    z = rng.normal() if latent is None else latent
    grades = {}
    for level in LEVELS:
        cuts = level_cutpoints(model["grade_counts_by_level"][level])
        value = np.sqrt(rho) * z + np.sqrt(1 - rho) * rng.normal()
        grades[level] = int(np.searchsorted(cuts, value) + 1)
    return grades
