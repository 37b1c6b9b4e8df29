"""What each ``t2quant`` subcommand does: call one stage's ``*_to_files`` function and print
a short summary. The parsers are in :mod:`t2quant.cli.parser`."""

from __future__ import annotations

import argparse
import time

from t2quant.errors import MissingInputError


def cmd_fit(args: argparse.Namespace) -> int:
    from t2quant.io.echoes import load_input
    from t2quant.relaxometry.files import fit_to_files

    start = time.perf_counter()
    me = load_input(args.inputs, args.te)
    sigma = args.noise_sigma
    fit, paths = fit_to_files(
        me, args.out, method=args.method, mask=args.mask, use_mask=not args.no_mask,
        b1_map=args.b1_map, noise_sigma=sigma, n_threads=args.nthreads,
        skip_first_echo=args.skip_first_echo, t1_ms=args.t1_ms, t2_max_ms=args.t2_max_ms,
    )  # fmt: skip
    counts = fit.failure_counts()
    fitted = int((fit.failure != 1).sum())
    print(
        f"{me.stem}: {args.method} fit of {fitted} voxels x {me.te_ms.size} echoes in "
        f"{time.perf_counter() - start:.1f} s; outcomes {counts}; T2 map {paths['t2_s']}"
    )
    return 0


def cmd_segment(args: argparse.Namespace) -> int:
    from t2quant.segmentation.files import segment_to_files

    start = time.perf_counter()
    seg, paths = segment_to_files(
        args.inputs, args.out, orientation=args.orientation, labels_from=args.labels_from,
        te_ms=args.te,
    )  # fmt: skip
    found = [r.level for r in seg.records if r.found]
    print(
        f"{paths['dseg'].name}: {len(found)} of 7 levels ({', '.join(found) or 'none'}) in "
        f"{time.perf_counter() - start:.1f} s; flags: {', '.join(seg.flags) or 'none'}"
    )
    for warning in seg.warnings:
        print(f"  warning: {warning}")
    return 0


def cmd_features(args: argparse.Namespace) -> int:
    import pandas as pd

    from t2quant.pfirrmann.files import grade_to_files

    start = time.perf_counter()
    table, paths = grade_to_files(
        args.inputs, args.labels, args.out, t2map=args.t2map, orientation=args.orientation,
        te_ms=args.te, thresholds=args.thresholds,
    )  # fmt: skip
    print(f"{paths['features']}: {time.perf_counter() - start:.1f} s")
    for row in table.itertuples():
        grade = "-" if pd.isna(row.pfirrmann_suggested) else int(row.pfirrmann_suggested)
        conf, why = row.pfirrmann_confidence, row.pfirrmann_criteria
        print(f"  {row.level:8s} grade {grade} ({conf:.2f}): {why}")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from t2quant.pfirrmann.files import calibrate_to_files

    result = calibrate_to_files(args.manual, args.features, args.out, folds=args.folds)
    names = ("default_thresholds", "default_ordinal", "thresholds_cross_validated",
             "ordinal_cross_validated")  # fmt: skip
    for name in names:
        r = result[name]
        print(
            f"{name}: kappa_quadratic {r['kappa_quadratic']:.3f}, "
            f"exact {r['exact_agreement']:.3f}, within one {r['within_one']:.3f} "
            f"(n = {r['n_discs']})"
        )
    print(f"better cross-validated: {result['chosen']} (its out-of-fold grades: cv_grades.tsv)")
    print(f"-> {args.out / 'calibration.json'}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from t2quant.validation.validate import validate_to_files

    result = validate_to_files(
        args.manual, args.auto, args.out, manual_masks=args.manual_masks,
        auto_masks=args.auto_masks, t2_maps=args.t2_maps, manual_pattern=args.manual_pattern,
        auto_pattern=args.auto_pattern, participants=args.participants,
        bootstrap=args.bootstrap,
    )  # fmt: skip
    from t2quant.validation.validate import agreement_lines

    print("\n".join(agreement_lines(result)))
    if "dice_median" in result:
        print(f"masks: median Dice {result['dice_median']:.3f}")
    print(f"-> {args.out / 'agreement.json'}")
    return 0


def cmd_table(args: argparse.Namespace) -> int:
    from t2quant.pipeline.group import build_table

    table, paths = build_table(
        args.bids, args.derivatives, args.out, manual_grades=args.manual_grades,
        ratings=args.ratings, prefix="",
    )  # fmt: skip
    failed = int((table["qc_status"] == "failed").sum())
    print(f"{len(table)} disc rows ({failed} without a measurement) -> {paths['tsv']}")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from t2quant.group.stats.files import stats_to_files

    start = time.perf_counter()
    results, paths = stats_to_files(
        args.table, args.out, config=args.config, moderators=args.moderators,
        outcome=args.outcome, inference=args.inference,
    )  # fmt: skip
    for row in results.moderators[results.moderators["moderator"] == "overall"].itertuples():
        print(
            f"overall, week {row.timepoint_weeks}: {row.estimate_ms:.2f} ms "
            f"[{row.ci_low_ms:.2f}, {row.ci_high_ms:.2f}], p = {row.p_value:.3g} "
            f"({row.inference}, df = {row.df:.1f})"
        )
    n = len(results.moderators)
    problems = int((results.moderators["warning"].fillna("") != "").sum())
    print(
        f"{n} rows ({problems} with warnings) in {time.perf_counter() - start:.1f} s "
        f"-> {paths['moderators']}"
    )
    return 0


def cmd_synth_study(args: argparse.Namespace) -> int:
    from t2quant.synth.writer import write_synthetic_study

    start = time.perf_counter()
    discs = write_synthetic_study(args.out, study_settings(args), jobs=args.jobs)
    n_sessions = discs.groupby(["participant_id", "session"]).ngroups
    print(
        f"wrote {n_sessions} sessions of {args.participants} participants to {args.out} "
        f"in {time.perf_counter() - start:.1f} s"
    )
    return 0


def cmd_synth_real(args: argparse.Namespace) -> int:
    from t2quant.synth.protocol import Protocol
    from t2quant.synth.writer import write_real_anatomy_session

    for path in (args.t2w, args.discs):
        if not path.is_file():
            raise MissingInputError(f"{path}: no such file")
    protocol = Protocol(n_echoes=args.n_echoes, esp_ms=args.esp_ms)
    table = write_real_anatomy_session(
        args.out,
        args.t2w,
        args.discs,
        axcodes=args.orientation,
        protocol=protocol,
        snr=args.snr,
        seed=args.seed,
    )
    found = table.dropna(subset=["t2_true_ms"])
    print(
        f"wrote a simulated MESE session to {args.out}; true whole-disc T2 (ms): "
        + ", ".join(f"{r.level} {r.t2_true_ms:.1f}" for r in found.itertuples())
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from t2quant.cli.demo import run_demo

    run_demo(args.out, study_settings(args), jobs=args.jobs, verbose=args.verbose)
    return 0


def study_settings(args: argparse.Namespace):
    from t2quant.synth.protocol import PRESETS
    from t2quant.synth.writer import StudySettings

    if args.participants < 2:
        raise SystemExit("t2quant: error: --participants must be at least 2")
    return StudySettings(
        n_participants=args.participants,
        seed=args.seed,
        protocol=PRESETS[args.protocol],
        snr=args.snr,
    )
