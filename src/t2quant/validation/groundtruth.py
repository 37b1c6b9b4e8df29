"""A synthetic study's results against its ground truth: ``group/groundtruth_check.json``.

Three comparisons, each with the target the demo is held to:

- disc T2: the disc table's ``t2_mean_ms`` (automatic masks) against the true whole-disc T2
  (median absolute error <= 2 ms), and, to tell fitting from segmentation error, the T2 maps
  averaged inside the true masks;
- grades: the agreement statistics the group level computed against the true grades
  (quadratic kappa >= 0.85);
- moderators: every subgroup estimate against the true net difference of the same subgroup's
  runners (:func:`true_moderator_effects`); every 12-week true effect
  inside its 95% CI, or the misses explained.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

from t2quant.group.stats.prepare import analysis_rows, assign_subgroups
from t2quant.io import bids, read_tsv, write_json, write_tsv
from t2quant.synth.table import true_subgroup_effects

__all__ = [
    "T2_TARGET_MS",
    "disc_t2_errors",
    "moderator_coverage",
    "summarise_coverage",
    "true_moderator_effects",
    "write_groundtruth_check",
    "write_true_grades",
]

T2_TARGET_MS = 2.0
KAPPA_TARGET = 0.85
KEYS = ["participant_id", "session", "level"]


def disc_t2_errors(measured: pd.DataFrame, truth: pd.DataFrame, column: str) -> pd.Series:
    """``measured[column] - t2_true_ms`` for every disc measured in both (ms)."""
    both = measured[[*KEYS, column]].merge(truth[[*KEYS, "t2_true_ms"]], on=KEYS)
    error = pd.to_numeric(both[column], errors="coerce") - both["t2_true_ms"]
    return error.dropna()


def moderator_coverage(moderators: pd.DataFrame, true_effects: dict) -> pd.DataFrame:
    """``moderators.tsv`` rows with a true effect, with ``true_ms`` and ``covered``."""
    rows = moderators.copy()
    keys = zip(rows["moderator"], rows["subgroup"], rows["timepoint_weeks"], strict=True)
    rows["true_ms"] = [true_effects.get((m, s, int(w)), np.nan) for m, s, w in keys]
    rows = rows[rows["true_ms"].notna() & rows["estimate_ms"].notna()].copy()
    rows["covered"] = (rows["ci_low_ms"] <= rows["true_ms"]) & (
        rows["true_ms"] <= rows["ci_high_ms"]
    )
    rows["z"] = (rows["estimate_ms"] - rows["true_ms"]) / rows["se_ms"]
    keep = ["moderator", "subgroup", "timepoint_weeks", "estimate_ms", "se_ms", "ci_low_ms",
            "ci_high_ms", "true_ms", "covered", "z", "n_participants"]  # fmt: skip
    return rows[[c for c in keep if c in rows]].reset_index(drop=True)


def summarise_coverage(coverage: pd.DataFrame, week: int, level: float = 0.95) -> dict:
    """Coverage at ``week`` and, for each miss, the explanation the numbers give.

    With n estimates at a 95% level about 5% miss by chance alone; misses up to the upper
    95% binomial limit are reported as consistent with chance, each with its z-score.
    """
    at = coverage[coverage["timepoint_weeks"] == week]
    n, misses = len(at), at[~at["covered"]]
    allowed = int(sps.binom.ppf(0.95, n, 1 - level)) if n else 0
    chance = len(misses) <= allowed
    verdict = (
        f"{len(misses)} miss(es) in {n} 95% intervals is within the {allowed} expected by "
        "chance (binomial 95% limit)"
        if chance
        else f"{len(misses)} misses in {n} exceed the {allowed} expected by chance"
    )
    explained = []
    for row in misses.to_dict("records"):
        distance = f"true {row['true_ms']:.2f} ms lies {abs(row['z']):.2f} SE from the estimate"
        explained.append({k: _plain(v) for k, v in row.items()} | {
            "explanation": f"{distance}; {verdict}"
        })  # fmt: skip
    return {
        "timepoint_weeks": week,
        "n_estimates": n,
        "n_covered": int(at["covered"].sum()),
        "coverage": float(at["covered"].mean()) if n else float("nan"),
        "misses_expected_by_chance_up_to": allowed,
        "misses": explained,
        "all_covered_or_explained_by_chance": bool(chance),
    }


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    return value


def _true_mask_t2(derivatives: Path, bids_dir: Path) -> pd.DataFrame:
    """Mean of each session's T2 map (ms) inside the true disc masks."""
    import nibabel as nib

    from t2quant.levels import INDEX_LEVEL

    masks = bids.find_truth_masks(bids_dir)
    rows = []
    for key, t2_path in sorted(bids.find_t2_maps(derivatives).items()):
        if key not in masks:
            continue
        t2 = np.asarray(nib.load(t2_path).dataobj, dtype=np.float32)
        t2 = t2 * np.float32(bids.t2_seconds_to_ms(t2_path))
        labels = np.asarray(nib.load(masks[key]).dataobj)
        if labels.shape != t2.shape:
            continue
        for index, level in INDEX_LEVEL.items():
            inside = labels == index
            if inside.any():
                rows.append((*key, level, float(np.nanmean(t2[inside]))))
    return pd.DataFrame(rows, columns=[*KEYS, "t2_true_mask_ms"])


def true_moderator_effects(
    table: pd.DataFrame, truth: pd.DataFrame, config
) -> dict[tuple[str, str, int], float]:
    """True net difference by (moderator, subgroup, week) for the rows the moderator stage
    analyses (:func:`t2quant.group.stats.prepare.analysis_rows`), with its subgroup rules.

    Continuous moderators (a per-unit slope) have no entry.
    """
    rows, _ = analysis_rows(table, config.model)
    out = {("overall", "all", w): v for w, v in true_subgroup_effects(rows, truth).items()}
    for m in config.moderators:
        if m.scale == "continuous":
            continue
        try:
            groups, order, _ = assign_subgroups(rows, m)
        except ValueError:  # cannot be cut; the stage reports it as not estimated
            continue
        for s in order:
            subset = rows[(groups == s).to_numpy()]
            for w, v in true_subgroup_effects(subset, truth).items():
                out[(m.name, s, w)] = v
    return out


def write_true_grades(bids_dir: Path, path: Path) -> Path:
    """The true Pfirrmann grades of a synthetic study (``derivatives/groundtruth/discs.tsv``)
    as a manual-grades TSV (``participant_id, session, level, pfirrmann``)."""
    truth = read_tsv(Path(bids_dir) / "derivatives" / "groundtruth" / "discs.tsv")
    truth = truth.rename(columns={"pfirrmann_true": "pfirrmann"})
    return write_tsv(truth[["participant_id", "session", "level", "pfirrmann"]], path)


def write_groundtruth_check(
    bids_dir: Path, derivatives: Path, group: Path, *, config=None
) -> Path | None:
    """``group/groundtruth_check.json`` (and ``groundtruth_moderators.tsv``) when
    ``bids_dir/derivatives/groundtruth`` exists; ``None`` otherwise."""
    from t2quant.group.stats import load_config

    truth_dir = Path(bids_dir) / "derivatives" / "groundtruth"
    if not (truth_dir / "discs.tsv").is_file():
        return None
    truth = read_tsv(truth_dir / "discs.tsv")
    table = read_tsv(Path(group) / "discs.tsv")
    auto = disc_t2_errors(table, truth, "t2_mean_ms").abs()
    fitted = disc_t2_errors(_true_mask_t2(derivatives, bids_dir), truth, "t2_true_mask_ms")
    record: dict = {
        "disc_t2": {
            "masks": "automatic segmentation (the disc table's t2_mean_ms)",
            "n_discs": int(auto.size),
            "median_abs_error_ms": float(auto.median()),
            "p95_abs_error_ms": float(auto.quantile(0.95)),
            "true_masks_median_abs_error_ms": float(fitted.abs().median()),
            "true_masks_n_discs": int(fitted.size),
            "target_ms": T2_TARGET_MS,
            "met": bool(auto.median() <= T2_TARGET_MS),
        }
    }
    agreement = Path(group) / "agreement.json"
    if agreement.is_file():
        a = json.loads(agreement.read_text())
        record["grades"] = {k: a.get(k) for k in ("n_discs", "kappa_quadratic", "within_one")}
        record["grades"] |= {"target_kappa": KAPPA_TARGET,
                             "met": bool(a.get("kappa_quadratic", 0) >= KAPPA_TARGET)}  # fmt: skip
    moderators = Path(group) / "moderators.tsv"
    if moderators.is_file():
        participants = read_tsv(truth_dir / "participants_truth.tsv")
        effects = true_moderator_effects(table, participants, load_config(config))
        coverage = moderator_coverage(read_tsv(moderators), effects)
        write_tsv(coverage, Path(group) / "groundtruth_moderators.tsv")
        weeks = sorted(coverage["timepoint_weeks"].unique())
        record["moderators"] = {f"week{w:02d}": summarise_coverage(coverage, int(w)) for w in weeks}
    return write_json(record, Path(group) / "groundtruth_check.json")
