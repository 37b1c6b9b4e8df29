"""The BIDS-Apps ``participant`` level: every session of every participant through the Nipype
workflows, into ``OUT/sub-X/ses-Y/anat`` and ``OUT/sub-X.html``.

A run holds its work folder (:mod:`t2quant.pipeline.workdir`): a second run on it is refused,
a half-written cache from an interrupted run is pruned and recomputed. A failed node ends the
run with one line per failure (:mod:`t2quant.pipeline.failures`) after every session that
could finish has been copied out and its participant's report written, with the failures
listed in it.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from t2quant import __version__
from t2quant.errors import InputError, RunFailed
from t2quant.io import bids, check_writable, write_json
from t2quant.pipeline.config import BATCH_PLUGINS, PLUGINS, configure_nipype, crash_dir
from t2quant.pipeline.progress import Progress
from t2quant.relaxometry.fit import METHODS

__all__ = ["ParticipantSettings", "build_workflow", "run_participant"]


@dataclass(frozen=True)
class ParticipantSettings:
    """Everything the participant level is told (the command line's options)."""

    bids_dir: Path
    output_dir: Path
    participant_labels: tuple[str, ...] = ()
    session_labels: tuple[str, ...] = ()
    work_dir: Path | None = None
    plugin: str = "MultiProc"
    plugin_args: dict | None = None
    nprocs: int = 2
    omp_nthreads: int = 1
    t2_method: str = "epg"
    discs_from: Path | None = None
    discs_scheme: str = "project"
    thresholds: Path | None = None
    verbose: bool = False

    def resolved_work_dir(self) -> Path:
        """``--work-dir``, or ``OUT/../work``."""
        output_dir = Path(self.output_dir).resolve()
        return Path(self.work_dir or output_dir.parent / "work").resolve()

    def check(self) -> None:
        """Refuse settings that cannot run, before anything is built."""
        if self.plugin not in PLUGINS:
            raise InputError(f"--plugin {self.plugin}: use one of {', '.join(PLUGINS)}")
        if self.t2_method not in METHODS:
            raise InputError(f"--t2-method {self.t2_method}: use one of {', '.join(METHODS)}")
        if self.plugin == "MultiProc" and self.omp_nthreads > self.nprocs:
            raise InputError(
                f"--omp-nthreads {self.omp_nthreads} exceeds --nprocs {self.nprocs}: "
                "a fit cannot use more threads than MultiProc has processors"
            )
        if not Path(self.bids_dir).is_dir():
            raise InputError(f"{self.bids_dir}: no such BIDS folder")


def write_dataset_description(output_dir: Path, bids_dir: Path) -> Path:
    """``OUT/dataset_description.json`` of the derivatives (``DatasetLinks.raw`` -> BIDS)."""
    import nipype

    return write_json(
        {
            "Name": "t2quant derivatives",
            "BIDSVersion": "1.9.0",
            "DatasetType": "derivative",
            "GeneratedBy": [
                {
                    "Name": "t2quant",
                    "Version": __version__,
                    "CodeURL": "https://pypi.org/project/t2quant/",
                },
                {"Name": "nipype", "Version": nipype.__version__},
            ],
            "SourceDatasets": [{"URL": Path(bids_dir).resolve().as_uri()}],
            "DatasetLinks": {"raw": Path(bids_dir).resolve().as_uri()},
        },
        Path(output_dir) / "dataset_description.json",
    )


def build_workflow(settings: ParticipantSettings):
    """The top workflow ``t2quant_wf``: one participant workflow per participant."""
    from nipype.pipeline import engine as pe

    from t2quant.pipeline.workflows import init_participant_wf

    workflow = pe.Workflow(name="t2quant_wf")
    for label in bids.participant_labels(settings.bids_dir, settings.participant_labels):
        workflow.add_nodes([
            init_participant_wf(
                bids_dir=settings.bids_dir, participant=label, output_dir=settings.output_dir,
                sessions=list(settings.session_labels) or None, method=settings.t2_method,
                discs_from=settings.discs_from, scheme=settings.discs_scheme,
                thresholds=settings.thresholds, omp_nthreads=settings.omp_nthreads,
            )
        ])  # fmt: skip
    return workflow


def expected_features(settings: ParticipantSettings) -> list[Path]:
    """Where each session's feature table will be written."""
    paths = []
    for label in bids.participant_labels(settings.bids_dir, settings.participant_labels):
        for s in bids.collect_data(settings.bids_dir, label, settings.session_labels):
            anat = bids.derivative_anat(settings.output_dir, s.participant, s.session)
            paths.append(anat / bids.feature_names(s.stem)["features"])
    return paths


def plugin_arguments(settings: ParticipantSettings, callback) -> dict:
    """``plugin_args`` for ``workflow.run``."""
    args = dict(settings.plugin_args or {})
    if settings.plugin == "MultiProc":
        args.setdefault("n_procs", settings.nprocs)
    if settings.plugin in BATCH_PLUGINS:
        args.setdefault("max_jobs", settings.nprocs)
    if settings.plugin != "SLURMGraph":  # graph plugins cannot call back; see wait_for_graph
        args["status_callback"] = callback
    return args


def run_participant(settings: ParticipantSettings) -> list[Path]:
    """Run the participant level; returns every session's feature table.

    Raises
    ------
    InputError
        Bad settings or input, or a work folder held by another run (nothing was run).
    RunFailed
        Some nodes failed; one line each. The rest of the run completed.
    """
    from t2quant.pipeline.workdir import hold_work_dir, prune_damaged_cache

    settings.check()
    work_dir = settings.resolved_work_dir()
    raw = _raw_bytes(settings)
    check_writable(settings.output_dir, need_bytes=2 * raw, what="output folder")
    check_writable(work_dir, need_bytes=2 * raw, what="work folder")
    with hold_work_dir(work_dir):
        configure_nipype(work_dir, verbose=settings.verbose)
        pruned = prune_damaged_cache(work_dir)
        if pruned:
            print(f"[t2quant] {len(pruned)} damaged cache folder(s) removed; they are rerun",
                  flush=True)  # fmt: skip
        return _run(settings, work_dir)


def _raw_bytes(settings: ParticipantSettings) -> int:
    """Bytes of the raw files this run reads (its outputs and cache take about twice that
    each: measured on the demo study)."""
    total = 0
    for label in bids.participant_labels(settings.bids_dir, settings.participant_labels):
        for s in bids.collect_data(settings.bids_dir, label, settings.session_labels):
            files = [*s.echoes, *([s.t2w] if s.t2w else [])]
            total += sum(f.stat().st_size for f in files)
    return total


def _run(settings: ParticipantSettings, work_dir: Path) -> list[Path]:
    from t2quant.pipeline.failures import failures_since, raise_failures
    from t2quant.pipeline.plugins import guarded_callback, make_plugin

    workflow = build_workflow(settings)
    workflow.base_dir = str(work_dir)
    if settings.plugin in BATCH_PLUGINS:  # one squeue/qstat round per second, not per 10 ms
        workflow.config["execution"] = {"poll_sleep_duration": "1.0"}
    write_dataset_description(settings.output_dir, settings.bids_dir)
    expected = expected_features(settings)
    labels = bids.participant_labels(settings.bids_dir, settings.participant_labels)
    progress = Progress(len(expected), len(labels))
    print(f"[t2quant] participant level: {len(expected)} sessions, plugin {settings.plugin}, "
          f"work dir {work_dir}", flush=True)  # fmt: skip
    callback_errors: list = []
    args = plugin_arguments(settings, guarded_callback(progress, callback_errors))
    start = time.time()
    try:
        workflow.run(plugin=make_plugin(settings.plugin, args), plugin_args=args)
        if settings.plugin == "SLURMGraph":
            _wait_for_slurm_graph(work_dir, expected, progress)
    except Exception:
        failures = failures_since(crash_dir(work_dir), start)
        if not failures or callback_errors:
            raise  # not a node's failure: a bug, keep the traceback
        _reports_with_failures(settings, failures)
        raise_failures(failures, verbose=settings.verbose)
    shown = ", ".join(bids.report_name(label) for label in labels[:3])
    more = f" and {len(labels) - 3} more" if len(labels) > 3 else ""
    print(f"[t2quant] reports: {shown}{more} in {Path(settings.output_dir).resolve()}",
          flush=True)  # fmt: skip
    return expected


def _reports_with_failures(settings: ParticipantSettings, failures: list) -> None:
    """The report of every participant with a failed node, from what reached the
    derivatives, with its failures listed (its report node could not run)."""
    from t2quant.reports.participant import write_participant_report

    by_participant: dict[str, list[str]] = {}
    for f in failures:
        by_participant.setdefault(f.participant, []).append(f.line())
    out = Path(settings.output_dir).resolve()
    for label, lines in by_participant.items():
        if not label:
            continue
        files = [p for d in bids.find_session_dirs(out, label) for p in sorted(d.iterdir())]
        write_participant_report(out / bids.report_name(label), label, files, lines)


def _wait_for_slurm_graph(work_dir: Path, expected: list[Path], progress: Progress) -> None:
    from t2quant.pipeline.slurm import wait_for_graph

    def finished(path: Path) -> None:
        progress.session_finished("/".join(path.parts[-4:-2]), count_work=True)

    print("[t2quant] SLURMGraph: every job submitted; waiting for the queue", flush=True)
    wait_for_graph(
        work_dir / "t2quant_wf" / "batch" / "submit_jobs.sh", expected,
        user=os.environ["LOGNAME"], crash_dir=crash_dir(work_dir), on_finished=finished,
    )  # fmt: skip
    print(f"[t2quant] SLURMGraph: all {len(expected)} sessions done", flush=True)


def print_failures(error: RunFailed, stream=None) -> None:
    """One line per failure (and the tracebacks when the run was verbose) on ``stream``
    (default standard error)."""
    stream = stream or sys.stderr
    for line in error.details or error.lines:
        print(f"t2quant: failed: {line}", file=stream)
