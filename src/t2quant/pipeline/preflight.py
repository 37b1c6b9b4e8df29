"""Checks of the input dataset before anything is built: the BIDS validator, then t2quant's own.

:func:`run_bids_validator` runs the official BIDS validator (``bids-validator-deno`` from
PyPI, the Deno build of bids-standard/bids-validator; offline, no server) and returns its
errors in short form, one line per issue code with up to three files. Warnings are counted,
not printed.

:func:`check_sessions` applies what the validator cannot know: every session has a MESE
series of at least two echoes numbered 1..n, every echo's sidecar states ``EchoTime`` as a
number of seconds that increases with the echo number, and the slices are sagittal.

Both are skipped with ``--skip-bids-validation``; a session that then fails in the workflow is
reported there.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from t2quant.errors import InputError
from t2quant.io import bids

__all__ = ["Problems", "check_sessions", "preflight", "run_bids_validator"]

VALIDATOR_TIMEOUT_S = 600


@dataclass(frozen=True)
class Problems:
    """What the checks found: errors stop the run; notes are printed and the run goes on."""

    errors: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def run_bids_validator(bids_dir: Path) -> Problems:
    """The BIDS validator's errors (one line per code) and a count of its warnings."""
    cmd = [sys.executable, "-c", "from bids_validator_deno import cli; cli()",
           str(bids_dir), "--format", "json", "--ignoreNiftiHeaders"]  # fmt: skip
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=VALIDATOR_TIMEOUT_S,
                              check=False)  # fmt: skip
        report = json.loads(done.stdout)
    except (OSError, subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
        raise InputError(
            f"{bids_dir}: the BIDS validator did not run ({type(exc).__name__}: {exc}); "
            "reinstall t2quant (it needs the bids-validator-deno package) or pass "
            "--skip-bids-validation"
        ) from None
    issues = report.get("issues", {}).get("issues", [])
    errors = [i for i in issues if i.get("severity") == "error"]
    kinds = Counter(str(i.get("code", "?")) for i in issues if i.get("severity") == "warning")
    note = f"BIDS validator: {len(errors)} error(s), {kinds.total()} warning(s)"
    if kinds:
        top = ", ".join(f"{code} x{n}" for code, n in kinds.most_common(3))
        note += f" of {len(kinds)} kind(s) ({top}{', ...' if len(kinds) > 3 else ''})"
    return Problems(tuple(_short(errors, report)), (note,))


def _short(errors: list[dict], report: dict) -> list[str]:
    """One line per error code: the code, its message, up to three files."""
    messages = report.get("issues", {}).get("codeMessages", {})
    messages = messages if isinstance(messages, dict) else {}
    by_code: dict[str, list[str]] = {}
    for issue in errors:
        by_code.setdefault(str(issue.get("code", "?")), []).append(
            str(issue.get("location") or "the dataset")
        )
    lines = []
    for code, where in by_code.items():
        message = str(messages.get(code) or "").strip().splitlines()
        first = f": {message[0]}" if message else ""
        unique = list(dict.fromkeys(where))
        shown = ", ".join(unique[:3]) + (f" and {len(unique) - 3} more" if len(unique) > 3 else "")
        lines.append(f"BIDS validator {code}{first} [{shown}]")
    return lines


def check_sessions(sessions: list[bids.SessionInputs]) -> Problems:
    """t2quant's own checks of every session's MESE series (see the module docstring)."""
    errors: list[str] = []
    counts = Counter()
    for s in sessions:
        problem = _session_problem(s)
        if problem:
            errors.append(f"{s.anat_dir}: {problem}")
        else:
            counts[len(s.echoes)] += 1
    notes = []
    if len(counts) > 1:
        shown = ", ".join(f"{n} echoes in {k} session(s)" for n, k in sorted(counts.items()))
        notes.append(f"the sessions differ in their echo trains ({shown}); each is fitted as it is")
    return Problems(tuple(errors), tuple(notes))


def _session_problem(s: bids.SessionInputs) -> str | None:
    numbers = [bids.echo_number(p) for p in s.echoes]
    if numbers != list(range(1, len(numbers) + 1)):
        return f"echo entities {numbers} are not 1..{len(numbers)}; an echo is missing"
    if len(numbers) < 2:
        return "a single echo; T2 needs at least two"
    try:
        from t2quant.io.echoes import _sidecar_te_ms

        te = [_sidecar_te_ms(p) for p in s.echoes]
    except InputError as exc:
        return str(exc)
    if np.any(np.diff(te) <= 0):
        return f"EchoTime does not increase with the echo number ({[round(t, 3) for t in te]} ms)"
    return _orientation_problem(s.echoes[0])


def _orientation_problem(path: Path) -> str | None:
    """The slice axis (the largest voxel size) of a sagittal series runs left-right."""
    try:
        img = nib.load(str(path))
    except Exception:  # the reader names what is wrong with the file when the fit reads it
        return f"{path.name}: cannot read its NIfTI header"
    if len(img.shape) < 3 or img.shape[2] == 0:
        return None
    zooms = np.asarray(img.header.get_zooms()[:3], dtype=float)
    if np.allclose(zooms, zooms[0], rtol=0.05):
        return None  # isotropic: the slice axis cannot be told from the voxel size
    axis = int(np.argmax(zooms))
    code = nib.aff2axcodes(img.affine)[axis]
    if code not in ("L", "R"):
        plane = "axial" if code in ("S", "I") else "coronal"
        return (
            f"{path.name}: the slices are {plane} (slice axis toward {code}); t2quant needs a "
            "sagittal MESE series. If the header is wrong, fix it"
        )
    return None


def preflight(bids_dir: Path, sessions: list[bids.SessionInputs], *, validate: bool) -> list[str]:
    """Run the checks; returns the notes to print.

    Raises
    ------
    InputError
        With every error found, one per line, and how to skip the checks.
    """
    if not validate:
        return []
    found = [run_bids_validator(bids_dir), check_sessions(sessions)]
    errors = [e for p in found for e in p.errors]
    notes = [n for p in found for n in p.notes]
    if errors:
        lines = "\n  ".join(errors)
        raise InputError(
            f"{bids_dir}: {len(errors)} problem(s) in the input dataset; fix them, or pass "
            f"--skip-bids-validation to run anyway:\n  {lines}"
        )
    return notes
