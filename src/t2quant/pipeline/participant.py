"""The BIDS-Apps levels: ``participant`` (Nipype workflows) and ``group`` (table, stats).

    t2quant BIDS_DIR OUT_DIR participant [--participant-label ...] [--session-label ...]
        [--work-dir DIR] [--plugin {Linear,MultiProc,SLURM,SLURMGraph,SGE,PBS}]
        [--plugin-args JSON] [--nprocs N] [--t2-method M] [--discs-from DIR] [--verbose]
    t2quant BIDS_DIR OUT_DIR group [--config TOML] [--manual-grades TSV] [--nprocs N]

Nipype is set up once, here (:func:`configure_nipype`): no version check, a short MultiProc
poll, quiet logs unless ``--verbose``, ``LOGNAME`` for the batch plugins, crash files in the
work directory.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from t2quant import __version__
from t2quant.io import write_json

__all__ = [
    "GroupSettings",
    "ParticipantSettings",
    "configure_nipype",
    "run_group",
    "run_participant",
]

BATCH_PLUGINS = ("SLURM", "SLURMGraph", "SGE", "PBS")
PLUGINS = ("Linear", "MultiProc", *BATCH_PLUGINS)


@dataclass(frozen=True)
class ParticipantSettings:
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


@dataclass(frozen=True)
class GroupSettings:
    bids_dir: Path
    output_dir: Path
    config: Path | None = None
    manual_grades: Path | None = None
    nprocs: int = 1


def configure_nipype(work_dir: Path, *, verbose: bool = False) -> None:
    """Every Nipype setting t2quant relies on, in one place (see the module docstring)."""
    os.environ.setdefault("NIPYPE_NO_ET", "1")
    if "LOGNAME" not in os.environ:
        import getpass

        os.environ["LOGNAME"] = getpass.getuser()
    from nipype import config, logging

    config.set("execution", "poll_sleep_duration", "0.01")
    config.set("execution", "crashdump_dir", str(Path(work_dir) / "crash"))
    config.set("execution", "crashfile_format", "txt")
    config.set("execution", "hash_method", "content")
    config.set("monitoring", "enabled", "false")
    level = "INFO" if verbose else "WARNING"
    for key in ("workflow_level", "interface_level", "utils_level"):
        config.set("logging", key, level)
    logging.update_logging(config)


def participants_of(bids_dir: Path, labels: tuple[str, ...]) -> list[str]:
    """Participant labels (without ``sub-``) to run; asked-for labels must exist."""
    found = sorted(p.name.removeprefix("sub-") for p in Path(bids_dir).glob("sub-*") if p.is_dir())
    if not found:
        raise ValueError(f"{bids_dir}: no sub-* folders; is this a BIDS dataset?")
    if not labels:
        return found
    asked = [label.removeprefix("sub-") for label in labels]
    missing = [a for a in asked if a not in found]
    if missing:
        raise ValueError(f"{bids_dir}: no participant(s) {missing}; found {found}")
    return asked


def write_dataset_description(output_dir: Path, bids_dir: Path) -> Path:
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


# share of a session's run time per node, from the node run times of the 40-participant demo
# (fit 2.3 s, segmentation 0.8 s, features 0.23 s, report 1.5 s per 3 sessions)
STAGE_WEIGHTS = {"fit_t2": 0.6, "seg_image": 0.01, "segment": 0.2, "features": 0.06,
                 "ds_session": 0.01, "report": 0.12}  # fmt: skip


class Progress:
    """Concise progress: a line per finished T2 map and per finished session.

    The ETA weighs the stages by their share of a session's run time (the T2 fit dominates),
    so it is useful even though the parallel plugins tend to fit every session before they
    segment any.
    """

    def __init__(self, total: int, participants: int = 1, stream=sys.stdout) -> None:
        self.total, self.stream, self.start = total, stream, time.monotonic()
        self.fits = self.sessions = 0
        self.work = 0.0
        # a report covers all of a participant's sessions
        self.report_weight = STAGE_WEIGHTS["report"] * total / max(participants, 1)

    def __call__(self, node, status: str) -> None:
        """Nipype ``status_callback``."""
        if status == "exception":
            print(f"[t2quant] failed: {node.fullname}", file=self.stream, flush=True)
        if status != "end" or node.name not in STAGE_WEIGHTS:
            return
        self.work += self.report_weight if node.name == "report" else STAGE_WEIGHTS[node.name]
        if node.name == "fit_t2":
            self.fits += 1
            self.line(f"T2 maps {self.fits}/{self.total}")
        elif node.name == "ds_session":
            self.session_finished(_where(node.fullname))

    def session_finished(self, where: str, *, count_work: bool = False) -> None:
        self.sessions += 1
        if count_work:
            self.work = float(self.sessions)
        self.line(f"sessions {self.sessions}/{self.total} ({where})")

    def line(self, what: str) -> None:
        elapsed = time.monotonic() - self.start
        left = max(self.total - self.work, 0.0)
        eta = _clock(elapsed / self.work * left) if self.work > 0 else "?"
        print(f"[t2quant] {what}, elapsed {_clock(elapsed)}, ETA {eta}", file=self.stream,
              flush=True)  # fmt: skip


def _where(fullname: str) -> str:
    """``t2quant_wf.sub_01_wf.ses_wk06_wf.ds_session`` -> ``sub-01/ses-wk06``."""
    parts = fullname.split(".")[-3:-1]
    return "/".join(p.removesuffix("_wf").replace("_", "-", 1) for p in parts)


def _clock(seconds: float) -> str:
    minutes, sec = divmod(round(seconds), 60)
    return f"{minutes}m{sec:02d}s"


def build_workflow(settings: ParticipantSettings):
    """The top workflow: one participant workflow per participant."""
    from nipype.pipeline import engine as pe

    from t2quant.pipeline.workflows import init_participant_wf

    workflow = pe.Workflow(name="t2quant_wf")
    for label in participants_of(settings.bids_dir, settings.participant_labels):
        workflow.add_nodes([
            init_participant_wf(
                bids_dir=settings.bids_dir, participant=label, output_dir=settings.output_dir,
                sessions=list(settings.session_labels) or None, method=settings.t2_method,
                discs_from=settings.discs_from, scheme=settings.discs_scheme,
                thresholds=settings.thresholds, omp_nthreads=settings.omp_nthreads,
            )
        ])  # fmt: skip
    return workflow


def session_sinks(workflow) -> list:
    """The ``ds_session`` node of every session, in workflow order."""
    return [node for node in workflow._get_all_nodes() if node.name == "ds_session"]


def expected_features(workflow) -> list[Path]:
    """Each session's feature table, where ``ds_session`` will write it."""
    paths = []
    for node in session_sinks(workflow):
        anat = Path(node.inputs.out_dir)
        paths.append(anat / f"{anat.parent.parent.name}_{anat.parent.name}_discfeatures.tsv")
    return paths


def plugin_arguments(settings: ParticipantSettings, progress: Progress) -> dict:
    args = dict(settings.plugin_args or {})
    if settings.plugin == "MultiProc":
        args.setdefault("n_procs", settings.nprocs)
    if settings.plugin in BATCH_PLUGINS:
        args.setdefault("max_jobs", settings.nprocs)
    if settings.plugin != "SLURMGraph":  # graph plugins cannot call back; see wait_for_graph
        args["status_callback"] = progress
    return args


def run_participant(settings: ParticipantSettings) -> list[Path]:
    """Run the participant level; returns every session's feature table."""
    output_dir = Path(settings.output_dir).resolve()
    work_dir = Path(settings.work_dir or output_dir.parent / "work").resolve()
    configure_nipype(work_dir, verbose=settings.verbose)
    if settings.plugin not in PLUGINS:
        raise ValueError(f"--plugin {settings.plugin}: use one of {PLUGINS}")
    if settings.plugin == "MultiProc" and settings.omp_nthreads > settings.nprocs:
        raise ValueError(
            f"--omp-nthreads {settings.omp_nthreads} exceeds --nprocs {settings.nprocs}: "
            "a fit cannot use more threads than MultiProc has processors"
        )
    workflow = build_workflow(settings)
    workflow.base_dir = str(work_dir)
    if settings.plugin in BATCH_PLUGINS:  # one squeue/qstat round per second, not per 10 ms
        workflow.config["execution"] = {"poll_sleep_duration": "1.0"}
    write_dataset_description(output_dir, settings.bids_dir)
    expected = expected_features(workflow)
    labels = participants_of(settings.bids_dir, settings.participant_labels)
    progress = Progress(len(expected), len(labels))
    print(f"[t2quant] participant level: {len(expected)} sessions, plugin {settings.plugin}, "
          f"work dir {work_dir}", flush=True)  # fmt: skip
    workflow.run(plugin=settings.plugin, plugin_args=plugin_arguments(settings, progress))
    if settings.plugin == "SLURMGraph":
        _wait_for_slurm_graph(work_dir, expected, progress)
    shown = ", ".join(f"sub-{label}.html" for label in labels[:3])
    more = f" and {len(labels) - 3} more" if len(labels) > 3 else ""
    print(f"[t2quant] reports: {shown}{more} in {output_dir}", flush=True)
    return expected


def _wait_for_slurm_graph(work_dir: Path, expected: list[Path], progress: Progress) -> None:
    from t2quant.pipeline.slurm import wait_for_graph

    def finished(path: Path) -> None:
        progress.session_finished("/".join(path.parts[-4:-2]), count_work=True)

    print("[t2quant] SLURMGraph: every job submitted; waiting for the queue", flush=True)
    wait_for_graph(
        work_dir / "t2quant_wf" / "batch" / "submit_jobs.sh", expected,
        user=os.environ["LOGNAME"], crash_dir=work_dir / "crash", on_finished=finished,
    )  # fmt: skip
    print(f"[t2quant] SLURMGraph: all {len(expected)} sessions done", flush=True)


def run_group(settings: GroupSettings) -> dict[str, Path]:
    """The disc table, the moderator stage and (with manual grades or a synthetic study's
    ground truth) the grade agreement, into ``OUT_DIR/group``."""
    from t2quant.group.stats.files import stats_to_files
    from t2quant.group.table import disc_table_to_files
    from t2quant.pfirrmann.manual import read_manual_grades

    out = Path(settings.output_dir)
    group = out / "group"
    manual = read_manual_grades(settings.manual_grades)[0] if settings.manual_grades else None
    table, paths = disc_table_to_files(settings.bids_dir, out, group, manual=manual)
    _, stats_paths = stats_to_files(paths["tsv"], group, config=settings.config,
                                    jobs=settings.nprocs)  # fmt: skip
    paths |= stats_paths
    agreement = _agreement(settings, out, group)
    if agreement:
        paths["agreement"] = agreement
    from t2quant.validation.groundtruth import write_groundtruth_check

    check = write_groundtruth_check(settings.bids_dir, out, group, config=settings.config)
    if check:
        paths["groundtruth_check"] = check
    from t2quant.reports.participant import write_group_report

    paths["report"] = write_group_report(out)
    print(f"[t2quant] group level: {len(table)} disc rows -> {group}; report {paths['report']}")
    return paths


def _agreement(settings: GroupSettings, out: Path, group: Path) -> Path | None:
    from t2quant.grading import write_true_grades
    from t2quant.validation.validate import validate_to_files

    manual = settings.manual_grades
    truth = Path(settings.bids_dir) / "derivatives" / "groundtruth" / "discs.tsv"
    if manual is None and truth.is_file():
        manual = write_true_grades(settings.bids_dir, group / "true_grades.tsv")
    if manual is None:
        return None
    validate_to_files(Path(manual), group / "discs.tsv", group)
    return group / "agreement.json"
