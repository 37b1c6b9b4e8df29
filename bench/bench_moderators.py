"""Moderator stage: recovery of the true effects over many simulated trials, and its speed.

Each seed draws a 40-participant trial from the generative model (the disc table straight
from :func:`t2quant.synth.table.simulate_disc_table`, no images), runs the full ASTEROID
moderator set (``pipelines/asteroid.toml``) once with Satterthwaite and once with
Kenward-Roger inference, and compares every estimate with the true net difference of the
same rows (the disc-weighted mean true effect of the subgroup's runners).

Prints, per moderator and week, the 95% CI coverage of the true effects by the z interval
(estimate +- 1.96 SE: what ``inference = "wald"`` reports, and what the stage reported
before issue 20), by the Satterthwaite t interval and by the Kenward-Roger interval, beside
the bias, RMSE, mean SE and mean df; then the coverage over all estimates of each week, and
the time of the full set.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_moderators.py [--seeds N]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from t2quant.group.stats import load_config, run_moderators
from t2quant.synth.table import simulate_disc_table
from t2quant.validation.groundtruth import true_moderator_effects

CONFIG = Path(__file__).resolve().parents[1] / "pipelines" / "asteroid.toml"
METHODS = {"satterthwaite": "t_satt", "kenward-roger": "t_kr"}
Z95 = float(stats.norm.ppf(0.975))


def trial(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    table, truth = simulate_disc_table(40, seed)
    table = table.rename(columns={"pfirrmann": "pfirrmann_baseline"})
    table["aggregated_pfirrmann_baseline"] = table.groupby(["participant_id", "session"])[
        "pfirrmann_baseline"
    ].transform("sum")
    return table, truth


def _covered(low: pd.Series, high: pd.Series, true: pd.Series) -> pd.Series:
    return (low <= true) & (true <= high)


def one_trial(seed: int, config) -> tuple[pd.DataFrame, dict[str, float]]:
    """Every estimate of one trial with the truth and its coverage by each interval, and the
    time of the full set per method (s)."""
    table, truth = trial(seed)
    true = true_moderator_effects(table, truth, config)
    out, seconds = None, {}
    for method, key in METHODS.items():
        start = time.perf_counter()
        res = run_moderators(table, replace(config, model=replace(config.model, inference=method)))
        seconds[method] = time.perf_counter() - start
        rows = res.moderators
        if out is None:
            keys = zip(rows.moderator, rows.subgroup, rows.timepoint_weeks, strict=True)
            out = rows.assign(true_ms=[true.get(k, np.nan) for k in keys], seed=seed)
            est, half = out["estimate_ms"], Z95 * out["se_ms"]
            out["z"] = _covered(est - half, est + half, out["true_ms"])
        out[key] = _covered(rows["ci_low_ms"], rows["ci_high_ms"], out["true_ms"])
        out[f"df_{key}"] = rows["df"]
    return out, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    args = parser.parse_args()
    config = load_config(CONFIG)
    rows, seconds = [], []
    for seed in range(args.seeds):
        result, took = one_trial(seed, config)
        rows.append(result)
        seconds.append(took)
    res = pd.concat(rows, ignore_index=True)
    warned = res["warning"].fillna("").ne("").mean()
    res = res[res["estimate_ms"].notna() & res["true_ms"].notna()].copy()
    res["error"] = res["estimate_ms"] - res["true_ms"]
    times = pd.DataFrame(seconds)
    print(f"{args.seeds} simulated trials (40 participants x 3 sessions x 7 levels), full "
          "ASTEROID moderator set, crossed random effects, one process: median "
          + ", ".join(f"{m} {times[m].median():.2f} s (max {times[m].max():.2f} s)"
                      for m in METHODS) + " per trial")  # fmt: skip
    summary = res.groupby(["moderator", "timepoint_weeks"], sort=False).agg(
        estimates=("z", "size"),
        cover_z=("z", "mean"),
        cover_t_satt=("t_satt", "mean"),
        cover_t_kr=("t_kr", "mean"),
        bias_ms=("error", "mean"),
        rmse_ms=("error", lambda e: float(np.sqrt(np.mean(e**2)))),
        mean_se_ms=("se_ms", "mean"),
        mean_df_satt=("df_t_satt", "mean"),
        mean_df_kr=("df_t_kr", "mean"),
    )
    print(summary.round(3).to_string())
    for week, r in res.groupby("timepoint_weeks"):
        print(f"week {week}: {len(r)} estimates, 95% CI coverage: z {r['z'].mean():.3f}, "
              f"Satterthwaite t {r['t_satt'].mean():.3f}, "
              f"Kenward-Roger t {r['t_kr'].mean():.3f}")  # fmt: skip
    print(f"rows with a warning (singular fit, too small, failed): {warned:.3f}")


if __name__ == "__main__":
    main()
