"""Every Nipype setting t2quant relies on, in one place.

No version check (``NIPYPE_NO_ET``), a short MultiProc poll, content hashes of every input
file, crash files as text in the work folder, ``LOGNAME`` for the batch plugins, and Nipype's
own log quiet unless ``--verbose`` (t2quant prints its own progress and one line per failure).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

__all__ = ["BATCH_PLUGINS", "PLUGINS", "configure_nipype", "crash_dir"]

BATCH_PLUGINS = ("SLURM", "SLURMGraph", "SGE", "PBS")
PLUGINS = ("Linear", "MultiProc", *BATCH_PLUGINS)


def crash_dir(work_dir: Path) -> Path:
    """Where Nipype writes the crash file of a failed node."""
    return Path(work_dir) / "crash"


def configure_nipype(
    work_dir: Path, *, verbose: bool = False, stop_on_first_crash: bool = False
) -> None:
    """Apply the settings of the module docstring (process-wide: Nipype's config is global).
    ``stop_on_first_crash``: the first failed node ends the run (the others are not waited
    for)."""
    os.environ.setdefault("NIPYPE_NO_ET", "1")
    if "LOGNAME" not in os.environ:
        import getpass

        os.environ["LOGNAME"] = getpass.getuser()
    from nipype import config
    from nipype import logging as nipype_logging

    config.set("execution", "poll_sleep_duration", "0.01")
    config.set("execution", "crashdump_dir", str(crash_dir(work_dir)))
    config.set("execution", "crashfile_format", "txt")
    config.set("execution", "hash_method", "content")
    config.set("execution", "stop_on_first_crash", str(stop_on_first_crash).lower())
    config.set("monitoring", "enabled", "false")
    level = "INFO" if verbose else "CRITICAL"
    for key in ("workflow_level", "interface_level", "utils_level"):
        config.set("logging", key, level)
    nipype_logging.update_logging(config)
    # Nipype logs each failure with its whole traceback at ERROR level; t2quant reports one
    # line per failure instead (t2quant.pipeline.failures), and the traceback with --verbose.
    for name in ("nipype.workflow", "nipype.interface", "nipype.utils"):
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.CRITICAL)
