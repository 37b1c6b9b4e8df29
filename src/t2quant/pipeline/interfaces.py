"""Thin Nipype interfaces: files in, the core of one stage, files out.

Every input that carries data is a ``File`` (or a list of them), so Nipype's content hash sees
every byte that matters: a corrected sidecar or a replaced echo reruns what depends on it,
and an unchanged rerun recomputes nothing. Every node writes only into its own working
folder; :class:`DerivativesSink` alone copies files into the derivatives, atomically, and
rewrites their sidecars' sources as BIDS URIs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    Directory,
    File,
    InputMultiObject,
    SimpleInterface,
    TraitedSpec,
    isdefined,
    traits,
)

from t2quant.relaxometry.fit import METHODS

__all__ = [
    "DerivativesSink",
    "DiscFeatures",
    "FitT2",
    "ParticipantReport",
    "SegmentDiscs",
    "SegmentationImage",
]


def _optional(value):
    return value if isdefined(value) else None


class _ThreadsInput(BaseInterfaceInputSpec):
    num_threads = traits.Int(
        1, usedefault=True, nohash=True,
        desc="BLAS/OpenMP threads (match the node's n_procs; more oversubscribes MultiProc)",
    )  # fmt: skip


class _ThreadLimited(SimpleInterface):
    """Runs ``_compute`` with the BLAS/OpenMP pools limited to ``num_threads``. Without the
    limit each MultiProc worker starts one BLAS thread per core: two demo-resolution EPG fits
    run side by side on 2 cores took 6 s each instead of 2 s."""

    def _run_interface(self, runtime):
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=self.inputs.num_threads):
            return self._compute(runtime)

    def _compute(self, runtime):
        raise NotImplementedError


class _EchoesInput(_ThreadsInput):
    echoes = InputMultiObject(
        File(exists=True), mandatory=True, desc="the session's *_echo-<n>_MESE NIfTI files"
    )
    sidecars = InputMultiObject(
        File(exists=True), desc="their JSON sidecars (hashed, so a corrected EchoTime reruns)"
    )
    stem = traits.Str(mandatory=True, desc="BIDS stem of the session (sub-X_ses-Y)")


class _FitT2Input(_EchoesInput):
    method = traits.Enum(*METHODS, usedefault=True, desc="fit method")


class _FitT2Output(TraitedSpec):
    t2_ms = File(exists=True, desc="T2 map (ms)")
    t2_s = File(exists=True, desc="BIDS T2map (s)")
    s0 = File(exists=True)
    b1 = File(desc="fitted refocusing B1 (EPG only)")
    r2 = File(exists=True, desc="coefficient of determination")
    failure = File(exists=True, desc="failure code per voxel (0 = fitted)")
    maps = traits.List(File(exists=True), desc="every map and sidecar written")


class FitT2(_ThreadLimited):
    """Fit the T2 maps of one session's echoes (:func:`t2quant.relaxometry.files.fit_to_files`)."""

    input_spec = _FitT2Input
    output_spec = _FitT2Output

    def _compute(self, runtime):
        from t2quant.io.echoes import load_bids_echoes
        from t2quant.relaxometry.files import fit_to_files

        me = load_bids_echoes(self.inputs.echoes, stem=self.inputs.stem)
        _, paths = fit_to_files(
            me, runtime.cwd, method=self.inputs.method, n_threads=self.inputs.num_threads
        )
        for key in ("t2_ms", "t2_s", "s0", "r2", "failure", "b1"):
            if key in paths and paths[key].is_file():
                self._results[key] = str(paths[key])
        self._results["maps"] = sorted(str(p) for p in Path(runtime.cwd).glob(f"{me.stem}_*"))
        return runtime


class _ImageInput(_EchoesInput):
    t2w = File(exists=True, desc="the session's T2-weighted image, if it has one")
    reference = File(exists=True, mandatory=True, desc="a map on the MESE grid (the T2 map)")


class _ImageOutput(TraitedSpec):
    image = File(exists=True, desc="T2-weighted image on the MESE grid")
    source = traits.Str(desc="what the image was made from")


class SegmentationImage(_ThreadLimited):
    """The image to segment on the MESE grid: the session's T2w resampled onto it when there
    is one, otherwise a T2-weighted image derived from the echoes."""

    input_spec = _ImageInput
    output_spec = _ImageOutput

    def _compute(self, runtime):
        from t2quant.io import bids
        from t2quant.segmentation.sessionimage import segmentation_image

        path, source = segmentation_image(
            Path(self.inputs.reference),
            Path(runtime.cwd) / bids.segmentation_image_name(self.inputs.stem),
            t2w=_optional(self.inputs.t2w), echoes=list(self.inputs.echoes),
        )  # fmt: skip
        self._results["image"] = str(path)
        self._results["source"] = source
        return runtime


class _SegmentInput(_ThreadsInput):
    image = File(exists=True, mandatory=True)
    stem = traits.Str(mandatory=True)
    discs_from = File(exists=True, desc="an external or corrected disc mask to import")
    scheme = traits.Str("project", usedefault=True, desc="label scheme of discs_from")


class _SegmentOutput(TraitedSpec):
    dseg = File(exists=True)
    lookup = File(exists=True)
    discs = File(exists=True)
    discs_json = File(exists=True)
    qc = File(exists=True)


class SegmentDiscs(_ThreadLimited):
    """Segment and name the discs (:func:`t2quant.segmentation.files.segment_to_files`),
    or import a given mask."""

    input_spec = _SegmentInput
    output_spec = _SegmentOutput

    def _compute(self, runtime):
        from t2quant.segmentation.files import segment_to_files

        labels_from = None
        if isdefined(self.inputs.discs_from):
            labels_from = (self.inputs.scheme, self.inputs.discs_from)
        _, paths = segment_to_files(
            [Path(self.inputs.image)], Path(runtime.cwd), labels_from=labels_from,
            stem=self.inputs.stem, threads=self.inputs.num_threads,
        )  # fmt: skip
        for key in ("dseg", "lookup", "discs", "discs_json", "qc"):
            self._results[key] = str(paths[key])
        return runtime


class _FeaturesInput(_ThreadsInput):
    image = File(exists=True, mandatory=True)
    dseg = File(exists=True, mandatory=True)
    discs = File(exists=True, desc="the segmentation's per-level record (_discs.tsv)")
    discs_json = File(exists=True, desc="the segmentation's flags (_discs.json)")
    t2_ms = File(exists=True, mandatory=True)
    stem = traits.Str(mandatory=True)
    thresholds = File(exists=True, desc="Pfirrmann grader JSON (t2quant calibrate)")


class _FeaturesOutput(TraitedSpec):
    features = File(exists=True)
    dictionary = File(exists=True)


class DiscFeatures(_ThreadLimited):
    """Disc features and suggested grades (:func:`t2quant.pfirrmann.files.grade_to_files`)."""

    input_spec = _FeaturesInput
    output_spec = _FeaturesOutput

    def _compute(self, runtime):
        from t2quant.pfirrmann.files import grade_to_files

        _, paths = grade_to_files(
            [Path(self.inputs.image)], Path(self.inputs.dseg), Path(runtime.cwd),
            thresholds=_optional(self.inputs.thresholds), t2map=Path(self.inputs.t2_ms),
            stem=self.inputs.stem, discs=_optional(self.inputs.discs),
            discs_json=_optional(self.inputs.discs_json),
        )  # fmt: skip
        self._results["features"] = str(paths["features"])
        self._results["dictionary"] = str(paths["dictionary"])
        return runtime


class _ReportInput(_ThreadsInput):
    in_files = InputMultiObject(
        File(exists=True), mandatory=True, desc="the participant's derivatives"
    )
    participant = traits.Str(mandatory=True, desc="label without sub-")


class _ReportOutput(TraitedSpec):
    out_report = File(exists=True, desc="sub-X.html in the node's folder")


class ParticipantReport(_ThreadLimited):
    """The participant's self-contained HTML report
    (:func:`t2quant.reports.participant.write_participant_report`), built from the
    derivatives it is given."""

    input_spec = _ReportInput
    output_spec = _ReportOutput

    def _compute(self, runtime):
        from t2quant.io import bids
        from t2quant.reports.participant import write_participant_report

        path = Path(runtime.cwd) / bids.report_name(self.inputs.participant)
        write_participant_report(
            path, self.inputs.participant, [Path(f) for f in self.inputs.in_files]
        )
        self._results["out_report"] = str(path)
        return runtime


class _SinkInput(BaseInterfaceInputSpec):
    in_files = InputMultiObject(File(exists=True), mandatory=True)
    base_directory = Directory(mandatory=True, desc="the derivatives folder OUT")
    participant = traits.Str(mandatory=True, desc="label without sub-")
    session = traits.Str("", usedefault=True, desc="label without ses-; empty: OUT itself")
    bids_dir = Directory(desc="the raw dataset, named 'raw' in the sidecars' BIDS URIs")


class _SinkOutput(TraitedSpec):
    out_files = traits.List(File(exists=True))


class DerivativesSink(SimpleInterface):
    """Copy files (and their .json sidecars) into the derivatives, each atomically: a
    session's files into ``OUT/sub-X/ses-Y/anat``, a participant's report into ``OUT``.

    The files keep the BIDS names their stage gave them (:mod:`t2quant.io.bids`); a file whose
    name does not start with the session's (or participant's) stem is refused. Sidecars name
    their sources by BIDS URIs (:func:`t2quant.io.provenance.to_bids_uris`), never by paths
    in the work folder.
    """

    input_spec = _SinkInput
    output_spec = _SinkOutput

    def _run_interface(self, runtime):
        from t2quant.io import bids

        base = Path(self.inputs.base_directory)
        participant, session = self.inputs.participant, self.inputs.session
        if session:
            out_dir = bids.derivative_anat(base, participant, session)
            stem = bids.session_stem(participant, session)
        else:
            out_dir, stem = base, f"sub-{participant}"
        pairs = {}
        for name in self.inputs.in_files:
            source = Path(name)
            if not source.name.startswith(stem):
                raise ValueError(f"{source}: not a derivative of {stem}; refusing to copy it")
            side = bids.sidecar(source)
            for path in (source, side) if side.exists() and side != source else (source,):
                pairs[str(path)] = out_dir / path.name
        renamed = {src: dst.relative_to(base).as_posix() for src, dst in pairs.items()}
        datasets = {"": base}
        if isdefined(self.inputs.bids_dir):
            datasets["raw"] = Path(self.inputs.bids_dir)
        for src, target in pairs.items():
            _sink_file(Path(src), target, renamed, datasets)
        self._results["out_files"] = sorted({str(target) for target in pairs.values()})
        return runtime


def _sink_file(source: Path, target: Path, renamed: dict, datasets: dict) -> None:
    from t2quant.io import atomic_path, write_json
    from t2quant.io.provenance import to_bids_uris

    if source.suffix == ".json":
        content = json.loads(source.read_text())
        write_json(to_bids_uris(content, renamed=renamed, datasets=datasets), target)
        return
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)
