"""The built-in demonstration: the synthetic study through both BIDS-Apps levels.

``t2quant demo OUT_DIR`` writes the study to ``OUT_DIR/bids`` (kept on a rerun with the same
settings), runs the participant level (Nipype, MultiProc) and the group level into
``OUT_DIR/derivatives/t2quant`` with the work directory ``OUT_DIR/work``, and prints what the
group level's ground-truth check (``group/groundtruth_check.json``) found.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from t2quant.synth.writer import StudySettings, study_is_complete, write_synthetic_study

__all__ = ["run_demo"]


def run_demo(
    out: str | Path, settings: StudySettings, *, jobs: int = 1, verbose: bool = False
) -> Path:
    """Run the demo into ``out`` with one progress display (Nipype's log instead with
    ``verbose``); returns the derivatives folder."""
    from t2quant.pipeline.progress import StageProgress

    out = Path(out)
    start = time.perf_counter()
    with StageProgress(live=False if verbose else None) as display:
        paths, seconds = _stages(out, settings, jobs, verbose, display)
        for line in summary_lines(json.loads(paths["groundtruth_check"].read_text())):
            display.line(f"demo: {line}")
    total = time.perf_counter() - start
    shares = ", ".join(f"{name} {sec:.0f} s ({100 * sec / total:.0f}%)"
                       for name, sec in seconds.items())  # fmt: skip
    derivatives = out / "derivatives" / "t2quant"
    first = sorted(derivatives.glob("sub-*.html"))
    print(f"[demo] done in {total:.0f} s: {shares}")
    print(f"[demo] open the group report {paths['report'].resolve().as_uri()}")
    if first:
        print(f"[demo] and a participant report {first[0].resolve().as_uri()}")
    return derivatives


def _stages(out: Path, settings: StudySettings, jobs: int, verbose: bool, display):
    from t2quant.pipeline.group import GroupSettings, run_group
    from t2quant.pipeline.participant import ParticipantSettings, run_participant

    bids, derivatives = out / "bids", out / "derivatives" / "t2quant"
    seconds: dict[str, float] = {}
    tick = time.perf_counter()
    if study_is_complete(bids, settings):
        display.line(f"demo: synthetic study already written -> {bids}")
    else:
        display.add("study", "synthetic study", settings.n_participants)
        write_synthetic_study(bids, settings, jobs=jobs,
                              on_participant=lambda _: display.advance("study"))  # fmt: skip
    seconds["study"] = time.perf_counter() - tick
    tick = time.perf_counter()
    run_participant(ParticipantSettings(
        bids_dir=bids, output_dir=derivatives, work_dir=out / "work", plugin="MultiProc",
        nprocs=jobs, verbose=verbose,
    ), display=None if verbose else display)  # fmt: skip
    seconds["participant level"] = time.perf_counter() - tick
    tick = time.perf_counter()
    paths = run_group(GroupSettings(bids_dir=bids, output_dir=derivatives),
                      display=display)  # fmt: skip
    seconds["group level"] = time.perf_counter() - tick
    return paths, seconds


def summary_lines(check: dict) -> list[str]:
    """The ground-truth check in a few lines."""
    t2 = check["disc_t2"]
    lines = [
        f"disc T2 vs truth: median |error| {t2['median_abs_error_ms']:.2f} ms over "
        f"{t2['n_discs']} discs (target <= {t2['target_ms']:g} ms: "
        f"{'met' if t2['met'] else 'NOT met'}); inside the true masks "
        f"{t2['true_masks_median_abs_error_ms']:.2f} ms"
    ]
    if "grades" in check:
        g = check["grades"]
        lines.append(
            f"suggested vs true Pfirrmann: kappa_quadratic {g['kappa_quadratic']:.3f}, within "
            f"one {g['within_one']:.3f} over {g['n_discs']} discs "
            f"(target >= {g['target_kappa']:g}: {'met' if g['met'] else 'NOT met'})"
        )
    for key, m in check.get("moderators", {}).items():
        lines.append(
            f"moderators {key}: {m['n_covered']}/{m['n_estimates']} true effects inside their "
            f"95% CI; {len(m['misses'])} miss(es), chance allows up to "
            f"{m['misses_expected_by_chance_up_to']}"
        )
    return lines
