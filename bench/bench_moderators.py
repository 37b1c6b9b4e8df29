"""Moderator stage: recovery of the true effects over many simulated trials, and its speed.

Each seed draws a 40-participant trial from the generative model (the disc table straight
from :func:`t2quant.synth.table.simulate_disc_table`, no images), runs the full ASTEROID
moderator set (``pipelines/asteroid.toml``), and compares every estimate with the true net
difference of the same rows (the disc-weighted mean true effect of the subgroup's runners).
Prints the 95% CI coverage and the bias per moderator, and the time of the full set.

    .venv/bin/python bench/bench_moderators.py [--seeds N] [--jobs J]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from t2quant.group.stats import load_config, run_moderators
from t2quant.synth.table import simulate_disc_table
from t2quant.validation.groundtruth import true_moderator_effects

CONFIG = Path(__file__).resolve().parents[1] / "pipelines" / "asteroid.toml"


def trial(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    table, truth = simulate_disc_table(40, seed)
    table = table.rename(columns={"pfirrmann": "pfirrmann_baseline"})
    table["aggregated_pfirrmann_baseline"] = table.groupby(["participant_id", "session"])[
        "pfirrmann_baseline"
    ].transform("sum")
    return table, truth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    config = load_config(CONFIG)
    rows, seconds = [], []
    for seed in range(args.seeds):
        table, truth = trial(seed)
        start = time.perf_counter()
        result = run_moderators(table, config, jobs=args.jobs).moderators
        seconds.append(time.perf_counter() - start)
        true = true_moderator_effects(table, truth, config)
        keys = zip(result.moderator, result.subgroup, result.timepoint_weeks, strict=True)
        result["true_ms"] = [true.get(k, np.nan) for k in keys]
        result["seed"] = seed
        rows.append(result)
    res = pd.concat(rows, ignore_index=True)
    res = res[res["estimate_ms"].notna() & res["true_ms"].notna()]
    res["covered"] = (res["ci_low_ms"] <= res["true_ms"]) & (res["true_ms"] <= res["ci_high_ms"])
    res["error"] = res["estimate_ms"] - res["true_ms"]
    print(
        f"{args.seeds} simulated trials (40 participants x 3 sessions x 7 levels), full "
        f"ASTEROID moderator set, crossed random effects, {args.jobs} processes: "
        f"median {np.median(seconds):.1f} s, max {np.max(seconds):.1f} s per trial"
    )
    summary = res.groupby(["moderator", "timepoint_weeks"], sort=False).agg(
        estimates=("covered", "size"),
        coverage=("covered", "mean"),
        bias_ms=("error", "mean"),
        rmse_ms=("error", lambda e: float(np.sqrt(np.mean(e**2)))),
        mean_se_ms=("se_ms", "mean"),
    )
    print(summary.round(3).to_string())
    all_rows = res.groupby("timepoint_weeks")["covered"].agg(["size", "mean"])
    for week, r in all_rows.iterrows():
        print(f"week {week}: {int(r['size'])} estimates, 95% CI coverage {r['mean']:.3f}")
    warned = rows and pd.concat(rows)["warning"].fillna("").ne("").mean()
    print(f"rows with a warning (singular, too small, Hessian): {warned:.3f}")


if __name__ == "__main__":
    main()
