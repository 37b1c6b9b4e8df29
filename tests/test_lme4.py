"""The statsmodels model against R's lme4, fitted on the same rows (an Rscript subprocess).

Skipped, with the reason, only where R or lme4 is not installed; CI installs both
(``r-base-core r-cran-lme4``, see ``.ci/run``).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from t2quant.group.stats import load_config
from t2quant.group.stats.config import CATALOGUE
from t2quant.group.stats.mixed import add_design, fit_mixed
from t2quant.group.stats.prepare import assign_subgroups
from t2quant.synth.table import simulate_disc_table

R_SCRIPT = r"""
suppressMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
m <- lmer(t2_mean_ms ~ factor(timepoint_weeks) * relevel(factor(group), "control") +
            (1 | participant_id) + (1 | level) + (1 | participant_id:level),
          data = d, REML = as.logical(args[3]))
co <- summary(m)$coefficients
write.csv(data.frame(estimate = co[, 1], se = co[, 2]), args[2], row.names = FALSE)
"""
OURS = ["Intercept", "wk6", "wk12", "run", "run_wk6", "run_wk12"]


def _lme4_available() -> str | None:
    if shutil.which("Rscript") is None:
        return "Rscript is not installed (CI installs r-base-core and r-cran-lme4)"
    probe = subprocess.run(["Rscript", "-e", "library(lme4)"], capture_output=True, text=True)
    if probe.returncode:
        return "R is installed but lme4 is not (apt-get install r-cran-lme4)"
    return None


@pytest.fixture(scope="module")
def rscript(tmp_path_factory):
    reason = _lme4_available()
    if reason:
        pytest.skip(reason)
    path = tmp_path_factory.mktemp("r") / "fit.R"
    path.write_text(R_SCRIPT)
    return path


def _subsets():
    table, _ = simulate_disc_table(40, 1)
    table = table.rename(columns={"pfirrmann": "pfirrmann_baseline"})
    sex, _, _ = assign_subgroups(table, CATALOGUE["sex"])
    volume, order, _ = assign_subgroups(table, CATALOGUE["running_volume_quartile"])
    grade, _, _ = assign_subgroups(table, CATALOGUE["pfirrmann_category"])
    return {
        "overall": table,
        "sex F": table[sex == "F"],
        "running volume Q2 vs all controls": table[
            (volume == order[1]) | (table.group == "control")
        ],
        "moderate discs (unbalanced)": table[grade == "moderate"],
    }


@pytest.mark.slow
@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("subset", list(_subsets()))
def test_fixed_effects_and_ses_match_lme4(rscript, tmp_path, subset, reml):
    data = _subsets()[subset].reset_index(drop=True)
    csv, out = tmp_path / "d.csv", tmp_path / "fe.csv"
    data.to_csv(csv, index=False)
    subprocess.run(["Rscript", str(rscript), str(csv), str(out), str(reml).upper()], check=True)
    lme4 = pd.read_csv(out)
    model = replace(load_config(moderators=["none"]).model, reml=reml)
    design, terms = add_design(data, model, [6, 12])
    fit = fit_mixed(design, terms, model)
    assert fit.converged
    np.testing.assert_allclose(fit.params[OURS], lme4["estimate"], rtol=1e-4, atol=1e-8)
    np.testing.assert_allclose(fit.bse[OURS], lme4["se"], rtol=1e-4)
