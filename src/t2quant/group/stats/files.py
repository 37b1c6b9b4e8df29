"""``t2quant stats``: read a disc table, run the moderator stage, write its outputs.

OUTDIR/moderators.tsv, interactions.tsv, stats.json (settings, cut points, variance
components, software), forest_week<w>.png/.svg, summary.md
"""

from __future__ import annotations

import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd

from t2quant import __version__
from t2quant.errors import InputError
from t2quant.group.stats.config import StatsConfig, load_config
from t2quant.group.stats.inference import LABELS
from t2quant.group.stats.moderators import ModeratorResults, run_moderators
from t2quant.group.stats.plots import forest_plot
from t2quant.io import atomic_path, read_tsv, write_json, write_tsv

__all__ = ["multiplicity_note", "read_table", "stats_to_files", "summary_markdown"]


def read_table(path: Path) -> pd.DataFrame:
    """A disc table from TSV, CSV or Parquet."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such disc table")
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        if path.suffix == ".csv":
            return pd.read_csv(path)
        return read_tsv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, OSError, ValueError) as exc:
        raise InputError(
            f"{path}: cannot read the disc table ({type(exc).__name__}: {exc}); give the "
            "discs.tsv (or .parquet) the group level wrote"
        ) from None


def stats_to_files(
    table: Path | pd.DataFrame,
    outdir: Path,
    *,
    config: StatsConfig | Path | None = None,
    moderators: list[str] | None = None,
    outcome: str | None = None,
    inference: str | None = None,
) -> tuple[ModeratorResults, dict[str, Path]]:
    """Run the moderator stage on ``table`` and write every output into ``outdir``
    (``outcome`` and ``inference`` override the configuration's)."""
    name = str(table) if not isinstance(table, pd.DataFrame) else "the disc table"
    data = table if isinstance(table, pd.DataFrame) else read_table(Path(table))
    if not isinstance(config, StatsConfig):
        config = load_config(config, moderators=moderators)
    overrides = {k: v for k, v in (("outcome", outcome), ("inference", inference)) if v}
    if overrides:
        config = replace(config, model=replace(config.model, **overrides))
    start = time.perf_counter()
    results = run_moderators(data, config, name=name)
    seconds = time.perf_counter() - start
    out = Path(outdir)
    paths = {
        "moderators": write_tsv(results.moderators, out / "moderators.tsv"),
        "interactions": write_tsv(results.interactions, out / "interactions.tsv"),
        "stats": write_json(_record(results, config, name, seconds), out / "stats.json"),
    }
    labels = {m.name: m.label or m.name for m in config.moderators}
    footnote = (
        f"Subgroup analyses are exploratory. {LABELS[config.model.inference]}; unadjusted 95% "
        f"CIs. {multiplicity_note(config, short=True)}"
    )
    for week in results.weeks:
        stem = out / f"forest_week{week:02d}"
        forest_plot(results.moderators, week, [stem.with_suffix(".png"), stem.with_suffix(".svg")],
                    labels=labels, interactions=results.interactions,
                    footnote=footnote)  # fmt: skip
        paths[f"forest_week{week:02d}"] = stem.with_suffix(".png")
    with atomic_path(out / "summary.md") as tmp:
        tmp.write_text(summary_markdown(results, config))
    paths["summary"] = out / "summary.md"
    return results, paths


def _record(results: ModeratorResults, config: StatsConfig, name: str, seconds: float) -> dict:
    import scipy
    import statsmodels

    overall = results.overall
    return {
        "GeneratedBy": {"Name": "t2quant", "Version": __version__},
        "Software": {
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "pandas": pd.__version__,
            "statsmodels (Benjamini-Hochberg)": statsmodels.__version__,
        },
        "Fit": "t2quant.group.stats.lmm: lme4's profiled REML/ML criterion, minimised over "
        "the relative random-effect SDs (Bates et al. 2015)",
        "Inference": LABELS[config.model.inference],
        "Table": name,
        "Model": asdict(config.model),
        "Moderators": [asdict(m) for m in config.moderators],
        "QuartileCutPoints": results.cut_points,
        "OverallVarianceComponents_ms2": overall.variances if overall else {},
        "RowsLeftOut": results.n_rows_left_out,
        "FollowUpWeeks": results.weeks,
        "Seconds": round(seconds, 2),
    }


def multiplicity_note(config: StatsConfig, *, short: bool = False) -> str:
    """How the stage handles multiplicity (the forest plots' footnote with ``short``)."""
    if not config.model.fdr:
        return "No multiplicity adjustment (fdr = false): p-values and CIs are unadjusted."
    if short:
        return (
            "FDR p: Benjamini-Hochberg across all subgroup tests, and separately across all "
            "interaction tests."
        )
    return (
        "`p_fdr` in `moderators.tsv` is Benjamini-Hochberg across every subgroup test (all "
        "moderators, subgroups and weeks; the overall rows are not in the family); `p_fdr` in "
        "`interactions.tsv` is Benjamini-Hochberg across every interaction test (per week and "
        "joint, all moderators), a separate family. Confidence intervals are unadjusted 95% "
        "intervals."
    )


def _ci(row) -> str:
    if not np.isfinite(row.estimate_ms):
        return f"not estimated ({row.warning})"
    return (
        f"{row.estimate_ms:.2f} ms [{row.ci_low_ms:.2f}, {row.ci_high_ms:.2f}], "
        f"df = {row.df:.1f}, p = {row.p_value:.3g}"
        + (f", FDR p = {row.p_fdr:.3g}" if np.isfinite(row.p_fdr) else "")
    )


def _f_text(row) -> str:
    if not np.isfinite(row.p_value):
        return "not tested"
    den = "inf" if np.isinf(row.den_df) else f"{row.den_df:.1f}"
    return f"F({row.num_df}, {den}) = {row.F:.2f}, p = {row.p_value:.3g}"


TESTS = {
    "satterthwaite": "t tests, t-based 95% CIs and F tests with Satterthwaite degrees of "
    "freedom (lmerTest)",
    "kenward-roger": "t tests, t-based 95% CIs and F tests with Kenward-Roger's adjusted "
    "covariance and degrees of freedom (pbkrtest)",
    "wald": "Wald z tests, z-based 95% CIs and chi-square tests (reported as F = chi2 / "
    "num_df with den_df = inf)",
}
"""How summary.md states each ``inference``."""


def _interaction_section(inter: pd.DataFrame) -> list[str]:
    weeks = _labels(inter)
    header = " | ".join("joint" if w == "all" else f"week {w}" for w in weeks)
    lines = [
        "",
        "## Interaction tests (run x week x moderator)",
        "",
        "Does the net difference differ between a moderator's subgroups? One model on all rows "
        "per moderator; an F test per week and one joint over the weeks.",
        "",
        f"| moderator | {header} | FDR p (joint) |",
        "|---" * (len(weeks) + 2) + "|",
    ]
    for moderator, block in inter.groupby("moderator", sort=False):
        by = {str(r.timepoint_weeks): r for r in block.itertuples()}
        joint = by.get("all")
        fdr = f"{joint.p_fdr:.3g}" if joint is not None and np.isfinite(joint.p_fdr) else ""
        cells = [_f_text(by[w]) if w in by else "" for w in weeks]
        lines.append(f"| {moderator} | " + " | ".join(cells) + f" | {fdr} |")
    return lines


def _labels(inter: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(str(w) for w in inter["timepoint_weeks"]))


def _interaction_p(inter: pd.DataFrame, moderator: str) -> str:
    rows = inter[inter["moderator"] == moderator]
    if rows.empty:
        return "interaction not tested"
    parts = []
    for r in rows.itertuples():
        when = "joint" if str(r.timepoint_weeks) == "all" else f"week {r.timepoint_weeks}"
        parts.append(f"{when} p = {r.p_value:.3g}")
    return "interaction " + ", ".join(parts)


def _subgroup_section(table: pd.DataFrame, inter: pd.DataFrame, config: StatsConfig) -> list[str]:
    lines = [
        "",
        "## Subgroup estimates (exploratory)",
        "",
        "Subgroup estimates are exploratory: read each beside its moderator's interaction test; "
        "a subgroup whose CI excludes 0 is not evidence that the effect differs between "
        "subgroups. Listed: subgroups whose 95% CI excludes 0.",
    ]
    labels = {m.name: m.label or m.name for m in config.moderators}
    subgroups = table[table["moderator"] != "overall"]
    for moderator, block in subgroups.groupby("moderator", sort=False):
        name = labels.get(moderator, moderator)
        lines += ["", f"- **{name}** ({_interaction_p(inter, moderator)})"]
        hits = block[(block["ci_low_ms"] > 0) | (block["ci_high_ms"] < 0)]
        lines += [
            f"  - {r.subgroup}, week {r.timepoint_weeks}: {_ci(r)}" for r in hits.itertuples()
        ]
        if hits.empty:
            lines.append("  - none")
    return lines


def summary_markdown(results: ModeratorResults, config: StatsConfig) -> str:
    """A short plain-language summary of the moderator tables: the overall effect, the
    interaction tests first, the subgroups (exploratory) and the multiplicity handling."""
    m = config.model
    lines = [
        "# Moderators of the between-group change in disc T2",
        "",
        f"Outcome `{m.outcome}`; {'REML' if m.reml else 'ML'}; formulation `{m.formulation}`"
        + ("; change from baseline adjusted for baseline" if m.baseline_adjustment else "")
        + (f"; covariates {list(m.covariates)}" if m.covariates else "")
        + f"; {TESTS[m.inference]}. {results.n_rows_left_out} disc rows left out "
        "(failed QC or no outcome).",
        "",
        "## Overall net difference (run minus control)",
        "",
    ]
    table, inter = results.moderators, results.interactions
    for row in table[table["moderator"] == "overall"].itertuples():
        lines.append(f"- week {row.timepoint_weeks}: {_ci(row)}")
    if len(inter):
        lines += _interaction_section(inter)
    if (table["moderator"] != "overall").any():
        lines += _subgroup_section(table, inter, config)
        lines += ["", "## Multiplicity", "", multiplicity_note(config)]
    problems = table[table["warning"].fillna("") != ""]
    if len(problems):
        lines += ["", "## Warnings", ""]
        for row in problems.drop_duplicates(["moderator", "subgroup"]).itertuples():
            lines.append(f"- {row.moderator} {row.subgroup}: {row.warning}")
    lines += ["", "See `moderators.tsv` and `interactions.tsv`.", ""]
    return "\n".join(lines)
