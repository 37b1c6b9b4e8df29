"""Settings of the moderator stage: the model, and which moderators to test.

A configuration is a TOML file (``pipelines/asteroid.toml`` is the trial's)::

    moderators = ["pfirrmann_category", "sex", "running_volume_quartile"]

    [model]
    outcome = "t2_mean_ms"          # any numeric column of discs.tsv
    reml = true                     # false: maximum likelihood
    formulation = "crossed"         # or "level_fixed" (faster; equal on balanced data)
    baseline_adjustment = false     # true: change from baseline ~ ... + baseline outcome
    covariates = []                 # extra fixed effects, e.g. ["bmi", "sex"]
    fdr = true                      # Benjamini-Hochberg across all subgroup tests
    min_participants_per_arm = 3    # smaller subgroups get a row with a warning, no fit
    exclude_failed = true           # leave out rows with qc_status failed or excluded (counted)

    [custom.age_quartile]           # a moderator of your own
    column = "age"
    scale = "quartiles"             # categorical | quartiles | continuous
    kind = "patient"                # patient: both arms; intervention: runners vs all controls

Every key is optional; the defaults are :data:`DEFAULT` (the ASTEROID set).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from t2quant.errors import InputError

__all__ = [
    "ASTEROID_MODERATORS",
    "CATALOGUE",
    "DEFAULT",
    "ModelSettings",
    "Moderator",
    "StatsConfig",
    "load_config",
]

SCALES = ("categorical", "quartiles", "continuous")
KINDS = ("patient", "intervention")
PFIRRMANN_CATEGORIES = {1: "normal", 2: "mild", 3: "moderate", 4: "severe", 5: "advanced"}


@dataclass(frozen=True)
class Moderator:
    """One moderator: where its value comes from and how subgroups are formed.

    ``kind="patient"``: each subgroup holds both arms. ``kind="intervention"``: the value
    exists for runners only; each runner subgroup is compared with the whole control group.
    ``per_disc``: the value varies between a participant's discs (baseline Pfirrmann).
    """

    name: str
    column: str
    scale: str
    kind: str = "patient"
    per_disc: bool = False
    label: str = ""

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise InputError(f"moderator {self.name}: scale must be one of {SCALES}")
        if self.kind not in KINDS:
            raise InputError(f"moderator {self.name}: kind must be one of {KINDS}")


CATALOGUE: dict[str, Moderator] = {
    m.name: m
    for m in (
        Moderator(
            "pfirrmann_category",
            "pfirrmann_baseline",
            "categorical",
            per_disc=True,
            label="Baseline Pfirrmann grade of the disc",
        ),
        Moderator(
            "aggregated_pfirrmann_quartile",
            "aggregated_pfirrmann_baseline",
            "quartiles",
            label="Aggregated Pfirrmann score (quartiles)",
        ),
        Moderator("sex", "sex", "categorical", label="Sex"),
        Moderator("bmi_quartile", "bmi", "quartiles", label="BMI (quartiles)"),
        Moderator("bmi", "bmi", "continuous", label="BMI (per kg/m2)"),
        Moderator(
            "running_volume_quartile",
            "running_volume_km",
            "quartiles",
            "intervention",
            label="Running volume 0-12 weeks (quartiles, km)",
        ),
        Moderator(
            "running_volume_6_12_quartile",
            "running_volume_6_12_km",
            "quartiles",
            "intervention",
            label="Running volume 6-12 weeks (quartiles, km)",
        ),
        Moderator(
            "mean_speed_quartile",
            "mean_speed_kmh",
            "quartiles",
            "intervention",
            label="Mean running speed (quartiles, km/h)",
        ),
        Moderator(
            "dominant_surface",
            "dominant_surface",
            "categorical",
            "intervention",
            label="Dominant running surface",
        ),
    )
}
ASTEROID_MODERATORS: tuple[str, ...] = tuple(CATALOGUE)


@dataclass(frozen=True)
class ModelSettings:
    """The mixed model fitted overall and in every subgroup."""

    outcome: str = "t2_mean_ms"
    reml: bool = True
    formulation: str = "crossed"
    baseline_adjustment: bool = False
    covariates: tuple[str, ...] = ()
    fdr: bool = True
    min_participants_per_arm: int = 3
    exclude_failed: bool = True

    def __post_init__(self) -> None:
        if self.formulation not in ("crossed", "level_fixed"):
            raise InputError("formulation must be 'crossed' or 'level_fixed'")
        if self.min_participants_per_arm < 2:
            raise InputError("min_participants_per_arm must be at least 2")


@dataclass(frozen=True)
class StatsConfig:
    model: ModelSettings = field(default_factory=ModelSettings)
    moderators: tuple[Moderator, ...] = tuple(CATALOGUE.values())


DEFAULT = StatsConfig()


def _moderators(names, custom: dict) -> tuple[Moderator, ...]:
    known = CATALOGUE | custom
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InputError(f"unknown moderator(s) {unknown}; known: {sorted(known)}")
    return tuple(known[n] for n in names)


def load_config(path: str | Path | None = None, *, moderators: list[str] | None = None):
    """A :class:`StatsConfig` from a TOML file (``None``: the defaults). ``moderators``
    (a list of names, or ``["none"]``) overrides the file's list."""
    raw: dict = {}
    if path is not None:
        try:
            raw = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as err:
            raise InputError(f"{path}: cannot read the stats configuration: {err}") from None
    extra = set(raw) - {"model", "moderators", "custom"}
    if extra:
        raise InputError(f"{path}: unknown section(s) {sorted(extra)}")
    try:
        model = ModelSettings(**_model_args(raw.get("model", {})))
        custom = {
            name: Moderator(name=name, **spec) for name, spec in raw.get("custom", {}).items()
        }
    except TypeError as err:
        raise InputError(f"{path}: {err}") from None
    names = moderators if moderators is not None else raw.get("moderators", ASTEROID_MODERATORS)
    if list(names) == ["none"]:
        names = []
    return StatsConfig(model=model, moderators=_moderators(list(names), custom))


def _model_args(section: dict) -> dict:
    args = dict(section)
    unknown = set(args) - {f.name for f in fields(ModelSettings)}
    if unknown:
        raise TypeError(f"unknown [model] setting(s) {sorted(unknown)} (the moderators list "
                        "goes above the first [section])")  # fmt: skip
    if "covariates" in args:
        args["covariates"] = tuple(args["covariates"])
    return args
