"""Thin Nipype interfaces: load, call the core of an earlier stage, save into the node's
working directory. The derivatives are copied out by :class:`DerivativesSink`, so a node's
outputs live in the Nipype cache (a rerun resumes) and the BIDS folder only ever gets whole
files."""

from __future__ import annotations

import json
import os
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

__all__ = [
    "DerivativesSink",
    "DiscFeatures",
    "FitT2",
    "ParticipantReport",
    "SegmentDiscs",
    "SegmentationImage",
]


def _stem_link(image: str, cwd: Path, stem: str) -> Path:
    """``cwd/<stem>_T2w.nii.gz`` pointing at ``image``: the stages name their outputs after
    their input's BIDS stem."""
    link = cwd / f"{stem}_T2w.nii.gz"
    if not link.exists():
        os.symlink(image, link)
    return link


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


class _FitT2Input(_ThreadsInput):
    anat_dir = Directory(exists=True, mandatory=True, desc="session anat folder with _MESE echoes")
    method = traits.Enum("epg", "loglinear", "monoexp", "monoexp_offset", "rician", usedefault=True)


class _FitT2Output(TraitedSpec):
    t2_ms = File(exists=True, desc="T2 map (ms)")
    t2_s = File(exists=True, desc="BIDS T2map (s)")
    s0 = File(exists=True)
    b1 = File(desc="fitted refocusing B1 (EPG only)")
    r2 = File(exists=True, desc="coefficient of determination")
    failure = File(exists=True, desc="failure code per voxel (0 = fitted)")
    maps = traits.List(File(exists=True), desc="every map and sidecar written")
    stem = traits.Str(desc="BIDS stem of the session (sub-X_ses-Y)")


class FitT2(_ThreadLimited):
    """Fit the T2 maps of one BIDS session (:func:`t2quant.relaxometry.files.fit_to_files`)."""

    input_spec = _FitT2Input
    output_spec = _FitT2Output

    def _compute(self, runtime):
        from t2quant.io.echoes import load_bids_session
        from t2quant.relaxometry.files import fit_to_files

        me = load_bids_session(self.inputs.anat_dir)
        _, paths = fit_to_files(
            me, runtime.cwd, method=self.inputs.method, n_threads=self.inputs.num_threads
        )
        for key in ("t2_ms", "t2_s", "s0", "r2", "failure", "b1"):
            if key in paths and paths[key].is_file():
                self._results[key] = str(paths[key])
        self._results["maps"] = sorted(str(p) for p in Path(runtime.cwd).glob(f"{me.stem}_*"))
        self._results["stem"] = me.stem
        return runtime


class _ImageInput(_ThreadsInput):
    anat_dir = Directory(exists=True, mandatory=True)
    reference = File(exists=True, mandatory=True, desc="a map on the MESE grid (the T2 map)")
    stem = traits.Str(mandatory=True)


class _ImageOutput(TraitedSpec):
    image = File(exists=True, desc="T2-weighted image on the MESE grid")
    source = traits.Str(desc="what the image was made from")


class SegmentationImage(_ThreadLimited):
    """The image to segment on the MESE grid: the session's T2w resampled onto it when there
    is one, otherwise a T2-weighted image derived from the echoes."""

    input_spec = _ImageInput
    output_spec = _ImageOutput

    def _compute(self, runtime):
        from t2quant.segmentation.sessionimage import segmentation_image

        path, source = segmentation_image(
            Path(self.inputs.anat_dir), Path(self.inputs.reference),
            Path(runtime.cwd) / f"{self.inputs.stem}_desc-segment_T2w.nii.gz",
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

        image = _stem_link(self.inputs.image, Path(runtime.cwd), self.inputs.stem)
        labels_from = None
        if isdefined(self.inputs.discs_from):
            labels_from = (self.inputs.scheme, self.inputs.discs_from)
        _, paths = segment_to_files([image], Path(runtime.cwd), labels_from=labels_from)
        for key in ("dseg", "lookup", "discs", "discs_json", "qc"):
            self._results[key] = str(paths[key])
        return runtime


class _FeaturesInput(_ThreadsInput):
    image = File(exists=True, mandatory=True)
    dseg = File(exists=True, mandatory=True)
    t2_ms = File(exists=True, mandatory=True)
    stem = traits.Str(mandatory=True)
    thresholds = File(exists=True, desc="Pfirrmann thresholds JSON (t2quant calibrate)")


class _FeaturesOutput(TraitedSpec):
    features = File(exists=True)
    dictionary = File(exists=True)


class DiscFeatures(_ThreadLimited):
    """Disc features and suggested grades (:func:`t2quant.features.files.features_to_files`)."""

    input_spec = _FeaturesInput
    output_spec = _FeaturesOutput

    def _compute(self, runtime):
        from t2quant.features.files import features_to_files

        cwd = Path(runtime.cwd)
        image = _stem_link(self.inputs.image, cwd, self.inputs.stem)
        thresholds = self.inputs.thresholds if isdefined(self.inputs.thresholds) else None
        _, paths = features_to_files(
            [image], Path(self.inputs.dseg), cwd, t2map=Path(self.inputs.t2_ms),
            thresholds=thresholds,
        )  # fmt: skip
        self._results["features"] = str(paths["features"])
        self._results["dictionary"] = str(paths["dictionary"])
        return runtime


class _SinkInput(BaseInterfaceInputSpec):
    in_files = InputMultiObject(File(exists=True), mandatory=True)
    out_dir = Directory(mandatory=True, desc="OUT/sub-X/ses-Y/anat")
    bids_dir = Directory(desc="the raw dataset, named 'raw' in the sidecars' BIDS URIs")


class _SinkOutput(TraitedSpec):
    out_files = traits.List(File(exists=True))


class DerivativesSink(SimpleInterface):
    """Copy files (and their .json sidecars) into the derivatives folder, each atomically.

    Sidecars name their sources by BIDS URIs (:func:`t2quant.io.provenance.to_bids_uris`), never
    by paths in the work directory.
    """

    input_spec = _SinkInput
    output_spec = _SinkOutput

    def _run_interface(self, runtime):
        out_dir = Path(self.inputs.out_dir)
        dataset = out_dir.parent.parent.parent
        pairs = {}
        for name in self.inputs.in_files:
            source = Path(name)
            sidecar = source.with_name(source.name.split(".")[0] + ".json")
            for path in (source, sidecar) if sidecar.exists() else (source,):
                pairs[str(path)] = out_dir / path.name
        renamed = {src: dst.relative_to(dataset).as_posix() for src, dst in pairs.items()}
        datasets = {"": dataset}
        if isdefined(self.inputs.bids_dir):
            datasets["raw"] = Path(self.inputs.bids_dir)
        for src, target in pairs.items():
            _sink_file(Path(src), target, renamed, datasets)
        written = [str(target) for target in pairs.values()]
        self._results["out_files"] = sorted(set(written))
        return runtime


class _ReportInput(_ThreadsInput):
    in_files = InputMultiObject(
        File(exists=True), mandatory=True, desc="the participant's derivatives (waited for)"
    )
    output_dir = Directory(mandatory=True, desc="the derivatives folder OUT")
    participant = traits.Str(mandatory=True, desc="label without sub-")


class _ReportOutput(TraitedSpec):
    out_report = File(exists=True, desc="OUT/sub-X.html")


class ParticipantReport(_ThreadLimited):
    """The participant's self-contained HTML report
    (:func:`t2quant.reports.participant.write_participant_reports`), written atomically to ``OUT/sub-X.html``.
    """

    input_spec = _ReportInput
    output_spec = _ReportOutput

    def _compute(self, runtime):
        from t2quant.reports.participant import write_participant_reports

        [path] = write_participant_reports(Path(self.inputs.output_dir), [self.inputs.participant])
        self._results["out_report"] = str(path)
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
