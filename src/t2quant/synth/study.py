"""Generative model of the synthetic trial: participants, moderators and disc T2 over time.

The default study mirrors the ASTEROID trial design: 40 adults aged 18-45, 20 runners and
20 waitlist controls, half of each arm women, MRI at baseline, 6 and 12 weeks.

Disc T2 model
-------------
For participant ``i``, disc level ``l`` and session ``t`` the true whole-disc mean T2 is::

    T2[i,l,t] = natural[i,l,t] + u[i] + w[i,l] + drift * f(t)
                + run[i] * f(t) * effect[i] + e[i,l,t]

- ``natural``: the phantom's whole-disc mean for the disc's Pfirrmann grade, level and
  geometry (nucleus/annulus T2 by grade, level factor; see :mod:`t2quant.synth.tissues`);
- ``u ~ N(0, participant_sd)``, ``w ~ N(0, disc_sd)``: participant and disc random effects;
- ``f(t)``: fraction of the full effect reached by a session (0, 0.5, 1 by default), so the
  effect at 12 weeks is twice that at 6 weeks;
- ``drift``: a change common to both arms (scanner drift, season);
- ``e ~ N(0, measurement_sd)``: session-to-session biological and measurement noise;
- ``effect[i]`` (runners only), additive in ms::

      base + volume_peak * exp(-((volume - volume_centre) / volume_width)^2)   (sweet spot)
           + top_aggregated_pfirrmann * [aggregated Pfirrmann >= top_cut]
           + surface[dominant_surface]
           + speed_slope * (mean_speed - speed_reference)
           + bmi_slope * (bmi - 25)                                            (0: no effect)

The parameters are written to ``derivatives/groundtruth/effects.json`` and the per-runner
effects to ``participants_truth.tsv`` so the moderator stage can be checked against them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from t2quant.errors import InputError
from t2quant.levels import LEVELS
from t2quant.synth.grades import sample_grades

SESSIONS: tuple[str, ...] = ("baseline", "wk06", "wk12")
SESSION_WEEKS: dict[str, int] = {"baseline": 0, "wk06": 6, "wk12": 12}
GROUPS: tuple[str, ...] = ("run", "control")
SURFACES: tuple[str, ...] = ("grass", "gravel", "pavement", "trail")


@dataclass(frozen=True)
class TrueEffects:
    """Parameters of the disc-T2 generative model (all in ms unless named otherwise)."""

    participant_sd_ms: float = 4.0
    disc_sd_ms: float = 3.0
    measurement_sd_ms: float = 1.5
    time_fraction: dict[str, float] = field(
        default_factory=lambda: {"baseline": 0.0, "wk06": 0.5, "wk12": 1.0}
    )
    drift_ms: float = -0.5
    base_ms: float = 0.5
    volume_peak_ms: float = 4.0
    volume_centre_km: float = 37.0
    volume_width_km: float = 12.0
    top_aggregated_pfirrmann_ms: float = 2.5
    top_aggregated_pfirrmann_cut: int = 23
    surface_ms: dict[str, float] = field(
        default_factory=lambda: {"grass": 2.0, "trail": 1.0, "gravel": 0.5, "pavement": 0.0}
    )
    speed_slope_ms_per_kmh: float = 0.5
    speed_reference_kmh: float = 8.0
    bmi_slope_ms_per_unit: float = 0.0
    sex_ms: float = 0.0

    def runner_effect_ms(
        self,
        *,
        volume_km: float,
        aggregated_pfirrmann: int,
        surface: str,
        speed_kmh: float,
        bmi: float,
    ) -> float:
        """Full (12-week) running effect on whole-disc T2 of one runner (ms)."""
        if surface not in self.surface_ms:
            raise InputError(
                f"unknown running surface {surface!r}; known: {sorted(self.surface_ms)}"
            )
        sweet = self.volume_peak_ms * np.exp(
            -(((volume_km - self.volume_centre_km) / self.volume_width_km) ** 2)
        )
        top = self.top_aggregated_pfirrmann_ms * (
            aggregated_pfirrmann >= self.top_aggregated_pfirrmann_cut
        )
        return float(
            self.base_ms
            + sweet
            + top
            + self.surface_ms[surface]
            + self.speed_slope_ms_per_kmh * (speed_kmh - self.speed_reference_kmh)
            + self.bmi_slope_ms_per_unit * (bmi - 25.0)
        )

    def as_dict(self) -> dict:
        return asdict(self)


def participant_label(i: int, n: int) -> str:
    """BIDS participant label ``sub-01``.. with enough digits for ``n``."""
    return f"sub-{i + 1:0{max(2, len(str(n)))}d}"


def draw_participants(n: int, seed: int, groups: Sequence[str] | None = None) -> pd.DataFrame:
    """Participants of a two-arm study: demographics, running exposure, grades.

    Returns one row per participant with the BIDS ``participants.tsv`` columns
    (``participant_id``, ``group``, ``sex``, ``age``, ``bmi``, ``running_volume_km``,
    ``running_volume_6_12_km``, ``mean_speed_kmh``, ``dominant_surface``; running columns
    are NaN for controls) plus ``grades`` (dict level -> grade) and ``anatomy_seed``.
    Arms are equal (odd ``n``: one more runner) unless ``groups`` gives each participant's
    arm (``"run"`` or ``"control"``); each arm is half women.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 2:
        raise InputError(f"a study needs an integer number of participants >= 2, got {n!r}")
    rng = np.random.default_rng([seed, 1])
    if groups is None:
        n_run = (n + 1) // 2
        groups = np.array(["run"] * n_run + ["control"] * (n - n_run))
        rng.shuffle(groups)
    else:
        groups = np.asarray(list(groups), dtype=object)
        unknown = sorted(set(groups) - set(GROUPS))
        if unknown:
            raise InputError(f"unknown group(s) {unknown}; groups are {list(GROUPS)}")
        if len(groups) != n:
            raise InputError(f"{len(groups)} groups given for {n} participants")
    sex = np.empty(n, dtype=object)
    for g in GROUPS:
        idx = np.flatnonzero(groups == g)
        sexes = np.array(["F", "M"] * ((len(idx) + 1) // 2))[: len(idx)]
        rng.shuffle(sexes)
        sex[idx] = sexes
    runners = np.flatnonzero(groups == "run")
    surfaces = np.resize(np.array(SURFACES), len(runners))
    rng.shuffle(surfaces)
    rows = []
    for i in range(n):
        volume = float(np.clip(rng.lognormal(np.log(35.0), 0.6), 1.8, 109.8))
        row = {
            "participant_id": participant_label(i, n),
            "group": str(groups[i]),
            "sex": str(sex[i]),
            "age": int(rng.integers(18, 46)),
            "bmi": round(float(np.clip(rng.normal(25.0, 3.5), 18.0, 38.0)), 1),
            "running_volume_km": np.nan,
            "running_volume_6_12_km": np.nan,
            "mean_speed_kmh": np.nan,
            "dominant_surface": None,
            "grades": sample_grades(rng),
            "anatomy_seed": int(rng.integers(0, 2**31)),
        }
        if groups[i] == "run":
            row["running_volume_km"] = round(volume, 1)
            row["running_volume_6_12_km"] = round(volume * rng.uniform(0.55, 0.7), 1)
            row["mean_speed_kmh"] = round(float(np.clip(rng.normal(8.5, 1.6), 4.4, 11.7)), 2)
            row["dominant_surface"] = str(surfaces[np.searchsorted(runners, i)])
        rows.append(row)
    return pd.DataFrame(rows)


def participant_truth(participants: pd.DataFrame, effects: TrueEffects, seed: int) -> pd.DataFrame:
    """Per participant: aggregated Pfirrmann, random effect, and the true effect by session."""
    rng = np.random.default_rng([seed, 2])
    rows = []
    for p in participants.itertuples():
        agg = int(sum(p.grades.values()))
        full = 0.0
        if p.group == "run":
            full = effects.runner_effect_ms(
                volume_km=p.running_volume_km,
                aggregated_pfirrmann=agg,
                surface=p.dominant_surface,
                speed_kmh=p.mean_speed_kmh,
                bmi=p.bmi,
            )
        row = {
            "participant_id": p.participant_id,
            "group": p.group,
            "aggregated_pfirrmann": agg,
            "participant_effect_ms": float(rng.normal(0, effects.participant_sd_ms)),
        }
        for ses in SESSIONS:
            row[f"true_effect_{ses}_ms"] = effects.time_fraction[ses] * full
        rows.append(row)
    return pd.DataFrame(rows)


def disc_offsets_ms(
    truth_row: pd.Series, effects: TrueEffects, seed: int, participant_index: int
) -> dict[str, dict[str, float]]:
    """Offsets (ms) added to each disc's natural mean T2, by session then level.

    Combines the participant effect, a per-disc effect (fixed over sessions), drift, the
    running effect and independent measurement noise per session.
    """
    rng = np.random.default_rng([seed, 3, participant_index])
    disc = {lvl: float(rng.normal(0, effects.disc_sd_ms)) for lvl in LEVELS}
    out = {}
    for ses in SESSIONS:
        common = (
            truth_row["participant_effect_ms"]
            + effects.drift_ms * effects.time_fraction[ses]
            + truth_row[f"true_effect_{ses}_ms"]
        )
        out[ses] = {
            lvl: common + disc[lvl] + float(rng.normal(0, effects.measurement_sd_ms))
            for lvl in LEVELS
        }
    return out


def fat_thickness_for_bmi(bmi: float, rng: np.random.Generator) -> float:
    """Posterior subcutaneous fat thickness (mm) rising with BMI, with spread."""
    return float(np.clip(6.0 + 1.6 * (bmi - 18.0) + rng.normal(0, 3.0), 4.0, 50.0))


def body_size_scale(sex: str, rng: np.random.Generator) -> float:
    """Overall spine size factor: women about 7% smaller than men on average."""
    return float((0.95 if sex == "F" else 1.03) * rng.uniform(0.95, 1.05))
