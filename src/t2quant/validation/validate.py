"""``t2quant validate``: agreement of suggested (or any second) grades and masks with manual ones.

Writes ``agreement.json``, ``confusion.tsv``, ``pairs.tsv`` and plots; with masks, Dice per
level, and with T2 maps, ICC(2,1) and Bland-Altman of mean disc T2 from the two masks.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from t2quant.errors import InputError
from t2quant.io import atomic_path, bids, read_tsv, write_json, write_tsv
from t2quant.io.tables import Column, read_table
from t2quant.levels import LEVEL_INDEX, LEVELS
from t2quant.pfirrmann.manual import read_manual_grades
from t2quant.plotting import pyplot
from t2quant.validation import agreement as ag

__all__ = ["grade_agreement", "mask_agreement", "read_auto_grades", "validate_to_files"]

KEYS = ["participant_id", "session", "level"]
MASK_PATTERN = bids.DSEG_PATTERN


def read_auto_grades(path: Path) -> pd.DataFrame:
    """Automatic grades: a feature table (``pfirrmann_suggested``) or any grades TSV
    (``pfirrmann``), as ``participant_id, session, level, pfirrmann`` (NaN where ungraded)."""
    path = Path(path)
    if path.suffix == ".csv" or "pfirrmann_suggested" not in read_table(path, what="grades"):
        manual, _ = read_manual_grades(path)
        return manual
    table = read_tsv(path)
    if "session" not in table:
        table["session"] = ""
    table["session"] = table["session"].astype(object).fillna("").astype(str)
    table["pfirrmann"] = pd.to_numeric(table["pfirrmann_suggested"], errors="coerce")
    if "qc_reason" in table:
        reason = table["qc_reason"].fillna("").astype(str)
        table["not_graded_reason"] = reason.where(table["pfirrmann"].isna(), "")
    extra = [c for c in ("level_uncertain", "not_graded_reason") if c in table]
    return table[[*KEYS, "pfirrmann", *extra]]


STATISTICS = ("kappa_quadratic", "kappa_linear", "kappa_unweighted", "exact_agreement",
              "within_one", "ccc_aggregated")  # fmt: skip


def _statistics(m: np.ndarray, a: np.ndarray, sums: pd.DataFrame) -> dict[str, float]:
    """The agreement statistics of paired grades ``m``, ``a`` and per-session sums."""
    return {
        "kappa_quadratic": ag.weighted_kappa(m, a, weights="quadratic"),
        "kappa_linear": ag.weighted_kappa(m, a, weights="linear"),
        "kappa_unweighted": ag.weighted_kappa(m, a, weights=None),
        "exact_agreement": ag.exact_agreement(m, a),
        "within_one": ag.within_one(m, a),
        "ccc_aggregated": ag.lin_ccc(sums["manual"], sums["auto"]) if len(sums) > 1 else np.nan,
    }


def _full_sums(both: pd.DataFrame) -> pd.DataFrame:
    sums = both.groupby(["participant_id", "session"]).agg(
        n=("level", "size"), manual=("pfirrmann_manual", "sum"), auto=("pfirrmann_auto", "sum")
    )
    return sums[sums["n"] == len(LEVELS)]


def grade_agreement(pairs: pd.DataFrame) -> dict:
    """Agreement of ``pfirrmann_manual`` and ``pfirrmann_auto`` over graded pairs.

    ``ccc_aggregated`` is Lin's concordance of the per participant-session sum over the
    seven levels, over the participant-sessions graded at all seven by both.
    """
    both = pairs.dropna(subset=["pfirrmann_manual", "pfirrmann_auto"])
    m, a = both["pfirrmann_manual"].astype(int), both["pfirrmann_auto"].astype(int)
    full = _full_sums(both)
    return {
        "n_discs": len(both),
        "n_not_graded": int(len(pairs) - len(both)),
        **_statistics(m.to_numpy(), a.to_numpy(), full),
        "n_aggregated": len(full),
        "grade_1_5_swaps": int((((m == 1) & (a == 5)) | ((m == 5) & (a == 1))).sum()),
        "grade_1_4or5_swaps": int((((m == 1) & (a >= 4)) | ((m >= 4) & (a == 1))).sum()),
    }


def manual_coverage(pairs: pd.DataFrame) -> dict:
    """How many of the manually graded discs got an automatic grade, and why the others did
    not (the automatic table's ``qc_reason`` of the disc; "no automatic row" without one)."""
    manual = pairs[pairs["pfirrmann_manual"].notna()]
    missed = manual[manual["pfirrmann_auto"].isna()]
    if "not_graded_reason" in missed:
        reasons = missed["not_graded_reason"].fillna("").astype(str)
    else:
        reasons = pd.Series("", index=missed.index)
    reasons = reasons.str.split(";").str[0].str.strip().replace("", "no automatic row")
    return {
        "n_manual": len(manual),
        "fraction_manual_graded": float(1 - len(missed) / len(manual)) if len(manual) else np.nan,
        "not_graded_reasons": {str(k): int(v) for k, v in reasons.value_counts().items()},
    }


def _disc_statistic(name: str, m: np.ndarray, a: np.ndarray) -> float:
    weights = {"kappa_quadratic": "quadratic", "kappa_linear": "linear", "kappa_unweighted": None}
    if name in weights:
        return ag.weighted_kappa(m, a, weights=weights[name])
    return ag.exact_agreement(m, a) if name == "exact_agreement" else ag.within_one(m, a)


def bootstrap_intervals(pairs: pd.DataFrame, *, n_resamples: int = 2000, seed: int = 0) -> dict:
    """95% percentile intervals of every statistic, resampling patients (``participant_id``):
    a patient's discs (and sessions) go together, as they are not independent."""
    both = pairs.dropna(subset=["pfirrmann_manual", "pfirrmann_auto"]).reset_index(drop=True)
    if both["participant_id"].nunique() < 2:
        return {}
    m = both["pfirrmann_manual"].astype(int).to_numpy()
    a = both["pfirrmann_auto"].astype(int).to_numpy()
    clusters = both["participant_id"].to_numpy()
    out = {}
    for name in STATISTICS[:-1]:
        interval = ag.cluster_bootstrap(
            clusters, lambda idx, name=name: _disc_statistic(name, m[idx], a[idx]),
            n_resamples=n_resamples, seed=seed,
        )  # fmt: skip
        out[name] = list(interval)
    sums = _full_sums(both).reset_index()
    if sums["participant_id"].nunique() >= 2:
        manual, auto = sums["manual"].to_numpy(), sums["auto"].to_numpy()
        out["ccc_aggregated"] = list(ag.cluster_bootstrap(
            sums["participant_id"].to_numpy(), lambda idx: ag.lin_ccc(manual[idx], auto[idx]),
            n_resamples=n_resamples, seed=seed,
        ))  # fmt: skip
    return out


def agreement_by(pairs: pd.DataFrame, column: str) -> dict[str, dict]:
    """:func:`grade_agreement` within each value of ``column`` (level, scanner...)."""
    out = {}
    for value, part in pairs.groupby(column, sort=True):
        stats = grade_agreement(part)
        if stats["n_discs"]:
            out[str(value)] = stats
    if column == "level":  # in anatomical order, top down
        out = {lvl: out[lvl] for lvl in LEVELS if lvl in out}
    return out


def mask_agreement(
    manual_masks: Path, auto_masks: Path, t2_maps: Path | None, *,
    manual_pattern: str = MASK_PATTERN, auto_pattern: str = MASK_PATTERN,
) -> tuple[pd.DataFrame, list[str]]:  # fmt: skip
    """One row per session and level: Dice, and the mean T2 (ms) inside each mask when a
    ``*_T2ms.nii.gz`` map (or else a BIDS ``*_T2map.nii.gz`` in seconds) of the session is
    found under ``t2_maps``."""
    manual = bids.find_by_session(manual_masks, manual_pattern)
    auto = bids.find_by_session(auto_masks, auto_pattern)
    maps = bids.find_t2_maps(t2_maps) if t2_maps else {}
    notes = [f"{k[0]} {k[1]}: no automatic mask" for k in sorted(set(manual) - set(auto))]
    rows = []
    for key in sorted(set(manual) & set(auto)):
        a = np.asanyarray(nib.load(str(auto[key])).dataobj)
        m = np.asanyarray(nib.load(str(manual[key])).dataobj)
        if a.shape != m.shape:
            raise InputError(f"{auto[key]} and {manual[key]} are on different grids")
        t2 = _t2_ms(maps[key]) if key in maps else None
        if key not in maps and t2_maps:
            notes.append(f"{key[0]} {key[1]}: no _T2ms map under {t2_maps}")
        for level in LEVELS:
            mm, aa = m == LEVEL_INDEX[level], a == LEVEL_INDEX[level]
            if not (mm.any() or aa.any()):
                continue
            rows.append(
                {"participant_id": key[0], "session": key[1], "level": level,
                 "dice": ag.dice(mm, aa),
                 "t2_manual_ms": _mean(t2, mm), "t2_auto_ms": _mean(t2, aa)}
            )  # fmt: skip
    return pd.DataFrame(rows), notes


def _t2_ms(path: Path) -> np.ndarray:
    return nib.load(str(path)).get_fdata(dtype=np.float32) * np.float32(bids.t2_seconds_to_ms(path))


def _mean(t2, mask) -> float:
    if t2 is None or not mask.any():
        return float("nan")
    values = t2[mask]
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def validate_to_files(
    manual: Path, auto: Path, outdir: Path, *, manual_masks: Path | None = None,
    auto_masks: Path | None = None, t2_maps: Path | None = None,
    manual_pattern: str = MASK_PATTERN, auto_pattern: str = MASK_PATTERN,
    participants: Path | None = None, bootstrap: int = 2000, seed: int = 0,
) -> dict:  # fmt: skip
    """Compare, write the outputs to ``outdir`` and return the ``agreement.json`` content.

    As a rater study reports it: every statistic with a 95% bootstrap interval resampling
    patients (``bootstrap`` resamples, 0 for none), the confusion matrix, the agreement per
    level and, given a ``participants`` table with ``manufacturer`` and
    ``field_strength_t`` columns, per scanner.
    """
    outdir = Path(outdir)
    m, notes = read_manual_grades(manual)
    a = read_auto_grades(auto)
    outside = sorted(set(m["participant_id"]) - set(a["participant_id"]))
    if outside and set(m["participant_id"]) & set(a["participant_id"]):
        n_out = int(m["participant_id"].isin(outside).sum())
        notes.append(
            f"{len(outside)} participants of the manual grades ({n_out} discs) are not in the "
            "automatic table and are left out"
        )
        m = m[~m["participant_id"].isin(outside)]
    pairs = m.merge(a, on=KEYS, how="outer", suffixes=("_manual", "_auto"))
    if not pairs[["pfirrmann_manual", "pfirrmann_auto"]].notna().all(axis=1).any():
        raise InputError(
            f"{manual} and {auto}: no disc has both a manual and an automatic grade; check that "
            "participant_id (with sub-), session and level match in the two files"
        )
    result = {"manual": str(manual), "auto": str(auto), **grade_agreement(pairs)}
    graded = pairs.dropna(subset=["pfirrmann_manual", "pfirrmann_auto"])
    result["n_participants"] = int(graded["participant_id"].nunique())
    result["n_manual_only"] = int(pairs["pfirrmann_auto"].isna().sum())
    result |= manual_coverage(pairs)
    result["notes"] = notes
    if bootstrap:
        result["ci95"] = bootstrap_intervals(pairs, n_resamples=bootstrap, seed=seed)
        result["bootstrap"] = {"resamples": bootstrap, "unit": "participant", "seed": seed}
    result["by_level"] = agreement_by(pairs, "level")
    if participants is not None:
        result["by_scanner"] = agreement_by(_with_scanner(pairs, participants), "scanner")
    if "level_uncertain" in pairs:
        flagged = pairs["level_uncertain"].astype("boolean").fillna(False).astype(bool)
        result["n_level_uncertain_discs"] = int(flagged.sum())
        result["without_level_uncertain"] = grade_agreement(pairs[~flagged])
    write_tsv(pairs.sort_values(KEYS), outdir / "pairs.tsv")
    both = pairs.dropna(subset=["pfirrmann_manual", "pfirrmann_auto"])
    conf = ag.confusion(both["pfirrmann_manual"], both["pfirrmann_auto"])
    table = pd.DataFrame(conf, columns=[f"auto_{g}" for g in ag.GRADES])
    table.insert(0, "manual", list(ag.GRADES))
    write_tsv(table, outdir / "confusion.tsv")
    result["confusion"] = {"rows": "manual grade 1..5", "columns": "automatic grade 1..5",
                           "counts": conf.tolist()}  # fmt: skip
    _plot_confusion(conf, outdir / "confusion.png")
    if manual_masks and auto_masks:
        patterns = (manual_pattern, auto_pattern)
        result |= _masks(manual_masks, auto_masks, t2_maps or auto_masks, outdir, patterns)
    write_json(result, outdir / "agreement.json")
    return result


def agreement_lines(result: dict) -> list[str]:
    """``agreement.json`` as a rater study prints it: each statistic with its interval, the
    confusion matrix, the agreement per level and per scanner."""
    ci = result.get("ci95", {})

    def stat(name: str, record: dict = result) -> str:
        value = record.get(name, np.nan)
        low, high = ci.get(name, (np.nan, np.nan)) if record is result else (np.nan, np.nan)
        interval = f" [{low:.3f}, {high:.3f}]" if np.isfinite(low) else ""
        return f"{value:.3f}{interval}"

    head = (
        f"{result['n_discs']} discs of {result.get('n_participants', '?')} patients "
        f"({result['n_not_graded']} not graded); 95% intervals: bootstrap over patients"
    )
    lines = [head]
    if "fraction_manual_graded" in result:
        why = ", ".join(f"{k}: {v}" for k, v in result.get("not_graded_reasons", {}).items())
        lines.append(
            f"  manually graded discs graded: {result['fraction_manual_graded']:.1%} of "
            f"{result['n_manual']}" + (f" (not graded: {why})" if why else "")
        )
    for name in STATISTICS:
        lines.append(f"  {name:18s} {stat(name)}")
    lines.append(f"  grade 1 <-> 4/5 confusions: {result.get('grade_1_4or5_swaps', 0)}")
    lines.append(f"  aggregated score over {result.get('n_aggregated', 0)} fully graded sessions")
    counts = result.get("confusion", {}).get("counts")
    if counts:
        lines.append("  confusion (rows manual 1..5, columns automatic 1..5):")
        lines += ["    " + " ".join(f"{c:4d}" for c in row) for row in counts]
    for key, title in (("by_level", "level"), ("by_scanner", "scanner")):
        for name, record in result.get(key, {}).items():
            kappa = stat("kappa_quadratic", record)
            lines.append(
                f"  {title} {name}: n {record['n_discs']}, kappa_q {kappa}, exact "
                f"{stat('exact_agreement', record)}, within one {stat('within_one', record)}"
            )
    return lines


def _with_scanner(pairs: pd.DataFrame, participants: Path) -> pd.DataFrame:
    """``pairs`` with a ``scanner`` column (manufacturer and field strength) per participant."""
    table = read_table(participants, [Column("participant_id"), Column("manufacturer"),
                                      Column("field_strength_t", "float", low=0, high=20)],
                       what="participants table", unique=("participant_id",))  # fmt: skip
    vendor = table["manufacturer"].str.split().str[0].str.title()
    scanner = vendor + " " + table["field_strength_t"].map(lambda t: f"{t:g} T")
    scanners = pd.DataFrame({"participant_id": table["participant_id"], "scanner": scanner})
    return pairs.merge(scanners, on="participant_id", how="left")


def _masks(manual_masks: Path, auto_masks: Path, t2_maps: Path, outdir: Path, patterns) -> dict:
    rows, notes = mask_agreement(
        manual_masks, auto_masks, t2_maps, manual_pattern=patterns[0], auto_pattern=patterns[1]
    )
    out: dict = {"mask_notes": notes, "n_masked_discs": len(rows)}
    if rows.empty:
        return out
    write_tsv(rows, outdir / "masks.tsv")
    out["dice_by_level"] = rows.groupby("level")["dice"].mean().reindex(LEVELS).dropna().to_dict()
    out["dice_median"] = float(rows["dice"].median())
    t2 = rows.dropna(subset=["t2_manual_ms", "t2_auto_ms"])
    if len(t2) >= 2:
        out["icc_2_1_t2"] = ag.icc_2_1(t2[["t2_manual_ms", "t2_auto_ms"]].to_numpy())
        out["bland_altman_t2_ms"] = ag.bland_altman(t2["t2_auto_ms"], t2["t2_manual_ms"])
        out["n_t2_pairs"] = len(t2)
        _plot_bland_altman(t2, out["bland_altman_t2_ms"], outdir / "bland_altman_t2.png")
    return out


def _plot_confusion(conf: np.ndarray, path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    ax.imshow(conf, cmap="Blues")
    for (i, j), v in np.ndenumerate(conf):
        colour = "black" if v < conf.max() / 2 else "white"
        ax.text(j, i, str(v), ha="center", va="center", color=colour)
    ticks = range(len(ag.GRADES))
    ax.set_xticks(ticks, [str(g) for g in ag.GRADES])
    ax.set_yticks(ticks, [str(g) for g in ag.GRADES])
    ax.set_xlabel("t2quant suggested grade")
    ax.set_ylabel("manual grade")
    ax.set_title("Pfirrmann grades")
    _save(fig, path)


def _plot_bland_altman(t2: pd.DataFrame, ba: dict, path: Path) -> None:
    mean = 0.5 * (t2["t2_auto_ms"] + t2["t2_manual_ms"])
    diff = t2["t2_auto_ms"] - t2["t2_manual_ms"]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.8))
    ax.scatter(mean, diff, s=12, alpha=0.7)
    for y, style in ((ba["bias"], "-"), (ba["loa_low"], "--"), (ba["loa_high"], "--")):
        ax.axhline(y, color="0.3", linestyle=style, linewidth=1)
    ax.set_xlabel("mean disc T2 of the two masks (ms)")
    ax.set_ylabel("automatic - manual mask (ms)")
    ax.set_title(f"Bland-Altman: bias {ba['bias']:.2f} ms, LoA ±{1.96 * ba['sd']:.2f} ms")
    _save(fig, path)


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110)
    pyplot().close(fig)
