"""The moderator stage's mixed model run in R (lme4, lmerTest, pbkrtest) for cross-checks.

The tests (``tests/test_lme4.py``, ``tests/test_lmm_vs_r.py``) and
``bench/bench_stats_scale.py`` hand a design to R and compare. R runs as one ``Rscript``
subprocess per call, single-threaded, and fits every model of the call:

    lmer(y ~ 0 + x0 + ... + x<p-1> + (1|participant) + (1|level) + (1|participant:level))

on the exact design matrix given (or a subset of the random terms), and writes every number
back as ``key,value`` lines. Two optimiser settings: ``tight`` runs lme4's BOBYQA to
``ftol_abs = 1e-14`` (lme4's default ``1e-8`` stops short in the flat level-variance
direction, by up to ~1e-4 relative), ``default`` is ``lmerControl()``.

Kenward-Roger: pbkrtest's ``vcovAdj`` is computed once per model and used for every KR test
of that model, through the functions lmerTest itself calls (``Lb_ddf`` for 1-df tests, as
``contest1D(ddf = "Kenward-Roger")``; ``force_full_rank`` + ``.KR_adjust`` for F tests, as
``contestMD``/``KRmodcomp``). lmerTest recomputes ``vcovAdj`` for every contrast, which at
840 rows costs 3 s each.

Requires R with lme4, lmerTest and pbkrtest (Debian: ``r-base-core r-cran-lme4
r-cran-lmertest r-cran-pbkrtest``); :func:`r_available` says what is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["RModel", "r_available", "run_r", "run_r_anova"]

R_PACKAGES = ("lme4", "lmerTest", "pbkrtest")
R_GROUPS = {"disc": "participant:level", "participant": "participant", "level": "level",
            "residual": "Residual"}  # fmt: skip
"""t2quant's term names -> R's ``VarCorr`` group names."""

_R_COMMON = r"""
suppressMessages({library(lme4); library(lmerTest); library(pbkrtest)})
ctrl <- function(kind) if (kind == "tight") lmerControl(optCtrl = list(xtol_abs = 1e-12,
  ftol_abs = 1e-14, xtol_rel = 1e-12, ftol_rel = 1e-15, maxeval = 1e5)) else lmerControl()
keys <- character(0); vals <- numeric(0)
add <- function(k, v) { keys <<- c(keys, k); vals <<- c(vals, as.numeric(v)) }
flush <- function(path) {
  write.csv(data.frame(key = keys, value = vals), path, row.names = FALSE)
  keys <<- character(0); vals <<- numeric(0)
}
"""

_R_FIT = r"""
fit_numbers <- function(m, reml) {
  add("singular", isSingular(m)); add("loglik", logLik(m))
  add("deviance", if (reml) REMLcrit(m) else deviance(m)); add("sigma", sigma(m))
  th <- getME(m, "theta"); for (nm in names(th)) add(paste0("theta:", nm), th[[nm]])
  vc <- as.data.frame(VarCorr(m))
  for (i in seq_len(nrow(vc))) add(paste0("var:", vc$grp[i]), vc$vcov[i])
  for (nm in names(fixef(m))) add(paste0("beta:", nm), fixef(m)[[nm]])
  V <- as.matrix(vcov(m))
  for (i in seq_len(ncol(V))) add(paste0("se:", names(fixef(m))[i]), sqrt(V[i, i]))
  for (i in seq_len(ncol(V))) for (j in seq_len(ncol(V)))
    add(sprintf("vcov:%d:%d", i - 1, j - 1), V[i, j])
}
t_row <- function(prefix, est, se, df) {  # lmerTest's mk_ttable with confint = TRUE
  tt <- est / se; ci <- lmerTest:::waldCI(est, se, df)
  add(paste0(prefix, "Estimate"), est); add(paste0(prefix, "Std. Error"), se)
  add(paste0(prefix, "df"), df); add(paste0(prefix, "t value"), tt)
  add(paste0(prefix, "lower"), ci[1, "lower"]); add(paste0(prefix, "upper"), ci[1, "upper"])
  add(paste0(prefix, "Pr(>|t|)"), 2 * pt(abs(tt), df, lower.tail = FALSE))
}
kr_t <- function(m, Va, L, prefix)  # lmerTest's get_KR1D, vcovAdj given
  t_row(prefix, sum(L * fixef(m)), sqrt(drop(t(L) %*% as.matrix(Va) %*% L)),
        pbkrtest::Lb_ddf(L = L, V0 = vcov(m), Vadj = Va))
kr_f <- function(m, Va, L, prefix) {  # lmerTest's contestMD via KRmodcomp, vcovAdj given
  s <- pbkrtest:::.KR_adjust(Va, vcov(m), pbkrtest:::force_full_rank(L), fixef(m), 0)
  f <- s$FstatU * s$F.scaling
  add(paste0(prefix, "NumDF"), s$ndf); add(paste0(prefix, "DenDF"), s$ddf)
  add(paste0(prefix, "F value"), f)
  add(paste0(prefix, "Pr(>F)"), pf(f, s$ndf, s$ddf, lower.tail = FALSE))
}
sat_t <- function(m, L, prefix) {
  r <- contest1D(m, L, ddf = "Satterthwaite", confint = TRUE)
  t_row(prefix, r[["Estimate"]], r[["Std. Error"]], r[["df"]])
}
sat_f <- function(m, L, prefix) {
  r <- contestMD(m, L, ddf = "Satterthwaite")
  for (col in c("NumDF", "DenDF", "F value", "Pr(>F)")) add(paste0(prefix, col), r[[col]])
}
for (dir in readLines(commandArgs(trailingOnly = TRUE)[1])) {
  job <- read.csv(file.path(dir, "job.csv"))
  reml <- as.logical(job$reml)
  d <- read.csv(file.path(dir, "d.csv"))
  d$participant <- factor(d$participant); d$level <- factor(d$level)
  xcols <- grep("^x[0-9]+$", names(d), value = TRUE)
  re <- c(participant = "(1 | participant)", level = "(1 | level)",
          disc = "(1 | participant:level)")
  f <- as.formula(paste("y ~ 0 +", paste(xcols, collapse = " + "), "+",
                        paste(re[strsplit(job$terms, ",")[[1]]], collapse = " + ")))
  add("time_lme4", system.time(m <- lme4::lmer(f, data = d, REML = reml,
                                                control = ctrl(job$control)))[["elapsed"]])
  if (job$mode == "fit") {
    fit_numbers(m, reml)
    tfile <- file.path(dir, "t.csv")
    if (file.exists(tfile)) {  # lme4's own deviance function at lme4's and at our theta
      ours <- read.csv(tfile); th <- getME(m, "theta"); dfun <- update(m, devFunOnly = TRUE)
      add("devfun_lme4_theta", dfun(th))
      groups <- sub("\\.\\(Intercept\\)$", "", names(th))
      add("devfun_our_theta", dfun(ours$theta[match(groups, ours$group)]))
    }
    flush(file.path(dir, "o.csv")); next
  }
  m <- as_lmerModLmerTest(m)
  fit_numbers(m, reml)
  beta <- fixef(m); p <- length(beta); E <- diag(p)
  Va <- if (reml) pbkrtest::vcovAdj(m) else NULL
  for (i in seq_len(p)) {
    sat_t(m, E[i, ], paste0("sat:", names(beta)[i], ":"))
    if (reml) kr_t(m, Va, E[i, ], paste0("kr:", names(beta)[i], ":"))
  }
  cfile <- file.path(dir, "c.csv")
  if (file.exists(cfile)) {
    con <- read.csv(cfile)
    for (id in unique(con$id)) {
      L <- as.matrix(con[con$id == id, names(beta), drop = FALSE])
      if (nrow(L) == 1) sat_t(m, drop(L), paste0("sat:c1:", id, ":"))
      sat_f(m, L, paste0("sat:cF:", id, ":"))
      if (!reml) next
      if (nrow(L) == 1) kr_t(m, Va, drop(L), paste0("kr:c1:", id, ":"))
      kr_f(m, Va, L, paste0("kr:cF:", id, ":"))
    }
  }
  flush(file.path(dir, "o.csv"))
}
"""

_R_ANOVA = r"""
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1]); reml <- as.logical(args[3]); term <- "week:group:moderator"
d$participant <- factor(d$participant); d$level <- factor(d$level)
d$week <- factor(d$week); d$group <- relevel(factor(d$group), "control")
d$moderator <- factor(d$moderator)
m <- lmer(y ~ week * group * moderator + (1 | participant) + (1 | level) +
            (1 | participant:level), data = d, REML = reml, control = ctrl("tight"))
a <- anova(m, ddf = "Satterthwaite")
for (row in rownames(a)) for (col in c("NumDF", "DenDF", "F value", "Pr(>F)"))
  add(paste0("sat:", row, ":", col), a[row, col])
if (reml) {  # anova(ddf = "Kenward-Roger")'s row for the term: contestMD on its contrast
  r <- contestMD(m, lmerTest:::get_contrasts_type3(m)[[term]], ddf = "Kenward-Roger")
  for (col in c("NumDF", "DenDF", "F value", "Pr(>F)"))
    add(paste0("kr:", term, ":", col), r[[col]])
}
flush(args[2])
write.csv(getME(m, "X"), paste0(args[2], ".X.csv"), row.names = FALSE)
"""


@dataclass
class RModel:
    """One model for R: ``y`` (n,), ``x`` (n, p), the grouping codes (n,), REML or ML, the
    random ``terms`` (t2quant's names), contrasts by id (each (p,) or (q, p)), ``mode``
    (``"inference"``: lmerTest and pbkrtest; ``"fit"``: lme4 alone, timed), ``tight``
    optimiser control, and ``theta`` (t2quant's, by term) to evaluate lme4's deviance
    function at (``"fit"`` mode)."""

    y: np.ndarray
    x: np.ndarray
    participant: np.ndarray
    level: np.ndarray
    reml: bool = True
    terms: tuple[str, ...] = ("disc", "participant", "level")
    contrasts: dict[str, np.ndarray] = field(default_factory=dict)
    mode: str = "inference"
    tight: bool = True
    theta: dict[str, float] | None = None


def r_available() -> str | None:
    """``None`` when ``Rscript`` runs with lme4, lmerTest and pbkrtest; else the reason."""
    if shutil.which("Rscript") is None:
        return ("Rscript is not installed (apt-get install r-base-core r-cran-lme4 "
                "r-cran-lmertest r-cran-pbkrtest)")  # fmt: skip
    loads = "; ".join(f"library({p})" for p in R_PACKAGES)
    probe = subprocess.run(["Rscript", "-e", loads], capture_output=True, text=True, env=_env())
    if probe.returncode:
        return (f"R lacks one of {', '.join(R_PACKAGES)} (apt-get install r-cran-lme4 "
                "r-cran-lmertest r-cran-pbkrtest)")  # fmt: skip
    return None


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


def _rscript(script: str, args: list[str], folder: Path) -> None:
    path = folder / "script.R"
    path.write_text(_R_COMMON + script)
    proc = subprocess.run(["Rscript", str(path), *args], capture_output=True, text=True,
                          env=_env())  # fmt: skip
    if proc.returncode:
        raise RuntimeError(f"Rscript failed:\n{proc.stderr[-3000:]}")


def _read(path: Path) -> dict[str, float]:
    out = pd.read_csv(path)
    return dict(zip(out["key"], out["value"].astype(float), strict=True))


def _write_model(model: RModel, folder: Path) -> None:
    folder.mkdir()
    names = [f"x{i}" for i in range(model.x.shape[1])]
    data = pd.DataFrame(model.x, columns=names)
    data["y"] = model.y
    data["participant"] = np.asarray(model.participant)
    data["level"] = np.asarray(model.level)
    data.to_csv(folder / "d.csv", index=False)
    pd.DataFrame([{"reml": str(model.reml).upper(), "terms": ",".join(model.terms),
                   "mode": model.mode, "control": "tight" if model.tight else "default"}]
                 ).to_csv(folder / "job.csv", index=False)  # fmt: skip
    rows = [{"id": cid, **dict(zip(names, map(float, r), strict=True))}
            for cid, mat in model.contrasts.items() for r in np.atleast_2d(mat)]  # fmt: skip
    if rows:
        pd.DataFrame(rows).to_csv(folder / "c.csv", index=False)
    if model.theta:
        groups = [R_GROUPS[t] for t in model.theta]
        pd.DataFrame({"group": groups, "theta": list(model.theta.values())}).to_csv(
            folder / "t.csv", index=False
        )


def run_r(models: list[RModel]) -> list[dict[str, float]]:
    """Fit every model in one ``Rscript``; per model a dict with keys ``beta:x<i>``,
    ``se:x<i>``, ``vcov:i:j`` (kept columns), ``var:<R group>``, ``theta:<R name>``,
    ``loglik``, ``deviance`` (REMLcrit for REML), ``sigma``, ``singular``, ``time_lme4`` (s,
    inside R around ``lmer()``), and with inference ``sat:x<i>:<column>`` /
    ``kr:x<i>:<column>`` (columns of lmerTest's ``contest1D``: Estimate, Std. Error, df,
    t value, lower, upper, Pr(>|t|)), ``sat:c1:<id>:<column>`` (1-row contrasts),
    ``sat:cF:<id>:<column>`` (NumDF, DenDF, F value, Pr(>F)) and the same for ``kr``."""
    with tempfile.TemporaryDirectory() as tmp:
        folders = [Path(tmp) / f"m{i}" for i in range(len(models))]
        for model, folder in zip(models, folders, strict=True):
            _write_model(model, folder)
        (Path(tmp) / "jobs.txt").write_text("\n".join(map(str, folders)) + "\n")
        _rscript(_R_FIT, [str(Path(tmp) / "jobs.txt")], Path(tmp))
        return [_read(folder / "o.csv") for folder in folders]


def run_r_anova(table: pd.DataFrame, *, reml: bool = True) -> tuple[dict[str, float], np.ndarray]:
    """lmerTest's type-III ``anova()`` of ``y ~ week * group * moderator`` with the crossed
    random part (tight control); ``table`` needs y, participant, level, week, group
    (``run``/``control``) and moderator. Returns the table's values
    (``sat:<term>:<column>``; with REML also ``kr:week:group:moderator:<column>``) and R's
    model matrix (n, p)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        table.to_csv(folder / "d.csv", index=False)
        _rscript(_R_ANOVA, [str(folder / "d.csv"), str(folder / "o.csv"), str(reml).upper()],
                 folder)  # fmt: skip
        x = pd.read_csv(folder / "o.csv.X.csv").to_numpy(float)
        return _read(folder / "o.csv"), x
