"""Nipype workflows: T2 maps, discs, features, a session, a participant.

Every factory is ``init_<name>_wf(*, ..., name=...)`` with an ``inputnode`` and an
``outputnode``; every node is named after its variable. The nodes are the thin interfaces of
:mod:`t2quant.pipeline.interfaces`; the numeric work is in the cores of the earlier stages.
A session's inputs are collected once (:func:`t2quant.io.bids.collect_data`) and passed as
files, so Nipype's content hash sees every byte that matters.

The graph of one participant::

    inputnode(echoes, sidecars, t2w) -> t2map_wf.fit_t2 ----------------> ds_session
                     |                        | t2_ms                       ^
                     +-> discs_wf.seg_image <-+-> discs_wf.segment ---------+
                                 | image             | dseg, discs          |
                                 +-----> disc_features_wf.features ---------+
    ds_session (every session) -> report -> ds_report
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from nipype.interfaces.utility import IdentityInterface, Merge
from nipype.pipeline import engine as pe

from t2quant.io import bids
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
SEGMENTATION_OUTPUTS = ("dseg", "lookup", "discs", "discs_json", "qc")


#: Resident memory of a node's process (GB): a fixed cost (Python, NumPy, Nipype) plus a
#: multiple of the session's echo data as float32. From the peak memory of one
#: 256 x 256 x 16 x 10-echo session (bench/bench_session.py: 776 MiB with the EPG fit).
MEMORY_MODEL = {"fit_t2": (0.3, 12.0), "segment": (0.3, 3.0), "features": (0.3, 2.0),
                "report": (0.4, 3.0)}  # fmt: skip


def estimate_memory_gb(session: bids.SessionInputs) -> dict[str, float]:
    """Each node's estimated memory for ``session`` (GB), for MultiProc's ``--mem`` budget."""
    import nibabel as nib

    try:
        shape = nib.load(str(session.echoes[0])).shape
        voxels = int(np.prod(shape[:3]))
    except Exception:  # an unreadable echo fails in the fit, which reports it
        voxels = 0
    data_gb = voxels * len(session.echoes) * 4 / 1e9
    return {node: round(base + factor * data_gb, 2) for node, (base, factor) in
            MEMORY_MODEL.items()}  # fmt: skip


def init_t2map_wf(
    *, method: str = "epg", omp_nthreads: int = 1, mem_gb: float = 1.0, name: str = "t2map_wf"
) -> pe.Workflow:
    """Fit the T2 maps of one session with ``omp_nthreads`` threads (the node reserves that
    many processors).

    Inputs
    ------
    echoes
        The session's ``*_echo-<n>_MESE`` NIfTI files.
    sidecars
        Their JSON sidecars (``EchoTime`` in s).
    stem
        The session's BIDS stem (``sub-X_ses-Y``).

    Outputs
    -------
    t2_ms, t2_s, s0, b1, r2, failure
        The maps (T2 in ms and, BIDS, in s; S0; B1 for EPG; R²; failure codes).
    maps
        Every map and sidecar written.
    """
    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(IdentityInterface(fields=["echoes", "sidecars", "stem"]),
                        name="inputnode")  # fmt: skip
    outputnode = pe.Node(IdentityInterface(fields=[*MAP_OUTPUTS, "maps"]), name="outputnode")
    fit_t2 = pe.Node(FitT2(method=method, num_threads=omp_nthreads), name="fit_t2",
                     n_procs=omp_nthreads, mem_gb=mem_gb)  # fmt: skip
    workflow.connect([
        (inputnode, fit_t2, [("echoes", "echoes"), ("sidecars", "sidecars"), ("stem", "stem")]),
        (fit_t2, outputnode, [(k, k) for k in (*MAP_OUTPUTS, "maps")]),
    ])  # fmt: skip
    return workflow


def init_discs_wf(
    *,
    discs_from: Path | None = None,
    scheme: str = "project",
    mem_gb: float = 0.5,
    name: str = "discs_wf",
) -> pe.Workflow:
    """Segment and name the discs on the MESE grid, or import ``discs_from`` (a mask file in
    the ``scheme`` labels).

    Inputs
    ------
    echoes, sidecars
        The session's echoes (the image is derived from them when there is no T2w).
    t2w
        The session's T2-weighted image (optional).
    reference
        A map on the MESE grid (the T2 map), the grid everything is measured on.
    stem
        The session's BIDS stem.

    Outputs
    -------
    image
        What was segmented, on the MESE grid.
    dseg, lookup, discs, discs_json, qc
        Labels, BIDS lookup, per-level record, flags and warnings, QC picture.
    """
    workflow = pe.Workflow(name=name)
    fields = ["echoes", "sidecars", "t2w", "reference", "stem"]
    inputnode = pe.Node(IdentityInterface(fields=fields), name="inputnode")
    outputnode = pe.Node(IdentityInterface(fields=["image", *SEGMENTATION_OUTPUTS]),
                         name="outputnode")  # fmt: skip
    seg_image = pe.Node(SegmentationImage(), name="seg_image", mem_gb=mem_gb)
    segment = pe.Node(SegmentDiscs(scheme=scheme), name="segment", mem_gb=mem_gb)
    if discs_from is not None:
        segment.inputs.discs_from = str(discs_from)
    workflow.connect([
        (inputnode, seg_image, [(k, k) for k in fields]),
        (inputnode, segment, [("stem", "stem")]),
        (seg_image, segment, [("image", "image")]),
        (seg_image, outputnode, [("image", "image")]),
        (segment, outputnode, [(k, k) for k in SEGMENTATION_OUTPUTS]),
    ])  # fmt: skip
    return workflow


def init_disc_features_wf(
    *, thresholds: Path | None = None, mem_gb: float = 0.5, name: str = "disc_features_wf"
) -> pe.Workflow:
    """Disc features and suggested Pfirrmann grades.

    Inputs
    ------
    image, dseg
        The segmented image and its disc labels.
    discs, discs_json
        The segmentation's per-level record and flags (carried into the table).
    t2_ms
        The T2 map (ms).
    stem
        The session's BIDS stem.

    Outputs
    -------
    features
        ``<stem>_discfeatures.tsv``.
    dictionary
        Its JSON data dictionary.
    """
    workflow = pe.Workflow(name=name)
    fields = ["image", "dseg", "discs", "discs_json", "t2_ms", "stem"]
    inputnode = pe.Node(IdentityInterface(fields=fields), name="inputnode")
    outputnode = pe.Node(IdentityInterface(fields=["features", "dictionary"]), name="outputnode")
    features = pe.Node(DiscFeatures(), name="features", mem_gb=mem_gb)
    if thresholds is not None:
        features.inputs.thresholds = str(thresholds)
    workflow.connect([
        (inputnode, features, [(k, k) for k in fields]),
        (features, outputnode, [("features", "features"), ("dictionary", "dictionary")]),
    ])  # fmt: skip
    return workflow


def init_session_wf(
    *,
    session: bids.SessionInputs,
    output_dir: Path,
    bids_dir: Path,
    method: str = "epg",
    discs_from: Path | None = None,
    scheme: str = "project",
    thresholds: Path | None = None,
    omp_nthreads: int = 1,
    name: str = "session_wf",
) -> pe.Workflow:
    """One session from its echoes to derivatives in ``output_dir/sub-X/ses-Y/anat``.

    Inputs
    ------
    echoes, sidecars, t2w, stem
        Set from ``session`` (:func:`t2quant.io.bids.collect_session`).

    Outputs
    -------
    features
        The session's feature table (in the work folder).
    out_files
        Every derivative the sink wrote.
    """
    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(IdentityInterface(fields=["echoes", "sidecars", "t2w", "stem"]),
                        name="inputnode")  # fmt: skip
    inputnode.inputs.echoes = [str(p) for p in session.echoes]
    inputnode.inputs.sidecars = [str(p) for p in session.sidecars]
    if session.t2w is not None:
        inputnode.inputs.t2w = str(session.t2w)
    inputnode.inputs.stem = session.stem
    outputnode = pe.Node(IdentityInterface(fields=["features", "out_files"]), name="outputnode")
    mem = estimate_memory_gb(session)
    t2map_wf = init_t2map_wf(method=method, omp_nthreads=omp_nthreads, mem_gb=mem["fit_t2"])
    discs_wf = init_discs_wf(discs_from=discs_from, scheme=scheme, mem_gb=mem["segment"])
    disc_features_wf = init_disc_features_wf(thresholds=thresholds, mem_gb=mem["features"])
    collect = pe.Node(Merge(8, ravel_inputs=True), name="collect", run_without_submitting=True)
    ds_session = pe.Node(
        DerivativesSink(base_directory=str(Path(output_dir).resolve()),
                        participant=session.participant, session=session.session,
                        bids_dir=str(Path(bids_dir).resolve())),
        name="ds_session", run_without_submitting=True,
    )  # fmt: skip
    echo_fields = [("echoes", "inputnode.echoes"), ("sidecars", "inputnode.sidecars"),
                   ("stem", "inputnode.stem")]  # fmt: skip
    workflow.connect([
        (inputnode, t2map_wf, echo_fields),
        (inputnode, discs_wf, [*echo_fields, ("t2w", "inputnode.t2w")]),
        (inputnode, disc_features_wf, [("stem", "inputnode.stem")]),
        (t2map_wf, discs_wf, [("outputnode.t2_ms", "inputnode.reference")]),
        (t2map_wf, disc_features_wf, [("outputnode.t2_ms", "inputnode.t2_ms")]),
        (discs_wf, disc_features_wf, [("outputnode.image", "inputnode.image"),
                                      ("outputnode.dseg", "inputnode.dseg"),
                                      ("outputnode.discs", "inputnode.discs"),
                                      ("outputnode.discs_json", "inputnode.discs_json")]),
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
    filters: dict | None = None,
    name: str | None = None,
) -> pe.Workflow:
    """Every session (or the ``sessions`` given, labels without ``ses-``) of one participant,
    then the participant's HTML report ``output_dir/sub-X.html``. ``filters``: a
    ``--bids-filter-file`` (:func:`t2quant.io.bids.read_filters`).

    ``discs_from``: a folder searched for each session's ``sub-X_ses-Y*_dseg.nii*``
    (:func:`t2quant.io.bids.find_mask`).

    Outputs
    -------
    report
        ``OUT/sub-X.html``.
    out_files
        Every session derivative written.
    """
    label = participant.removeprefix("sub-")
    collected = bids.collect_data(bids_dir, label, tuple(sessions or ()), filters)
    workflow = pe.Workflow(name=name or f"sub_{label}_wf")
    outputnode = pe.Node(IdentityInterface(fields=["report", "out_files"]), name="outputnode")
    gather = pe.Node(Merge(len(collected), ravel_inputs=True), name="gather",
                     run_without_submitting=True)  # fmt: skip
    report_gb = max((estimate_memory_gb(s)["report"] for s in collected), default=0.4)
    report = pe.Node(ParticipantReport(participant=label), name="report", mem_gb=report_gb)
    ds_report = pe.Node(
        DerivativesSink(base_directory=str(Path(output_dir).resolve()), participant=label),
        name="ds_report", run_without_submitting=True,
    )  # fmt: skip
    for i, session in enumerate(collected, start=1):
        mask = bids.find_mask(discs_from, label, session.session) if discs_from else None
        session_wf = init_session_wf(
            session=session, output_dir=output_dir, bids_dir=bids_dir, method=method,
            discs_from=mask, scheme=scheme, thresholds=thresholds, omp_nthreads=omp_nthreads,
            name=f"ses_{session.session}_wf",
        )  # fmt: skip
        workflow.connect(session_wf, "outputnode.out_files", gather, f"in{i}")
    workflow.connect([
        (gather, report, [("out", "in_files")]),
        (gather, outputnode, [("out", "out_files")]),
        (report, ds_report, [("out_report", "in_files")]),
        (ds_report, outputnode, [("out_files", "report")]),
    ])  # fmt: skip
    return workflow
