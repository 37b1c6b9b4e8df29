"""Fit times of the crossed mixed model, t2quant against lme4, side by side in one run.

For each size, one synthetic trial (:func:`t2quant.synth.table.simulate_disc_table`:
participants x 3 sessions x 7 levels, 5% of the discs missing at every session) goes
through the moderator stage's overall model (``crossed``, REML) in both:

- ``t2quant fit``: :func:`t2quant.group.stats.mixed.fit_mixed` on the overall design;
  ``overall``: ``run_moderators`` with no moderator (table checks, design, fit and the
  Satterthwaite t tests of both weeks), the stage's end-to-end time for the overall model;
- ``lme4``: ``lmer()`` with default control in an ``Rscript`` on the same design matrix,
  timed inside R around ``lmer()`` alone (no start-up, no CSV reading);
- ``ratio``: t2quant fit / lme4 fit;
- ``diff``: the largest relative difference over the fixed effects, their SEs, the variance
  components and the REML criterion, against lme4 with default control and against lme4
  with BOBYQA run to ``ftol_abs = 1e-14`` (``tight``); ``beta, SE``: over the fixed effects
  and SEs alone (against tight). Where ``diff`` is larger it is the level variance (7
  levels), along which the REML criterion is flat to its last digits (see README);
- ``lme4 devfun``: lme4's own deviance function at t2quant's theta minus at its tight
  theta (<= 0: lme4 scores t2quant's optimum at least as low as its own);
- ``peak MB``, ``B/row``: Python's peak allocation (tracemalloc, in a second, untimed pass)
  during the overall model's run_moderators.

Each timing is of one call after a warm-up fit (imports and first-call costs excluded).

Then the full ASTEROID moderator set (``pipelines/asteroid.toml``) on a 40-participant trial.
Everything runs single-threaded (``OMP_NUM_THREADS=1`` etc., also in R).

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_stats_scale.py [40 200 1000 5000]
"""

from __future__ import annotations

import os
import sys
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from t2quant.group.stats import load_config, run_moderators  # noqa: E402
from t2quant.group.stats.lmm import LmmFit  # noqa: E402
from t2quant.group.stats.mixed import add_design, design_matrix, fit_mixed  # noqa: E402
from t2quant.group.stats.prepare import analysis_rows  # noqa: E402
from t2quant.synth.table import simulate_disc_table  # noqa: E402
from t2quant.validation.rcheck import R_GROUPS, RModel, r_available, run_r  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / "pipelines" / "asteroid.toml"
MISSING_DISCS = 0.05


def trial(n_participants: int, seed: int = 11) -> pd.DataFrame:
    """The synthetic trial with ``MISSING_DISCS`` of its discs missing (T2 NaN)."""
    table, _ = simulate_disc_table(n_participants, seed)
    table = table.rename(columns={"pfirrmann": "pfirrmann_baseline"})
    table["aggregated_pfirrmann_baseline"] = table.groupby(["participant_id", "session"])[
        "pfirrmann_baseline"
    ].transform("sum")
    discs = table["participant_id"] + ":" + table["level"]
    unique = discs.unique()
    gone = np.random.default_rng(seed).random(unique.size) < MISSING_DISCS
    table.loc[discs.isin(unique[gone]), "t2_mean_ms"] = np.nan
    return table


def largest_difference(fit: LmmFit, r: dict[str, float], variances: bool = True) -> float:
    """Largest relative difference over beta, SEs and (``variances``) the variance
    components and the deviance."""
    p = len(fit.names)
    ours = [*fit.beta, *fit.se]
    theirs = [*(r[f"beta:x{i}"] for i in range(p)), *(r[f"se:x{i}"] for i in range(p))]
    if variances:
        ours += [*fit.variances.values(), fit.deviance]
        theirs += [*(r[f"var:{R_GROUPS[k]}"] for k in fit.variances), r["deviance"]]
    a, b = np.array(ours), np.array(theirs)
    return float(np.max(np.abs(a - b) / np.abs(b)))


def _peak_bytes(table: pd.DataFrame, config) -> int:
    tracemalloc.start()
    run_moderators(table, config)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def bench(n_participants: int) -> dict[str, float]:
    table = trial(n_participants)
    config = load_config(CONFIG, moderators=["none"])
    rows, _ = analysis_rows(table, config.model)
    design, terms = add_design(rows, config.model, [6, 12])
    fit_mixed(design.iloc[: 21 * 10], terms, config.model)  # warm-up
    start = time.perf_counter()
    fit = fit_mixed(design, terms, config.model)
    t_fit = time.perf_counter() - start
    start = time.perf_counter()
    run_moderators(table, config)
    t_overall = time.perf_counter() - start
    peak = _peak_bytes(table, config)
    x, _ = design_matrix(design, terms, config.model.formulation)
    y, pid, lev = (design[c].to_numpy() for c in ("t2_mean_ms", "participant_id", "level"))
    default, tight = run_r([RModel(y, x, pid, lev, mode="fit", tight=False),
                            RModel(y, x, pid, lev, mode="fit", theta=fit.theta)])  # fmt: skip
    return {"rows": len(design), "fit": t_fit, "overall": t_overall,
            "lme4": default["time_lme4"], "lme4_tight": tight["time_lme4"],
            "diff": largest_difference(fit, default), "diff_tight": largest_difference(fit, tight),
            "diff_beta": largest_difference(fit, tight, variances=False),
            "dev_gap": tight["devfun_our_theta"] - tight["devfun_lme4_theta"],
            "peak_mb": peak / 2**20, "converged": fit.converged}  # fmt: skip


def moderator_set_seconds(n_participants: int = 40) -> tuple[float, int, int]:
    """Time of the full ASTEROID moderator set; rows of moderators.tsv and interactions.tsv."""
    table, _ = simulate_disc_table(n_participants, 1)
    table = table.rename(columns={"pfirrmann": "pfirrmann_baseline"})
    table["aggregated_pfirrmann_baseline"] = table.groupby(["participant_id", "session"])[
        "pfirrmann_baseline"
    ].transform("sum")
    config = load_config(CONFIG)
    run_moderators(table, replace(config, moderators=()))  # warm-up: imports, caches
    start = time.perf_counter()
    result = run_moderators(table, config)
    return time.perf_counter() - start, len(result.moderators), len(result.interactions)


def main(sizes: list[int]) -> None:
    reason = r_available()
    if reason:  # reported, not a failure: `make bench` goes on to the next script
        print(f"bench_stats_scale skipped, it needs R: {reason}")
        return
    print(f"{'participants':>12} {'rows':>7} {'t2quant fit':>12} {'overall':>8} "
          f"{'lme4 fit':>9} {'ratio':>6} {'lme4 tight':>11} {'diff default':>13} "
          f"{'diff tight':>11} {'beta, SE':>9} {'lme4 devfun':>12} {'peak MB':>8} "
          f"{'B/row':>6}")  # fmt: skip
    for n in sizes:
        b = bench(n)
        print(f"{n:>12} {b['rows']:>7} {b['fit']:>11.3f}s {b['overall']:>7.3f}s "
              f"{b['lme4']:>8.3f}s {b['fit'] / b['lme4']:>6.2f} {b['lme4_tight']:>10.3f}s "
              f"{b['diff']:>13.1e} {b['diff_tight']:>11.1e} {b['diff_beta']:>9.1e} "
              f"{b['dev_gap']:>12.1e} "
              f"{b['peak_mb']:>8.1f} {b['peak_mb'] * 2**20 / b['rows']:>6.0f}"
              + ("" if b["converged"] else "  (t2quant: not converged)"), flush=True)  # fmt: skip
    seconds, n_rows, n_inter = moderator_set_seconds()
    print(f"full ASTEROID moderator set, 40 participants (Satterthwaite): {seconds:.2f} s "
          f"({n_rows} moderators.tsv rows, {n_inter} interaction tests, one process)")  # fmt: skip


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [40, 200, 1000, 5000])
