"""``t2quant``: dispatch to a subcommand or to the BIDS-Apps form.

The first positional argument decides: a subcommand name (``fit``, ``segment``, ...) runs that
subcommand; anything else is the BIDS-Apps form ``BIDS_DIR OUT_DIR {participant,group}``,
whose options may come before or after it. Option values are skipped by their declared
arity, so ``t2quant --work-dir W BIDS OUT participant`` is the BIDS-Apps form.

Only :class:`t2quant.errors.InputError` becomes a one-line ``error:`` and exit code 2; a
failed pipeline node is one line per failure and exit code 1; anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from t2quant.errors import InputError

__all__ = ["SUBCOMMANDS", "main"]

SUBCOMMANDS = (
    "synth-study", "synth-real", "fit", "segment", "features", "calibrate", "validate",
    "table", "stats", "demo",
)  # fmt: skip


def first_positional(argv: Sequence[str], parser: argparse.ArgumentParser) -> str | None:
    """The first argument that is not an option or an option's value (by ``parser``'s
    option arities), or ``None``."""
    actions = parser._option_string_actions
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--":
            return argv[i + 1] if i + 1 < len(argv) else None
        if not token.startswith("-") or token == "-":
            return token
        name = token.split("=", 1)[0]
        action = actions.get(name)
        if action is None or "=" in token:
            i += 1
            continue
        nargs = action.nargs
        if nargs == 0 or isinstance(action, argparse._StoreConstAction | argparse._VersionAction):
            i += 1
        elif nargs in (None, "?"):
            i += 2
        elif isinstance(nargs, int):
            i += 1 + nargs
        else:  # "+" or "*": values run to the next option
            i += 1
            while i < len(argv) and not argv[i].startswith("-"):
                i += 1
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """The console entry point; returns the exit code."""
    from t2quant.cli.bidsapp import build_bidsapp_parser, run_bidsapp

    argv = list(sys.argv[1:] if argv is None else argv)
    first = first_positional(argv, build_bidsapp_parser())
    try:
        if first is not None and first not in SUBCOMMANDS:
            return run_bidsapp(argv)
        return _run_subcommand(argv)
    except InputError as exc:
        print(f"t2quant: error: {exc}", file=sys.stderr)
        return 2


#: Bytes a synthetic study takes per participant (demo protocol, 3 sessions): the raw study,
#: and raw + derivatives + work folder for the demo (measured on a 6-participant demo).
STUDY_BYTES_PER_PARTICIPANT = 30_000_000
DEMO_BYTES_PER_PARTICIPANT = 80_000_000


def _check_output(args: argparse.Namespace) -> None:
    """The output folder must be writable, with room for the outputs, before the work."""
    from t2quant.io import check_writable

    out = getattr(args, "out", None)
    if out is None:
        return
    if args.command == "demo":
        need = DEMO_BYTES_PER_PARTICIPANT * args.participants
    elif args.command == "synth-study":
        need = STUDY_BYTES_PER_PARTICIPANT * args.participants
    else:
        need = 2 * _input_bytes(getattr(args, "inputs", None) or [])
    check_writable(out, need_bytes=need)


def _input_bytes(paths) -> int:
    total = 0
    for path in paths:
        if not path.exists():
            continue  # the command names the missing input
        files = path.rglob("*") if path.is_dir() else [path]
        total += sum(f.stat().st_size for f in files if f.is_file())
    return total


def _run_subcommand(argv: list[str]) -> int:
    from t2quant.cli.parser import build_parser

    args = build_parser().parse_args(argv)
    try:
        _check_output(args)
        return args.func(args)
    except InputError as exc:
        print(f"t2quant {args.command}: error: {exc}", file=sys.stderr)
        return 2
