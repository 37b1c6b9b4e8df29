"""``t2quant stats``: read a disc table, run the moderator stage, write its outputs.

OUTDIR/moderators.tsv, interactions.tsv, stats.json (settings, cut points, variance
components, counts), forest_week<w>.png/.svg, summary.md
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
from t2quant.group.stats.moderators import ModeratorResults, run_moderators
from t2quant.group.stats.plots import forest_plot
from t2quant.io import atomic_path, read_tsv, write_json, write_tsv

__all__ = ["read_table", "stats_to_files", "summary_markdown"]


def read_table(path: Path) -> pd.DataFrame:
    """A disc table from TSV, CSV or Parquet."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such disc table")
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        return pd.read_csv(path)
    return read_tsv(path)


def stats_to_files(
    table: Path | pd.DataFrame,
    outdir: Path,
    *,
    config: StatsConfig | Path | None = None,
    moderators: list[str] | None = None,
    jobs: int = 1,
    outcome: str | None = None,
) -> tuple[ModeratorResults, dict[str, Path]]:
    """Run the moderator stage on ``table`` and write every output into ``outdir``."""
    name = str(table) if not isinstance(table, pd.DataFrame) else "the disc table"
    data = table if isinstance(table, pd.DataFrame) else read_table(Path(table))
    if not isinstance(config, StatsConfig):
        config = load_config(config, moderators=moderators)
    if outcome:
        config = replace(config, model=replace(config.model, outcome=outcome))
    start = time.perf_counter()
    results = run_moderators(data, config, jobs=jobs, name=name)
    seconds = time.perf_counter() - start
    out = Path(outdir)
    paths = {
        "moderators": write_tsv(results.moderators, out / "moderators.tsv"),
        "interactions": write_tsv(results.interactions, out / "interactions.tsv"),
        "stats": write_json(_record(results, config, name, seconds), out / "stats.json"),
    }
    labels = {m.name: m.label or m.name for m in config.moderators}
    for week in results.weeks:
        stem = out / f"forest_week{week:02d}"
        forest_plot(results.moderators, week, [stem.with_suffix(".png"), stem.with_suffix(".svg")],
                    labels=labels)  # fmt: skip
        paths[f"forest_week{week:02d}"] = stem.with_suffix(".png")
    with atomic_path(out / "summary.md") as tmp:
        tmp.write_text(summary_markdown(results, config))
    paths["summary"] = out / "summary.md"
    return results, paths


def _record(results: ModeratorResults, config: StatsConfig, name: str, seconds: float) -> dict:
    import statsmodels

    overall = results.overall
    return {
        "GeneratedBy": {"Name": "t2quant", "Version": __version__},
        "Software": {"statsmodels": statsmodels.__version__, "pandas": pd.__version__},
        "Table": name,
        "Model": asdict(config.model),
        "Moderators": [asdict(m) for m in config.moderators],
        "QuartileCutPoints": results.cut_points,
        "OverallVarianceComponents_ms2": overall.variance if overall else {},
        "RowsLeftOut": results.n_rows_left_out,
        "FollowUpWeeks": results.weeks,
        "Seconds": round(seconds, 2),
    }


def _ci(row) -> str:
    if not np.isfinite(row.estimate_ms):
        return f"not estimated ({row.warning})"
    return (
        f"{row.estimate_ms:.2f} ms [{row.ci_low_ms:.2f}, {row.ci_high_ms:.2f}], "
        f"p = {row.p_value:.3g}" + (f", FDR p = {row.p_fdr:.3g}" if np.isfinite(row.p_fdr) else "")
    )


def summary_markdown(results: ModeratorResults, config: StatsConfig) -> str:
    """A short plain-language summary of the moderator tables."""
    m = config.model
    lines = [
        "# Moderators of the between-group change in disc T2",
        "",
        f"Outcome `{m.outcome}`; {'REML' if m.reml else 'ML'}; formulation `{m.formulation}`"
        + ("; change from baseline adjusted for baseline" if m.baseline_adjustment else "")
        + (f"; covariates {list(m.covariates)}" if m.covariates else "")
        + f". {results.n_rows_left_out} disc rows left out (failed QC or no outcome).",
        "",
        "## Overall net difference (run minus control)",
        "",
    ]
    table = results.moderators
    for row in table[table["moderator"] == "overall"].itertuples():
        lines.append(f"- week {row.timepoint_weeks}: {_ci(row)}")
    subgroups = table[table["moderator"] != "overall"]
    if len(subgroups):
        lines += ["", "## Subgroups whose 95% CI excludes 0", ""]
        hits = subgroups[(subgroups["ci_low_ms"] > 0) | (subgroups["ci_high_ms"] < 0)]
        for row in hits.itertuples():
            lines.append(
                f"- {row.moderator} {row.subgroup}, week {row.timepoint_weeks}: {_ci(row)}"
            )
        if hits.empty:
            lines.append("- none")
    inter = results.interactions
    if len(inter):
        lines += ["", "## Interaction tests (joint over weeks)", ""]
        for row in inter[inter["timepoint_weeks"].astype(str) == "all"].itertuples():
            lines.append(f"- {row.moderator}: chi2 = {row.chi2:.2f}, df = {row.df}, "
                         f"p = {row.p_value:.3g}")  # fmt: skip
    problems = table[table["warning"].fillna("") != ""]
    if len(problems):
        lines += ["", "## Warnings", ""]
        for row in problems.drop_duplicates(["moderator", "subgroup"]).itertuples():
            lines.append(f"- {row.moderator} {row.subgroup}: {row.warning}")
    lines += ["", "Estimates are Wald z; see `moderators.tsv` and `interactions.tsv`.", ""]
    return "\n".join(lines)
