"""The ``t2quant`` command line."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from t2quant import __version__


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="t2quant", description="Lumbar intervertebral-disc T2 from multi-echo spin-echo MRI."
    )
    parser.add_argument("--version", action="version", version=f"t2quant {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("synth-study", help="write a synthetic BIDS study with ground truth")
    p.add_argument("out", type=Path, help="output BIDS folder")
    _study_options(p)
    p.set_defaults(func=_cmd_synth_study)

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
    p.add_argument("--n-echoes", type=_positive_int, default=12)
    p.add_argument("--esp-ms", type=float, default=10.0, help="echo spacing in ms (default 10)")
    p.add_argument("--snr", type=float, default=80.0)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_synth_real)

    p = sub.add_parser("demo", help="run every available stage on the built-in synthetic study")
    p.add_argument(
        "-o",
        "--out",
        type=Path,
        default=Path("demo-output"),
        help="output folder (default: demo-output)",
    )
    _study_options(p)
    p.set_defaults(func=_cmd_demo)
    return parser


def _study_options(p: argparse.ArgumentParser) -> None:
    from t2quant.synth.protocol import PRESETS

    p.add_argument(
        "--participants",
        type=_positive_int,
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
        type=float,
        default=80.0,
        help="signal-to-noise ratio of water at TE=0 (default 80)",
    )
    p.add_argument(
        "--jobs", type=_positive_int, default=1, help="parallel worker processes (default 1)"
    )


def _settings(args: argparse.Namespace):
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


def _cmd_synth_study(args: argparse.Namespace) -> int:
    from t2quant.synth.writer import write_synthetic_study

    start = time.perf_counter()
    discs = write_synthetic_study(args.out, _settings(args), jobs=args.jobs)
    n_sessions = discs.groupby(["participant_id", "session"]).ngroups
    print(
        f"wrote {n_sessions} sessions of {args.participants} participants to {args.out} "
        f"in {time.perf_counter() - start:.1f} s"
    )
    return 0


def _cmd_synth_real(args: argparse.Namespace) -> int:
    from t2quant.synth.protocol import Protocol
    from t2quant.synth.writer import write_real_anatomy_session

    for path in (args.t2w, args.discs):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
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


def _cmd_demo(args: argparse.Namespace) -> int:
    from t2quant.demo import run_demo

    run_demo(args.out, _settings(args), jobs=args.jobs)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileExistsError, FileNotFoundError) as exc:
        print(f"t2quant {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
