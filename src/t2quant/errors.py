"""The project's error types.

:class:`InputError` is what bad input raises anywhere in t2quant: a file that cannot be read,
a sidecar without ``EchoTime``, echo times in the wrong unit, a configuration value of the
wrong type, a work folder already in use. Its message names the file (or option) and the fix,
in one line. The command line turns it, and only it, into ``error: <message>`` and exit code
2; any other exception is a bug and keeps its traceback.

It subclasses :class:`ValueError`, so library callers that catch ``ValueError`` keep working.
"""

from __future__ import annotations

__all__ = ["InputError", "MissingInputError", "OutputExists", "RunFailed", "WorkDirInUse"]


class InputError(ValueError):
    """Bad input, with a message that names the file or option and says how to fix it."""


class MissingInputError(InputError, FileNotFoundError):
    """A named input file or folder does not exist."""


class OutputExists(InputError, FileExistsError):
    """An output folder already holds something else (made with other settings)."""


class WorkDirInUse(InputError):
    """Another t2quant run holds the work folder."""


class RunFailed(RuntimeError):
    """Some nodes of a pipeline run failed; ``lines`` has one line per failure."""

    def __init__(self, lines: list[str], details: list[str] | None = None) -> None:
        super().__init__(f"{len(lines)} node(s) failed:\n" + "\n".join(lines))
        self.lines = list(lines)
        self.details = list(details or [])
