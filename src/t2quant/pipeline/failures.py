"""Failed nodes in one line each: the session, the node, the error's own message, the crash
file. The whole traceback stays in the crash file (and is printed with ``--verbose``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from t2quant.errors import RunFailed

__all__ = ["Failure", "failures_since", "raise_failures"]

_WHERE = re.compile(r"\.sub_(?P<sub>[A-Za-z0-9]+)_wf(?:\.ses_(?P<ses>[A-Za-z0-9]+)_wf)?\.")


@dataclass(frozen=True)
class Failure:
    """One failed node."""

    node: str
    participant: str
    session: str
    message: str
    crash_file: Path
    traceback: str

    @property
    def where(self) -> str:
        """``sub-01/ses-wk06`` (or ``sub-01`` for a participant-level node)."""
        sub = f"sub-{self.participant}" if self.participant else "?"
        return f"{sub}/ses-{self.session}" if self.session else sub

    def line(self) -> str:
        """``sub-01/ses-wk06 fit_t2: <message> (crash file: <path>)``."""
        name = self.node.rsplit(".", 1)[-1]
        return f"{self.where} {name}: {self.message} (crash file: {self.crash_file})"


def read_crash_file(path: Path) -> Failure:
    """A Nipype text crash file (``crashfile_format = txt``) as a :class:`Failure`."""
    text = Path(path).read_text(errors="replace")
    node = re.search(r"^Node: (.+)$", text, flags=re.MULTILINE)
    fullname = node.group(1).strip() if node else "?"
    where = _WHERE.search(f".{fullname}.")
    trace = text[text.find("Traceback") :] if "Traceback" in text else text
    return Failure(
        node=fullname,
        participant=where["sub"] if where else "",
        session=(where["ses"] or "") if where else "",
        message=_message(trace),
        crash_file=Path(path),
        traceback=trace,
    )


def _message(trace: str) -> str:
    """The exception's own message: the last line of the traceback that names an error,
    without the module path of its type (``t2quant.errors.InputError: x`` -> ``x``)."""
    lines = [ln.strip() for ln in trace.splitlines() if ln.strip()]
    for line in reversed(lines):
        match = re.match(r"^(?:[\w.]+\.)?(\w*(?:Error|Exception|Interrupt|Exit))(?::\s*(.*))?$",
                         line)  # fmt: skip
        if match:
            kind, message = match.group(1), match.group(2) or ""
            own = kind in ("InputError", "MissingInputError")
            return message if own and message else f"{kind}: {message}".rstrip(": ")
    return lines[-1] if lines else "failed (empty crash file)"


def failures_since(crash_dir: Path, since: float) -> list[Failure]:
    """Every crash file written into ``crash_dir`` at or after ``since`` (seconds since the
    epoch), oldest first. The work folder is locked, so they are this run's."""
    files = [p for p in Path(crash_dir).glob("crash-*.txt") if p.stat().st_mtime >= since - 1]
    return [read_crash_file(p) for p in sorted(files, key=lambda p: p.stat().st_mtime)]


def raise_failures(failures: list[Failure], *, verbose: bool = False) -> None:
    """Raise :class:`~t2quant.errors.RunFailed` with one line per failure (and the
    tracebacks with ``verbose``)."""
    lines = [f.line() for f in failures]
    details = [f"{f.line()}\n{f.traceback}" for f in failures] if verbose else []
    raise RunFailed(lines, details)
