"""Largest relative differences between t2quant's mixed model and R, case by case.

The cases are the tests' (``tests/lmm_cases.py``: balanced and with missing discs, REML and
ML, unbalanced arms, a singular fit, the level-fixed formulation), each fitted in R twice:
lme4 run to ``ftol_abs = 1e-14`` (``tight``) and with ``lmerControl()`` (``default``).
Per case and control, the largest relative difference over

- ``fit``: fixed effects, vcov entries (relative to the largest), variance components,
  logLik, REML criterion;
- ``sat t`` / ``kr t``: every coefficient's and 1-row contrast's estimate, SE, df, t, CI
  bounds and p (lmerTest ``contest1D``; Kenward-Roger as pbkrtest, REML only);
- ``sat F`` / ``kr F``: the F tests' F, denominator df and p (``contestMD``).

p-values below 1e-6 are compared on the log scale (see ``tests/rcompare.py``). One Rscript
for everything.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_stats_accuracy.py
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tests' cases

import numpy as np  # noqa: E402

from lmm_cases import CASES, CONTRASTS, build_case, contrast_matrix  # noqa: E402
from rcompare import F_COLUMNS, METHODS, T_COLUMNS  # noqa: E402
from t2quant.group.stats import inference as inf  # noqa: E402
from t2quant.group.stats.lmm import LmmFit, fit_lmm  # noqa: E402
from t2quant.validation.rcheck import R_GROUPS, RModel, r_available, run_r  # noqa: E402


def _rel(ours: float, theirs: float, p_value: bool = False) -> float:
    if p_value and theirs <= 1e-6:
        ours, theirs = math.log(ours), math.log(theirs)
    return abs(ours - theirs) / max(abs(theirs), 1e-300)


def fit_difference(fit: LmmFit, r: dict[str, float]) -> float:
    p = len(fit.names)
    vcov = np.array([[r[f"vcov:{i}:{j}"] for j in range(p)] for i in range(p)])
    diffs = [_rel(fit.beta[i], r[f"beta:x{i}"]) for i in range(p)]
    diffs.append(float(np.max(np.abs(fit.vcov - vcov)) / np.max(np.abs(vcov))))
    scale = fit.variances["residual"]
    for term, v in fit.variances.items():
        theirs = r[f"var:{R_GROUPS[term]}"]
        diffs.append(abs(v - theirs) / max(abs(theirs), 1e-8 * scale))
    return max([*diffs, _rel(fit.loglik, r["loglik"]), _rel(fit.deviance, r["deviance"])])


def t_difference(fit: LmmFit, r: dict[str, float], method: str, contrasts) -> float:
    key = METHODS[method]
    tests = [(inf.t_test(fit, np.eye(len(fit.names))[i], method), f"{key}:x{i}:")
             for i in range(len(fit.names))]  # fmt: skip
    tests += [(inf.t_test(fit, mat[0], method), f"{key}:c1:{cid}:")
              for cid, mat in contrasts.items() if mat.shape[0] == 1]  # fmt: skip
    return max(_rel(getattr(res, attr), r[prefix + col], attr == "p_value")
               for res, prefix in tests for attr, col in T_COLUMNS.items())  # fmt: skip


def f_difference(fit: LmmFit, r: dict[str, float], method: str, contrasts) -> float:
    key = METHODS[method]
    diffs = []
    for cid, mat in contrasts.items():
        res = inf.f_test(fit, mat, method)
        for attr, col in F_COLUMNS.items():
            diffs.append(_rel(getattr(res, attr), r[f"{key}:cF:{cid}:{col}"], attr == "p_value"))
    return max(diffs)


def main() -> None:
    reason = r_available()
    if reason:  # reported, not a failure: `make bench` goes on to the next script
        print(f"bench_stats_accuracy skipped, it needs R: {reason}")
        return
    cases = {name: build_case(name) for name in CASES}
    contrasts = {n: {k: contrast_matrix(rows, c.names) for k, rows in CONTRASTS.items()}
                 for n, c in cases.items()}  # fmt: skip
    models = [RModel(c.y, c.x, c.participant, c.level, reml=c.reml, terms=c.terms,
                     contrasts=contrasts[n], tight=tight)
              for n, c in cases.items() for tight in (True, False)]  # fmt: skip
    results = iter(run_r(models))
    print(f"{'case':<26} {'lme4':<8} {'fit':>8} {'sat t':>8} {'sat F':>8} {'kr t':>8} {'kr F':>8}")
    for name, c in cases.items():
        fit = fit_lmm(c.y, c.x, c.participant, c.level, names=c.names, reml=c.reml,
                      terms=c.terms)  # fmt: skip
        for label in ("tight", "default"):
            r = next(results)
            cols = [fit_difference(fit, r)]
            for method in ("satterthwaite", "kenward-roger") if c.reml else ("satterthwaite",):
                cols += [t_difference(fit, r, method, contrasts[name]),
                         f_difference(fit, r, method, contrasts[name])]  # fmt: skip
            print(f"{name:<26} {label:<8} " + " ".join(f"{v:>8.1e}" for v in cols), flush=True)


if __name__ == "__main__":
    main()
