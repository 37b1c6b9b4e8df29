"""The parsers of the ``t2quant`` subcommands (the BIDS-Apps form is in
:mod:`t2quant.cli.bidsapp`)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from t2quant import __version__
from t2quant.cli import commands


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0 (``nan``, ``inf``, ``0`` and words refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def noise_sigma(text: str) -> float | str:
    """An argparse type: a noise SD (finite, > 0) or the word ``background``."""
    return text if text == "background" else positive_float(text)


def non_negative_int(text: str) -> int:
    """An argparse type: a whole number >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="t2quant",
        description="Lumbar intervertebral-disc T2 from multi-echo spin-echo MRI. Also runs as "
        "a BIDS App: t2quant BIDS_DIR OUT_DIR {participant,group} [options] (see "
        "t2quant BIDS_DIR OUT_DIR participant --help).",
    )
    parser.add_argument("--version", action="version", version=f"t2quant {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("synth-study", help="write a synthetic BIDS study with ground truth")
    p.add_argument("out", type=Path, help="output BIDS folder")
    _study_options(p)
    p.set_defaults(func=commands.cmd_synth_study)

    p = sub.add_parser(
        "synth-real", help="simulate a MESE session on a real T2w volume with manual disc masks"
    )
    p.add_argument("t2w", type=Path, help="sagittal T2-weighted NIfTI")
    p.add_argument(
        "discs",
        type=Path,
        help="manual disc labels on the same grid "
        "(1 = L5/S1, 2 = L4/L5, ... counting up from the sacrum)",
    )
    p.add_argument("-o", "--out", type=Path, required=True, help="output BIDS folder")
    p.add_argument(
        "--orientation",
        required=True,
        metavar="AXCODES",
        help="nibabel axis codes of the arrays, e.g. IPR (axis 0 toward inferior, "
        "1 toward posterior, 2 toward right); the file affine is not trusted",
    )
    p.add_argument("--n-echoes", type=positive_int, default=12)
    p.add_argument(
        "--esp-ms", type=positive_float, default=10.0, help="echo spacing in ms (default 10)"
    )
    p.add_argument("--snr", type=positive_float, default=80.0)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=commands.cmd_synth_real)

    _add_fit_parser(sub)
    _add_segment_parser(sub)
    _add_grading_parsers(sub)
    _add_group_parsers(sub)

    p = sub.add_parser(
        "demo",
        help="the built-in synthetic study through the participant and group levels",
        description="Write the synthetic study to OUT_DIR/bids, run the participant level "
        "(MultiProc, --jobs processes) and the group level into OUT_DIR/derivatives/t2quant, "
        "and check the results against the study's ground truth "
        "(group/groundtruth_check.json). A rerun reuses the study and the Nipype cache "
        "in OUT_DIR/work.",
    )
    p.add_argument(
        "out", type=Path, nargs="?", default=Path("demo-output"),
        help="output folder (default: demo-output)",
    )  # fmt: skip
    _study_options(p)
    p.add_argument("--verbose", action="store_true", help="Nipype's own log instead of progress")
    p.set_defaults(func=commands.cmd_demo)
    return parser


def _add_fit_parser(sub) -> None:
    from t2quant.relaxometry.fit import METHODS

    p = sub.add_parser(
        "fit",
        help="fit T2 maps to multi-echo spin-echo data",
        description="Fit T2 maps. INPUT is a BIDS session folder (*_echo-N_MESE.nii.gz with "
        "EchoTime in the sidecars), a DICOM series folder, one 4D NIfTI (with --te), or one "
        "NIfTI per echo (echo times from sidecars or --te). Maps are written on the source "
        "grid: T2 in s (BIDS T2map) and ms, S0, B1, R-squared, RMSE, T2 standard error and "
        "failure codes, each with a JSON sidecar.",
    )
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT")
    p.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    p.add_argument("--te", type=positive_float, nargs="+", metavar="MS", help="echo times in ms")
    p.add_argument("--method", choices=METHODS, default="epg", help="fit method (default epg)")
    mask = p.add_mutually_exclusive_group()
    mask.add_argument("--mask", type=Path, help="NIfTI mask on the echo grid (non-zero = fit)")
    mask.add_argument(
        "--no-mask", action="store_true", help="fit every voxel (default: Otsu on log echo 1)"
    )
    p.add_argument("--b1-map", type=Path, help="fixed B1 map (fraction of 180 deg) for epg")
    p.add_argument(
        "--noise-sigma",
        default=None,
        type=noise_sigma,
        metavar="SIGMA|background",
        help="noise SD in signal units, or 'background' to estimate it outside the mask "
        "(needed by rician; sets the noise floor of loglinear)",
    )
    p.add_argument("--skip-first-echo", action="store_true", help="leave echo 1 out of the fit")
    p.add_argument(
        "--t1-ms", type=positive_float, default=1000.0, help="T1 for epg in ms (default 1000)"
    )
    p.add_argument(
        "--t2-max-ms", type=positive_float, help="longest plausible T2 (default 5 x last TE)"
    )
    p.add_argument(
        "--nthreads", type=positive_int, default=os.cpu_count() or 1, help="threads (default: all)"
    )
    p.set_defaults(func=commands.cmd_fit)


def _add_segment_parser(sub) -> None:
    p = sub.add_parser(
        "segment",
        help="segment and name the lumbar discs (T11/T12..L5/S1) on a sagittal image",
        description="Segment every whole disc (nucleus and annulus) on a sagittal T2-weighted "
        "image and name its level. A 2D U-Net shipped in the package (trained on synthetic "
        "phantom images, fine-tuned on three real volumes with manual disc masks; run with "
        "onnxruntime on the CPU, nothing downloaded) labels "
        "discs, vertebral bodies, sacrum, canal and cord on every sagittal slice; the discs "
        "are named upward from the sacrum, the end of the cord is a second check, and an "
        "unsure count is flagged (level_uncertain, transitional_anatomy, missing_level, "
        "no_sacrum, partial_disc), never renumbered. IMAGE is a 3D NIfTI (a T2w FSE), one "
        "sagittal slice (2D, or 3D with one slice), or multi-echo data (a 4D NIfTI, a BIDS "
        "session folder, per-echo NIfTIs), from which the mean of the echoes at 60-120 ms is "
        "segmented. Writes <stem>_dseg.nii.gz, <stem>_dseg.tsv (BIDS lookup), "
        "<stem>_discs.tsv (+ .json with warnings and flags) and <stem>_qc.png. With "
        "--labels-from the disc mask comes from another tool or a person instead, mapped to "
        "the same labels. Known limits (README, docs/segmentation_model_card.md): real-volume "
        "Dice 0.85 (target 0.90) and SPIDER naming 61% (target 95%).",
    )
    p.add_argument("inputs", nargs="+", type=Path, metavar="IMAGE")
    p.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    p.add_argument(
        "--orientation",
        help="nibabel axis codes overriding the affine, the direction each array axis points "
        "as its index grows (e.g. IPR), for files whose affine is wrong",
    )
    p.add_argument(
        "--labels-from",
        nargs=2,
        metavar=("SCHEME", "MASK"),
        help="import MASK instead of segmenting; SCHEME is spineps, totalspineseg, spider, "
        "project (t2quant labels, e.g. a corrected mask) or a .tsv with columns label, level",
    )
    p.add_argument(
        "--te", type=positive_float, nargs="+", metavar="MS", help="echo times of a 4D input"
    )
    p.set_defaults(func=commands.cmd_segment)


def _add_grading_parsers(sub) -> None:
    p = sub.add_parser(
        "features",
        help="measure every labelled disc and suggest its Pfirrmann grade",
        description="Measure each labelled disc of one session (T2 statistics with and "
        "without the one-voxel outline, volume, heights, disc height index, bulge index, "
        "nucleus and annulus T2 and signal, the nucleus's signal relative to CSF, to the "
        "adjacent vertebral bodies and to the brightest disc, two-peak mixture separation, "
        "homogeneity, horizontal band, and the disc-appearance network's reading of the disc "
        "as a grade) and suggest a Pfirrmann grade with the criteria that decided it (by "
        "default an ordinal model fitted to radiologists' grades of real slices). IMAGE is "
        "the sagittal T2-weighted image (or multi-echo data, as for "
        "segment). Writes <stem>_discfeatures.tsv and a JSON data dictionary.",
    )
    p.add_argument("inputs", nargs="+", type=Path, metavar="IMAGE")
    p.add_argument("--labels", type=Path, required=True, help="disc labels (a _dseg) on the grid")
    p.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    p.add_argument("--t2map", type=Path, help="T2 map on the same grid: _T2ms (ms) or _T2map (s)")
    p.add_argument("--orientation", help="axis codes overriding the affine (e.g. IPR)")
    p.add_argument(
        "--thresholds",
        type=Path,
        help="Pfirrmann grader JSON from calibrate: pfirrmann_ordinal.json (ordinal model) or "
        "pfirrmann_thresholds.json (decision walk); default: the packaged ordinal model "
        "fitted on SPIDER radiologists' grades",
    )
    p.add_argument(
        "--te", type=positive_float, nargs="+", metavar="MS", help="echo times of a 4D input"
    )
    p.set_defaults(func=commands.cmd_features)

    p = sub.add_parser(
        "calibrate",
        help="fit the Pfirrmann assistant to a lab's manual grades (cross-validated)",
        description="Fit the Pfirrmann thresholds, and an ordinal (proportional-odds) model, "
        "to manual grades, and report agreement cross-validated over participants (folds keep "
        "a participant's discs together). Writes calibration.json, pfirrmann_thresholds.json "
        "and pfirrmann_ordinal.json (for features --thresholds), cv_predictions.tsv and "
        "cv_grades.tsv (the better model's out-of-fold grades of every disc, for validate "
        "--auto).",
    )
    p.add_argument("--manual", type=Path, required=True, help="manual grades TSV or SPIDER CSV")
    p.add_argument(
        "--features", type=Path, nargs="+", required=True,
        help="feature tables (*_discfeatures.tsv) or folders holding them",
    )  # fmt: skip
    p.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    p.add_argument("--folds", type=positive_int, default=5)
    p.set_defaults(func=commands.cmd_calibrate)

    p = sub.add_parser(
        "validate",
        help="agreement of automatic grades (and masks) with manual ones",
        description="Compare automatic Pfirrmann grades with manual ones: kappa (quadratic, "
        "linear), exact and within-one agreement, Lin's concordance of the aggregated score. "
        "With masks, Dice per level; with T2 maps (*_T2ms.nii.gz, searched under --t2-maps "
        "or the automatic masks' folder), ICC(2,1) and Bland-Altman of mean disc T2 from the "
        "two masks. Masks are matched by their sub-/ses- entities and use t2quant labels.",
    )
    p.add_argument("--manual", type=Path, required=True, help="manual grades TSV or SPIDER CSV")
    p.add_argument("--auto", type=Path, required=True, help="feature table or grades TSV")
    p.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    p.add_argument("--manual-masks", type=Path, help="folder of manual *_dseg.nii.gz")
    p.add_argument("--auto-masks", type=Path, help="folder of automatic *_dseg.nii.gz")
    p.add_argument("--t2-maps", type=Path, help="folder of *_T2ms.nii.gz maps")
    p.add_argument("--manual-pattern", default="*_dseg.nii*", help="manual mask file pattern")
    p.add_argument("--auto-pattern", default="*_dseg.nii*", help="automatic mask file pattern")
    p.add_argument(
        "--participants",
        type=Path,
        help="participants table with manufacturer and field_strength_t: agreement per scanner",
    )
    p.add_argument(
        "--bootstrap",
        type=non_negative_int,
        default=2000,
        metavar="N",
        help="bootstrap resamples of patients for the 95%% intervals (default 2000; 0: none)",
    )
    p.set_defaults(func=commands.cmd_validate)


def _add_group_parsers(sub) -> None:
    from t2quant.group.stats.inference import METHODS as INFERENCE_METHODS

    p = sub.add_parser(
        "table",
        help="build the disc-level table (discs.tsv/.parquet/.json) of a processed study",
        description="One row per participant x session x level: the disc features and "
        "grades of every session under DERIVATIVES, the session's week (sessions.tsv or "
        "the label), the arm and covariates from participants.tsv, manual grades and the "
        "raters' ratings when given. A disc without a measurement, or excluded by a rater, "
        "keeps its row with a qc_reason.",
    )
    p.add_argument("bids", type=Path, metavar="BIDS_DIR")
    p.add_argument("derivatives", type=Path, metavar="DERIVATIVES", help="t2quant derivatives")
    p.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    p.add_argument("--manual-grades", type=Path, help="manual Pfirrmann grades TSV or SPIDER CSV")
    p.add_argument(
        "--ratings",
        type=Path,
        metavar="DIR",
        help="the ratings exported from the participant reports: every sub-X_desc-ratings.tsv "
        "in DIR (and its subfolders). An excluded disc keeps its row with qc_status=excluded "
        "and leaves the models; a confirmed or corrected grade becomes pfirrmann_manual; the "
        "latest rating of a disc rated twice wins. The audit: ratings_applied.tsv beside "
        "discs.tsv",
    )
    p.set_defaults(func=commands.cmd_table)

    p = sub.add_parser(
        "stats",
        help="mixed-model moderator analysis of a disc table",
        description="Fit the disc-level linear mixed model with crossed random effects for "
        "participant, level and disc (lme4: t2 ~ factor(week) * group + (1|participant) + "
        "(1|level) + (1|participant:level)) overall and within every moderator subgroup; "
        "report the between-group net difference in T2 change at each follow-up week (t tests "
        "and CIs with Satterthwaite df by default), the interaction F tests, forest plots and "
        "a markdown summary.",
    )
    p.add_argument("table", type=Path, metavar="TABLE", help="discs.tsv (or .csv, .parquet)")
    p.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    p.add_argument("--config", type=Path, help="stats configuration TOML (pipelines/asteroid.toml)")
    p.add_argument(
        "--moderators", nargs="+", metavar="NAME",
        help="moderators to run instead of the configuration's; 'none' for the overall model",
    )  # fmt: skip
    p.add_argument("--outcome", help="outcome column instead of the configuration's (t2_mean_ms)")
    p.add_argument(
        "--inference", choices=INFERENCE_METHODS,
        help="t/F tests: satterthwaite (lmerTest's df), kenward-roger (pbkrtest; REML only) "
        "or wald (z); instead of the configuration's [model] inference (satterthwaite)",
    )  # fmt: skip
    p.set_defaults(func=commands.cmd_stats)


def _study_options(p: argparse.ArgumentParser) -> None:
    from t2quant.synth.protocol import PRESETS

    p.add_argument(
        "--participants",
        type=positive_int,
        default=40,
        help="number of participants, split evenly into run and control (default 40)",
    )
    p.add_argument("--seed", type=int, default=0, help="study seed (default 0)")
    p.add_argument(
        "--protocol",
        choices=sorted(PRESETS),
        default="demo",
        help="acquisition preset: demo = 1.2 mm in plane, 9 slices, 10 echoes; "
        "clinical = 0.8 mm, 13 slices, 12 echoes (default demo)",
    )
    p.add_argument(
        "--snr",
        type=positive_float,
        default=80.0,
        help="signal-to-noise ratio of water at TE=0 (default 80)",
    )
    p.add_argument(
        "--jobs", type=positive_int, default=1, help="parallel worker processes (default 1)"
    )
