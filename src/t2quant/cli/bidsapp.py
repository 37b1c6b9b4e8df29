"""The BIDS-Apps form of the command line::

    t2quant BIDS_DIR OUT_DIR {participant,group} [options]

Options may come before or after the three positionals (``parse_intermixed_args``). An
option that takes several values (``--participant-label 01 02``) ends at the next option, so
put such options after the positionals, or end them with another option.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from t2quant import __version__
from t2quant.cli.parser import positive_float, positive_int
from t2quant.pipeline.participant import available_cpus

__all__ = ["LEVELS_OF_ANALYSIS", "build_bidsapp_parser", "run_bidsapp"]

LEVELS_OF_ANALYSIS = ("participant", "group")


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object, got {text!r}")
    return value


def build_bidsapp_parser() -> argparse.ArgumentParser:
    """The parser of the BIDS-Apps form, in fMRIPrep's argument groups."""
    from t2quant.pipeline.config import PLUGINS
    from t2quant.relaxometry.fit import METHODS

    parser = argparse.ArgumentParser(
        prog="t2quant",
        usage="t2quant BIDS_DIR OUT_DIR {participant,group} [options]",
        description="BIDS-Apps form. participant: fit T2 maps, segment, measure and grade the "
        "discs of every session (Nipype workflows) into OUT_DIR/sub-X/ses-Y/anat, with an "
        "HTML report per participant (OUT_DIR/sub-X.html), in which a rater accepts or "
        "excludes each disc, confirms or corrects its grade and exports "
        "sub-X_desc-ratings.tsv. group: the disc table, the moderator stage and, given "
        "manual grades (or a synthetic study's ground truth), their agreement, into "
        "OUT_DIR/group, with OUT_DIR/group.html; --ratings applies the raters' reviews "
        "exported from the participant reports. Options may come before or after the "
        "positionals.",
    )
    parser.add_argument("bids_dir", type=Path, metavar="BIDS_DIR", help="the raw BIDS dataset")
    parser.add_argument("output_dir", type=Path, metavar="OUT_DIR", help="derivatives folder")
    parser.add_argument("analysis_level", choices=LEVELS_OF_ANALYSIS,
                        help="participant, then group")  # fmt: skip
    parser.add_argument("--version", action="version", version=f"t2quant {__version__}")

    g = parser.add_argument_group("Options for filtering BIDS queries")
    g.add_argument(
        "--participant-label",
        nargs="+",
        default=[],
        metavar="LABEL",
        help="participants to process (with or without sub-; default: all)",
    )
    g.add_argument(
        "--session-label",
        nargs="+",
        default=[],
        metavar="LABEL",
        help="sessions to process (with or without ses-; default: all)",
    )
    g.add_argument(
        "--bids-filter-file",
        type=Path,
        metavar="JSON",
        help="pybids-style filters choosing among several series, e.g. "
        '\'{"mese": {"acquisition": "sag"}, "t2w": {"run": 1}}\' (queries mese, t2w; '
        "entities subject, session, acquisition, run, reconstruction, echo, direction, part; "
        "a value, a list, or null for absent)",
    )
    g.add_argument(
        "--skip-bids-validation",
        action="store_true",
        help="do not run the BIDS validator and t2quant's own input checks first",
    )

    g = parser.add_argument_group("Options to handle performance")
    g.add_argument(
        "--nprocs",
        "--n-cpus",
        type=positive_int,
        default=available_cpus(),
        help="processes (MultiProc), jobs in the queue (batch plugins) (default: the CPUs "
        f"available, {available_cpus()} here)",
    )
    g.add_argument(
        "--omp-nthreads",
        type=positive_int,
        default=None,
        help="threads for each T2 fit (default: half of --nprocs, at least 1; at most "
        "--nprocs under MultiProc; with a batch plugin also ask the scheduler for them, e.g. "
        "sbatch_args '-c N')",
    )
    g.add_argument(
        "--mem",
        "--mem-gb",
        dest="mem_gb",
        type=positive_float,
        metavar="GB",
        help="memory budget of MultiProc in GB; each node declares its estimated memory "
        "(default: 90%% of the machine's)",
    )
    g.add_argument(
        "--plugin",
        choices=PLUGINS,
        default="MultiProc",
        help="Nipype execution plugin (default MultiProc)",
    )
    g.add_argument(
        "--plugin-args",
        type=_json_object,
        default=None,
        metavar="JSON",
        help='Nipype plugin_args, e.g. \'{"sbatch_args": "-p debug"}\'',
    )

    g = parser.add_argument_group("Workflow configuration")
    g.add_argument(
        "--t2-method", default="epg", choices=METHODS, help="T2 fit method (default epg)"
    )
    g.add_argument(
        "--discs-from",
        type=Path,
        metavar="DIR",
        help="take each session's disc mask (sub-X_ses-Y*_dseg.nii*) from DIR "
        "instead of segmenting",
    )
    g.add_argument(
        "--discs-scheme",
        default="project",
        help="label scheme of --discs-from masks: project, spineps, spider, "
        "totalspineseg, or a .tsv mapping (default project)",
    )
    g.add_argument(
        "--thresholds",
        type=Path,
        metavar="JSON",
        help="Pfirrmann grader from t2quant calibrate (pfirrmann_ordinal.json or "
        "pfirrmann_thresholds.json); default: the packaged ordinal model",
    )

    g = parser.add_argument_group("Group level")
    g.add_argument(
        "--config",
        type=Path,
        metavar="TOML",
        help="stats configuration (default: the built-in ASTEROID set, pipelines/asteroid.toml)",
    )
    g.add_argument(
        "--manual-grades",
        type=Path,
        metavar="TSV",
        help="manual Pfirrmann grades (TSV or SPIDER CSV)",
    )
    g.add_argument(
        "--ratings",
        type=Path,
        metavar="DIR",
        help="the ratings exported from the participant reports: every sub-X_desc-ratings.tsv "
        "in DIR (and its subfolders). An excluded disc keeps its row with qc_status=excluded "
        "and leaves the models; a confirmed or corrected grade becomes pfirrmann_manual; the "
        "latest rating of a disc rated twice wins. The audit: group/ratings_applied.tsv and "
        "group.html",
    )

    g = parser.add_argument_group("Other options")
    g.add_argument(
        "--stop-on-first-crash",
        action="store_true",
        help="end the run at the first failed node (default: finish every other "
        "session, then report the failures)",
    )
    g.add_argument(
        "--reports-only",
        action="store_true",
        help="rebuild the participant reports from the derivatives in OUT_DIR "
        "without running anything",
    )
    g.add_argument(
        "-w",
        "--work-dir",
        type=Path,
        metavar="DIR",
        help="Nipype work/cache folder (default OUT_DIR/../work); a rerun resumes "
        "from it; one run at a time holds it",
    )
    g.add_argument(
        "--verbose",
        action="store_true",
        help="Nipype's own log, and the full traceback of a failed node",
    )
    return parser  # fmt: skip


def run_bidsapp(argv: Sequence[str]) -> int:
    """Parse the BIDS-Apps form and run the level; returns the exit code."""
    from t2quant.errors import RunFailed
    from t2quant.pipeline.group import GroupSettings, run_group
    from t2quant.pipeline.participant import (
        ParticipantSettings,
        print_failures,
        run_participant,
    )

    args = build_bidsapp_parser().parse_intermixed_args(argv)
    if args.analysis_level == "group":
        run_group(GroupSettings(bids_dir=args.bids_dir, output_dir=args.output_dir,
                                config=args.config, manual_grades=args.manual_grades,
                                ratings=args.ratings))  # fmt: skip
        return 0
    try:
        run_participant(ParticipantSettings(
            bids_dir=args.bids_dir, output_dir=args.output_dir,
            participant_labels=tuple(args.participant_label),
            session_labels=tuple(args.session_label), work_dir=args.work_dir,
            plugin=args.plugin, plugin_args=args.plugin_args, nprocs=args.nprocs,
            omp_nthreads=args.omp_nthreads, mem_gb=args.mem_gb, t2_method=args.t2_method,
            discs_from=args.discs_from, discs_scheme=args.discs_scheme,
            thresholds=args.thresholds, bids_filter_file=args.bids_filter_file,
            skip_bids_validation=args.skip_bids_validation,
            stop_on_first_crash=args.stop_on_first_crash, reports_only=args.reports_only,
            verbose=args.verbose,
        ))  # fmt: skip
    except RunFailed as failed:
        print_failures(failed)
        return 1
    return 0
