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
from dataclasses import dataclass, field
from pathlib import Path

from t2quant import __version__
from t2quant.errors import InputError, RunFailed
from t2quant.io import bids, check_writable, write_json
from t2quant.pipeline.config import BATCH_PLUGINS, PLUGINS, configure_nipype, crash_dir
from t2quant.pipeline.progress import NodeProgress, StageProgress
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
    nprocs: int = field(default_factory=lambda: available_cpus())
    omp_nthreads: int | None = None
    mem_gb: float | None = None
    t2_method: str = "epg"
    discs_from: Path | None = None
    discs_scheme: str = "project"
    thresholds: Path | None = None
    bids_filter_file: Path | None = None
    skip_bids_validation: bool = False
    stop_on_first_crash: bool = False
    reports_only: bool = False
    verbose: bool = False

    @property
    def threads_per_fit(self) -> int:
        """``--omp-nthreads``, or by default half the processors (sessions run side by side
        use cores better than threads inside one fit: measured, bench/bench_session.py)."""
        return self.omp_nthreads or max(1, self.nprocs // 2)

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
        if self.plugin == "MultiProc" and self.threads_per_fit > self.nprocs:
            raise InputError(
                f"--omp-nthreads {self.threads_per_fit} exceeds --nprocs {self.nprocs}: "
                "a fit cannot use more threads than MultiProc has processors"
            )
        if self.mem_gb is not None and not self.mem_gb > 0:
            raise InputError(f"--mem {self.mem_gb}: give the memory budget in GB, > 0")
        if not Path(self.bids_dir).is_dir():
            raise InputError(f"{self.bids_dir}: no such BIDS folder")


def available_cpus() -> int:
    """The processors this process may run on (the affinity mask, e.g. a Slurm allocation)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


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
            "HowToAcknowledge": "Cite t2quant and the methods it ran: logs/CITATION.md holds "
            "the methods text of this run and logs/CITATION.bib its references.",
            "DatasetLinks": {"raw": Path(bids_dir).resolve().as_uri()},
        },
        Path(output_dir) / "dataset_description.json",
    )


def plan(settings: ParticipantSettings) -> dict[str, list[bids.SessionInputs]]:
    """Every session the run will process, by participant label (files collected once)."""
    filters = bids.read_filters(settings.bids_filter_file) if settings.bids_filter_file else {}
    labels = bids.participant_labels(settings.bids_dir, settings.participant_labels)
    wanted = filters.get("mese", {}).get("subject")
    if wanted is not None:
        allowed = {str(w) for w in (wanted if isinstance(wanted, list) else [wanted])}
        labels = [label for label in labels if label in allowed]
    if not labels:
        raise InputError(f"{settings.bids_filter_file}: the filters leave no participant")
    return {label: bids.collect_data(settings.bids_dir, label, settings.session_labels, filters)
            for label in labels}  # fmt: skip


def build_workflow(settings: ParticipantSettings, sessions: dict[str, list]):
    """The top workflow ``t2quant_wf``: one participant workflow per participant."""
    from nipype.pipeline import engine as pe

    from t2quant.pipeline.workflows import init_participant_wf

    filters = bids.read_filters(settings.bids_filter_file) if settings.bids_filter_file else None
    workflow = pe.Workflow(name="t2quant_wf")
    for label, collected in sessions.items():
        workflow.add_nodes([
            init_participant_wf(
                bids_dir=settings.bids_dir, participant=label, output_dir=settings.output_dir,
                sessions=[s.session for s in collected], method=settings.t2_method,
                discs_from=settings.discs_from, scheme=settings.discs_scheme,
                thresholds=settings.thresholds, omp_nthreads=settings.threads_per_fit,
                filters=filters,
            )
        ])  # fmt: skip
    return workflow


def expected_features(settings: ParticipantSettings, sessions: dict[str, list]) -> list[Path]:
    """Where each session's feature table will be written."""
    return [
        bids.derivative_anat(settings.output_dir, s.participant, s.session)
        / bids.feature_names(s.stem)["features"]
        for collected in sessions.values()
        for s in collected
    ]


def plugin_arguments(settings: ParticipantSettings, callback) -> dict:
    """``plugin_args`` for ``workflow.run``."""
    args = dict(settings.plugin_args or {})
    if settings.plugin == "MultiProc":
        args.setdefault("n_procs", settings.nprocs)
        if settings.mem_gb is not None:
            args.setdefault("memory_gb", settings.mem_gb)
    if settings.plugin in BATCH_PLUGINS:
        args.setdefault("max_jobs", settings.nprocs)
    if settings.plugin != "SLURMGraph":  # graph plugins cannot call back; see wait_for_graph
        args["status_callback"] = callback
    return args


def run_participant(
    settings: ParticipantSettings, display: StageProgress | None = None
) -> list[Path]:
    """Run the participant level; returns every session's feature table. ``display``: the
    progress display to add the stages to (default: a new one; none with ``verbose``).

    Raises
    ------
    InputError
        Bad settings or input, a dataset the checks refuse, or a work folder held by another
        run (nothing was run).
    RunFailed
        Some nodes failed; one line each. The rest of the run completed.
    """
    from t2quant.pipeline.preflight import preflight
    from t2quant.pipeline.workdir import hold_work_dir, prune_damaged_cache

    settings.check()
    sessions = plan(settings)
    if settings.reports_only:
        return rebuild_reports(settings, sessions)
    flat = [s for collected in sessions.values() for s in collected]
    for note in preflight(settings.bids_dir, flat, validate=not settings.skip_bids_validation):
        print(f"[t2quant] {note}", flush=True)
    work_dir = settings.resolved_work_dir()
    raw = sum(f.stat().st_size for s in flat for f in (*s.echoes, *([s.t2w] if s.t2w else [])))
    check_writable(settings.output_dir, need_bytes=2 * raw, what="output folder")
    check_writable(work_dir, need_bytes=2 * raw, what="work folder")
    with hold_work_dir(work_dir):
        configure_nipype(work_dir, verbose=settings.verbose,
                         stop_on_first_crash=settings.stop_on_first_crash)  # fmt: skip
        pruned = prune_damaged_cache(work_dir)
        if pruned:
            print(f"[t2quant] {len(pruned)} damaged cache folder(s) removed; they are rerun",
                  flush=True)  # fmt: skip
        if display is not None or settings.verbose:
            return _run(settings, work_dir, sessions, display)
        with StageProgress() as own:
            return _run(settings, work_dir, sessions, own)


def rebuild_reports(settings: ParticipantSettings, sessions: dict[str, list]) -> list[Path]:
    """``--reports-only``: each participant's report again, from the derivatives in OUT."""
    from t2quant.reports.participant import write_participant_report

    out = Path(settings.output_dir).resolve()
    written = []
    for label in sessions:
        files = [p for d in bids.find_session_dirs(out, label) for p in sorted(d.iterdir())]
        if not files:
            raise InputError(f"{out}: no derivatives of sub-{label}; run the participant level")
        written.append(write_participant_report(out / bids.report_name(label), label, files))
    print(f"[t2quant] {len(written)} report(s) rebuilt in {out}", flush=True)
    return written


def _run(
    settings: ParticipantSettings, work_dir: Path, sessions: dict[str, list],
    display: StageProgress | None,
) -> list[Path]:  # fmt: skip
    from t2quant.pipeline.failures import failures_since, raise_failures
    from t2quant.pipeline.plugins import guarded_callback, make_plugin

    workflow = build_workflow(settings, sessions)
    workflow.base_dir = str(work_dir)
    if settings.plugin in BATCH_PLUGINS:  # one squeue/qstat round per second, not per 10 ms
        workflow.config["execution"] = {"poll_sleep_duration": "1.0"}
    write_dataset_description(settings.output_dir, settings.bids_dir)
    write_methods(settings)
    expected = expected_features(settings, sessions)
    labels = list(sessions)
    say = display.line if display is not None else _print
    say(f"participant level: {len(expected)} sessions of {len(labels)} participants, plugin "
        f"{settings.plugin}, work dir {work_dir}")  # fmt: skip
    callback_errors: list = []
    progress = NodeProgress(display, len(expected), len(labels)) if display else None
    callback = guarded_callback(progress or (lambda node, status: None), callback_errors)
    args = plugin_arguments(settings, callback)
    start = time.time()
    try:
        workflow.run(plugin=make_plugin(settings.plugin, args), plugin_args=args)
        if settings.plugin == "SLURMGraph":
            _wait_for_slurm_graph(work_dir, expected, display)
    except Exception:
        failures = failures_since(crash_dir(work_dir), start)
        if not failures or callback_errors:
            raise  # not a node's failure: a bug, keep the traceback
        _reports_with_failures(settings, failures)
        raise_failures(failures, verbose=settings.verbose)
    out = Path(settings.output_dir).resolve()
    shown = ", ".join(bids.report_name(label) for label in labels[:3])
    more = f" and {len(labels) - 3} more" if len(labels) > 3 else ""
    say(f"reports: {shown}{more} in {out}; methods text in {out / 'logs' / 'CITATION.md'}")
    return expected


def _print(text: str) -> None:
    print(f"[t2quant] {text}", flush=True)


def write_methods(settings: ParticipantSettings) -> dict[str, Path]:
    """``OUT/logs/CITATION.*`` for what this run does (t2quant.reports.citation)."""
    from t2quant.relaxometry.fit import DEFAULT_T1_MS
    from t2quant.reports.citation import write_citation
    from t2quant.segmentation.network import weights_sha256

    participant = {
        "t2_method": settings.t2_method,
        "t1_ms": DEFAULT_T1_MS,
        "segmentation": "t2quant learned segmenter (a 2D U-Net trained on synthetic phantom "
        "images and fine-tuned on three real volumes with manual disc masks, run with "
        "onnxruntime; discs named upward from the sacrum; weights "
        f"SHA-256 {weights_sha256()[:12]}, described in the model card "
        "docs/segmentation_model_card.md)",
        "discs_from": str(settings.discs_from) if settings.discs_from else None,
        "discs_scheme": settings.discs_scheme,
        "thresholds": str(settings.thresholds) if settings.thresholds else None,
    }
    return write_citation(Path(settings.output_dir) / "logs", {"participant": participant})


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


def _wait_for_slurm_graph(
    work_dir: Path, expected: list[Path], display: StageProgress | None
) -> None:
    from t2quant.pipeline.slurm import wait_for_graph

    def finished(path: Path) -> None:
        if display is not None:  # a session's feature table means its fit, segmentation too
            for key in ("fit", "segment", "features"):
                display.advance(key)

    say = display.line if display is not None else _print
    say("SLURMGraph: every job submitted; waiting for the queue")
    wait_for_graph(
        work_dir / "t2quant_wf" / "batch" / "submit_jobs.sh", expected,
        user=os.environ["LOGNAME"], crash_dir=crash_dir(work_dir), on_finished=finished,
    )  # fmt: skip
    say(f"SLURMGraph: all {len(expected)} sessions done")


def print_failures(error: RunFailed, stream=None) -> None:
    """One line per failure (and the tracebacks when the run was verbose) on ``stream``
    (default standard error)."""
    stream = stream or sys.stderr
    for line in error.details or error.lines:
        print(f"t2quant: failed: {line}", file=stream)
