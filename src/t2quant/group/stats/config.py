"""Settings of the moderator stage: the model, and which moderators to test.

A configuration is a TOML file (``pipelines/asteroid.toml`` is the trial's)::

    moderators = ["pfirrmann_category", "sex", "running_volume_quartile"]

    [model]
    outcome = "t2_mean_ms"          # any numeric column of discs.tsv
    reml = true                     # false: maximum likelihood
    formulation = "crossed"         # or "level_fixed" (level in the fixed part)
    inference = "satterthwaite"     # or "kenward-roger" (REML only) or "wald" (z)
    baseline_adjustment = false     # true: change from baseline ~ ... + baseline outcome
    covariates = []                 # extra fixed effects, e.g. ["bmi", "sex"]
    fdr = true                      # Benjamini-Hochberg across all subgroup tests, and
                                    # separately across all interaction tests
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
from dataclasses import dataclass, field
from pathlib import Path

from t2quant.errors import InputError
from t2quant.group.stats.inference import METHODS

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
    """The mixed model fitted overall and in every subgroup, and how it is tested.

    ``inference``: ``"satterthwaite"`` (lmerTest's df), ``"kenward-roger"`` (pbkrtest's
    adjusted covariance and df; REML fits only) or ``"wald"`` (z and chi-square).
    """

    outcome: str = "t2_mean_ms"
    reml: bool = True
    formulation: str = "crossed"
    inference: str = "satterthwaite"
    baseline_adjustment: bool = False
    covariates: tuple[str, ...] = ()
    fdr: bool = True
    min_participants_per_arm: int = 3
    exclude_failed: bool = True

    def __post_init__(self) -> None:
        if self.formulation not in ("crossed", "level_fixed"):
            raise InputError("formulation must be 'crossed' or 'level_fixed'")
        if not isinstance(self.inference, str) or self.inference not in METHODS:
            raise InputError(
                f"[model] inference must be one of {', '.join(map(repr, METHODS))}; "
                f"got {self.inference!r}"
            )
        if self.inference == "kenward-roger" and not self.reml:
            raise InputError(
                "[model] inference = 'kenward-roger' needs reml = true (pbkrtest's method is "
                "defined for REML fits); use 'satterthwaite' with ML"
            )
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
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, RecursionError, tomllib.TOMLDecodeError) as err:
            raise InputError(f"{path}: cannot read the stats configuration: {err}") from None
    extra = set(raw) - {"model", "moderators", "custom"}
    if extra:
        raise InputError(f"{path}: unknown section(s) {sorted(extra)}")
    try:
        model = ModelSettings(**_model_args(raw.get("model", {})))
        custom = {
            name: Moderator(name=name, **_typed(spec, CUSTOM_TYPES, f"[custom.{name}]"))
            for name, spec in _typed_table(raw.get("custom", {}), "[custom]").items()
        }
    except (TypeError, InputError) as err:
        raise InputError(f"{path}: {err}") from None
    names = moderators if moderators is not None else raw.get("moderators", ASTEROID_MODERATORS)
    if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
        raise InputError(f"{path}: moderators must be a list of names, got {names!r}")
    if list(names) == ["none"]:
        names = []
    try:
        chosen = _moderators(list(names), custom)
    except InputError as err:
        source = "--moderators" if moderators is not None else (path or "the defaults")
        raise InputError(f"{source}: {err}") from None
    return StatsConfig(model=model, moderators=chosen)


#: The TOML type every setting must have: never coerced (``reml = "false"`` is an error).
MODEL_TYPES = {
    "outcome": str, "reml": bool, "formulation": str, "inference": str,
    "baseline_adjustment": bool, "covariates": list, "fdr": bool,
    "min_participants_per_arm": int, "exclude_failed": bool,
}  # fmt: skip
CHOICES = {"inference": METHODS, "formulation": ("crossed", "level_fixed"), "scale": SCALES,
           "kind": KINDS}  # fmt: skip
CUSTOM_TYPES = {"column": str, "scale": str, "kind": str, "per_disc": bool, "label": str}
TOML_NAMES = {str: "a string", bool: "true or false", int: "a whole number", list: "a list"}


def _typed(section: dict, types: dict, where: str) -> dict:
    """``section`` with every value of the TOML type ``types`` names; anything else raises
    ``TypeError`` naming ``where`` and the key."""
    if not isinstance(section, dict):
        raise TypeError(f"{where} must be a table of settings, got {section!r}")
    unknown = sorted(set(section) - set(types))
    if unknown:
        raise TypeError(f"unknown {where} setting(s) {unknown}")
    for key, value in section.items():
        kind = types[key]
        wrong = not isinstance(value, kind) or (kind is int and isinstance(value, bool))
        if wrong and key in CHOICES:
            allowed = ", ".join(map(repr, CHOICES[key]))
            raise TypeError(f"{where} {key} must be one of {allowed}; got {value!r}")
        if wrong:
            raise TypeError(
                f"{where} {key} must be {TOML_NAMES[kind]}, got {value!r} "
                f"({type(value).__name__}); write it without quotes if it is a value"
            )
    return dict(section)


def _typed_table(value, where: str) -> dict:
    if not isinstance(value, dict):
        raise TypeError(f"{where} must be a table, got {value!r}")
    return value


def _model_args(section: dict) -> dict:
    args = _typed(section, MODEL_TYPES, "[model]")
    if "covariates" in args:
        if not all(isinstance(c, str) for c in args["covariates"]):
            raise TypeError(f"[model] covariates must be a list of column names, got "
                            f"{args['covariates']!r}")  # fmt: skip
        args["covariates"] = tuple(args["covariates"])
    return args
