"""Nipype workflows: T2 maps, discs, features, a session, a participant.

Every factory is ``init_<name>_wf(*, ..., name=...)`` with an ``inputnode`` and an
``outputnode``; every node is named after its variable. The nodes are the thin interfaces of
:mod:`t2quant.pipeline.interfaces`; the numeric work is in the cores of the earlier stages.
"""

from __future__ import annotations

from pathlib import Path

from nipype.interfaces.utility import IdentityInterface, Merge
from nipype.pipeline import engine as pe

from t2quant.pipeline.interfaces import (
    DerivativesSink,
    DiscFeatures,
    FitT2,
    ParticipantReport,
    SegmentationImage,
    SegmentDiscs,
)

__all__ = [
    "init_disc_features_wf",
    "init_discs_wf",
    "init_participant_wf",
    "init_session_wf",
    "init_t2map_wf",
]

MAP_OUTPUTS = ("t2_ms", "t2_s", "s0", "b1", "r2", "failure")


def init_t2map_wf(
    *, method: str = "epg", omp_nthreads: int = 1, name: str = "t2map_wf"
) -> pe.Workflow:
    """Fit T2 maps with ``omp_nthreads`` threads (the node reserves that many processors).

    Inputs: ``anat_dir``. Outputs: the maps, ``maps`` (every file), ``stem``.
    """
    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(IdentityInterface(fields=["anat_dir"]), name="inputnode")
    outputnode = pe.Node(
        IdentityInterface(fields=[*MAP_OUTPUTS, "maps", "stem"]), name="outputnode"
    )
    fit_t2 = pe.Node(FitT2(method=method, num_threads=omp_nthreads), name="fit_t2",
                     n_procs=omp_nthreads)  # fmt: skip
    workflow.connect([
        (inputnode, fit_t2, [("anat_dir", "anat_dir")]),
        (fit_t2, outputnode, [(k, k) for k in (*MAP_OUTPUTS, "maps", "stem")]),
    ])  # fmt: skip
    return workflow


def init_discs_wf(
    *, discs_from: Path | None = None, scheme: str = "project", name: str = "discs_wf"
) -> pe.Workflow:
    """Segment and name the discs on the MESE grid, or import ``discs_from`` (a mask file).

    Inputs: ``anat_dir``, ``reference`` (a map on the MESE grid), ``stem``.
    Outputs: ``image`` (what was segmented), ``dseg``, ``lookup``, ``discs``, ``discs_json``,
    ``qc``.
    """
    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(IdentityInterface(fields=["anat_dir", "reference", "stem"]),
                        name="inputnode")  # fmt: skip
    fields = ["image", "dseg", "lookup", "discs", "discs_json", "qc"]
    outputnode = pe.Node(IdentityInterface(fields=fields), name="outputnode")
    seg_image = pe.Node(SegmentationImage(), name="seg_image")
    segment = pe.Node(SegmentDiscs(scheme=scheme), name="segment")
    if discs_from is not None:
        segment.inputs.discs_from = str(discs_from)
    workflow.connect([
        (inputnode, seg_image, [("anat_dir", "anat_dir"), ("reference", "reference"),
                                ("stem", "stem")]),
        (inputnode, segment, [("stem", "stem")]),
        (seg_image, segment, [("image", "image")]),
        (seg_image, outputnode, [("image", "image")]),
        (segment, outputnode, [(k, k) for k in fields[1:]]),
    ])  # fmt: skip
    return workflow


def init_disc_features_wf(
    *, thresholds: Path | None = None, name: str = "disc_features_wf"
) -> pe.Workflow:
    """Disc features and suggested grades.

    Inputs: ``image``, ``dseg``, ``t2_ms``, ``stem``. Outputs: ``features``, ``dictionary``.
    """
    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(IdentityInterface(fields=["image", "dseg", "t2_ms", "stem"]),
                        name="inputnode")  # fmt: skip
    outputnode = pe.Node(IdentityInterface(fields=["features", "dictionary"]), name="outputnode")
    features = pe.Node(DiscFeatures(), name="features")
    if thresholds is not None:
        features.inputs.thresholds = str(thresholds)
    workflow.connect([
        (inputnode, features, [("image", "image"), ("dseg", "dseg"), ("t2_ms", "t2_ms"),
                               ("stem", "stem")]),
        (features, outputnode, [("features", "features"), ("dictionary", "dictionary")]),
    ])  # fmt: skip
    return workflow


def init_session_wf(
    *,
    anat_dir: Path,
    output_dir: Path,
    method: str = "epg",
    discs_from: Path | None = None,
    scheme: str = "project",
    thresholds: Path | None = None,
    omp_nthreads: int = 1,
    name: str = "session_wf",
) -> pe.Workflow:
    """One session from its echoes to derivatives in ``output_dir/sub-X/ses-Y/anat``.

    Outputs: ``features`` (the session's feature table) and ``out_files`` (everything written).
    """
    anat_dir = Path(anat_dir).resolve()
    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(IdentityInterface(fields=["anat_dir"]), name="inputnode")
    inputnode.inputs.anat_dir = str(anat_dir)
    outputnode = pe.Node(IdentityInterface(fields=["features", "out_files"]), name="outputnode")
    t2map_wf = init_t2map_wf(method=method, omp_nthreads=omp_nthreads)
    discs_wf = init_discs_wf(discs_from=discs_from, scheme=scheme)
    disc_features_wf = init_disc_features_wf(thresholds=thresholds)
    collect = pe.Node(Merge(8, ravel_inputs=True), name="collect", run_without_submitting=True)
    ds_session = pe.Node(DerivativesSink(), name="ds_session", run_without_submitting=True)
    ds_session.inputs.bids_dir = str(anat_dir.parent.parent.parent)
    ds_session.inputs.out_dir = str(
        Path(output_dir).resolve() / anat_dir.parent.parent.name / anat_dir.parent.name / "anat"
    )
    workflow.connect([
        (inputnode, t2map_wf, [("anat_dir", "inputnode.anat_dir")]),
        (inputnode, discs_wf, [("anat_dir", "inputnode.anat_dir")]),
        (t2map_wf, discs_wf, [("outputnode.t2_ms", "inputnode.reference"),
                              ("outputnode.stem", "inputnode.stem")]),
        (t2map_wf, disc_features_wf, [("outputnode.t2_ms", "inputnode.t2_ms"),
                                      ("outputnode.stem", "inputnode.stem")]),
        (discs_wf, disc_features_wf, [("outputnode.image", "inputnode.image"),
                                      ("outputnode.dseg", "inputnode.dseg")]),
        (t2map_wf, collect, [("outputnode.maps", "in1")]),
        (discs_wf, collect, [("outputnode.dseg", "in2"), ("outputnode.lookup", "in3"),
                             ("outputnode.discs", "in4"), ("outputnode.discs_json", "in5"),
                             ("outputnode.qc", "in6")]),
        (disc_features_wf, collect, [("outputnode.features", "in7"),
                                     ("outputnode.dictionary", "in8")]),
        (collect, ds_session, [("out", "in_files")]),
        (disc_features_wf, outputnode, [("outputnode.features", "features")]),
        (ds_session, outputnode, [("out_files", "out_files")]),
    ])  # fmt: skip
    return workflow


def init_participant_wf(
    *,
    bids_dir: Path,
    participant: str,
    output_dir: Path,
    sessions: list[str] | None = None,
    method: str = "epg",
    discs_from: Path | None = None,
    scheme: str = "project",
    thresholds: Path | None = None,
    omp_nthreads: int = 1,
    name: str | None = None,
) -> pe.Workflow:
    """Every session (or the ``sessions`` given, labels without ``ses-``) of one participant,
    then the participant's HTML report ``output_dir/sub-X.html``.

    ``discs_from``: a folder searched for each session's ``sub-X_ses-Y*_dseg.nii*``.
    Outputs: ``report``, ``out_files`` (every derivative written).
    """
    label = participant.removeprefix("sub-")
    sub_dir = Path(bids_dir) / f"sub-{label}"
    anat_dirs = sorted(p for p in sub_dir.glob("ses-*/anat") if p.is_dir())
    if sessions:
        anat_dirs = [a for a in anat_dirs if a.parent.name.removeprefix("ses-") in sessions]
    if not anat_dirs:
        raise ValueError(f"{sub_dir}: no ses-*/anat folders (sessions asked: {sessions or 'all'})")
    workflow = pe.Workflow(name=name or f"sub_{label}_wf")
    outputnode = pe.Node(IdentityInterface(fields=["report", "out_files"]), name="outputnode")
    gather = pe.Node(Merge(len(anat_dirs), ravel_inputs=True), name="gather",
                     run_without_submitting=True)  # fmt: skip
    report = pe.Node(
        ParticipantReport(output_dir=str(Path(output_dir).resolve()), participant=label),
        name="report",
    )
    for i, anat in enumerate(anat_dirs, start=1):
        ses = anat.parent.name.removeprefix("ses-")
        mask = _find_mask(discs_from, f"sub-{label}", ses) if discs_from else None
        session_wf = init_session_wf(
            anat_dir=anat, output_dir=output_dir, method=method, discs_from=mask, scheme=scheme,
            thresholds=thresholds, omp_nthreads=omp_nthreads, name=f"ses_{ses}_wf",
        )  # fmt: skip
        workflow.connect(session_wf, "outputnode.out_files", gather, f"in{i}")
    workflow.connect([
        (gather, report, [("out", "in_files")]),
        (gather, outputnode, [("out", "out_files")]),
        (report, outputnode, [("out_report", "report")]),
    ])  # fmt: skip
    return workflow


def _find_mask(folder: Path, sub: str, ses: str) -> Path:
    hits = sorted(Path(folder).rglob(f"{sub}_ses-{ses}*_dseg.nii*"))
    if not hits:
        raise ValueError(f"--discs-from {folder}: no {sub}_ses-{ses}*_dseg.nii* found")
    return hits[0]
