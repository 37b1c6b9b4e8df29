"""Write a synthetic study as a BIDS dataset with ground truth in ``derivatives/groundtruth``.

Layout::

    OUT/dataset_description.json, README, participants.tsv/.json
    OUT/sub-XX/sub-XX_sessions.tsv
    OUT/sub-XX/ses-YY/anat/sub-XX_ses-YY_echo-N_MESE.nii.gz (+ .json, EchoTime in s)
    OUT/sub-XX/ses-YY/anat/sub-XX_ses-YY_T2w.nii.gz (+ .json)
    OUT/derivatives/groundtruth/dataset_description.json, effects.json, study.json,
        participants_truth.tsv, discs.tsv, desc-discs_dseg.tsv, desc-tissue_dseg.tsv
    OUT/derivatives/groundtruth/sub-XX/ses-YY/anat/
        sub-XX_ses-YY_desc-true_T2map.nii.gz (s), _desc-true_PDmap, _TB1map,
        _desc-discs_dseg, _desc-tissue_dseg, _desc-truth_discs.tsv

Every file is written atomically.  A session whose ``_desc-truth_discs.tsv`` exists is
complete (that file is written last) and is skipped on a rerun, so an interrupted run
resumes where it stopped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from t2quant import __version__
from t2quant.errors import InputError, OutputExists
from t2quant.io import bids, read_tsv, save_nifti, write_json, write_tsv
from t2quant.levels import ABBREVIATIONS, LEVEL_COLORS, LEVEL_INDEX, LEVELS
from t2quant.synth.acquisition import simulate_mese, simulate_t2w
from t2quant.synth.phantom import SpinePhantom, make_spine_phantom
from t2quant.synth.protocol import DEMO, Protocol
from t2quant.synth.study import (
    SESSION_WEEKS,
    SESSIONS,
    TrueEffects,
    body_size_scale,
    disc_offsets_ms,
    draw_participants,
    fat_thickness_for_bmi,
    participant_truth,
)
from t2quant.synth.tissues import TISSUES, Tissue

BIDS_VERSION = "1.10.0"
PARTICIPANT_COLUMNS = bids.PARTICIPANT_COLUMNS


@dataclass(frozen=True)
class StudySettings:
    """Everything that determines a synthetic study (same settings -> same files)."""

    n_participants: int = 40
    seed: int = 0
    protocol: Protocol = DEMO
    snr: float = 80.0
    psf_fwhm_vox: tuple[float, float, float] = (1.0, 1.0, 1.0)
    effects: TrueEffects = field(default_factory=TrueEffects)

    def as_dict(self) -> dict:
        return asdict(self)


def write_synthetic_study(
    out: str | Path,
    settings: StudySettings = StudySettings(),
    *,
    jobs: int = 1,
    on_participant: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Simulate and write a whole study; returns the ground-truth disc table.
    ``on_participant`` is called with each participant's id once it is written.

    Raises
    ------
    OutputExists
        If ``out`` already holds a study made with different settings.
    """
    out = Path(out)
    truth_dir = out / "derivatives" / "groundtruth"
    _check_settings(truth_dir / "study.json", settings)
    participants = draw_participants(settings.n_participants, settings.seed)
    truth = participant_truth(participants, settings.effects, settings.seed)
    _write_dataset_files(out, participants, truth, settings)
    tasks = [
        (out, participants.iloc[i].to_dict(), truth.iloc[i].to_dict(), i, settings)
        for i in range(len(participants))
    ]
    done = on_participant or (lambda pid: None)
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(_write_participant_one_thread, *t) for t in tasks]
            for future, task in zip(futures, tasks, strict=True):
                future.add_done_callback(lambda _, pid=task[1]["participant_id"]: done(pid))
            frames = [f.result() for f in futures]
    else:
        frames = []
        for task in tasks:
            frames.append(_write_participant(*task))
            done(task[1]["participant_id"])
    discs = pd.concat(frames, ignore_index=True)
    write_tsv(discs, truth_dir / "discs.tsv")
    return discs


def study_is_complete(out: str | Path, settings: StudySettings) -> bool:
    """Whether ``out`` holds a whole study written with ``settings`` (its truth table is
    written last)."""
    truth_dir = Path(out) / "derivatives" / "groundtruth"
    study, discs = truth_dir / "study.json", truth_dir / "discs.tsv"
    if not (study.is_file() and discs.is_file()):
        return False
    return json.loads(study.read_text()) == json.loads(json.dumps(settings.as_dict()))


def _check_settings(path: Path, settings: StudySettings) -> None:
    wanted = json.loads(json.dumps(settings.as_dict()))
    if path.exists():
        found = json.loads(path.read_text())
        if found != wanted:
            raise OutputExists(
                f"{path.parent.parent.parent} holds a synthetic study made with other settings "
                f"({path}); write to a new folder or delete it"
            )
    write_json(wanted, path)


def _write_participant_one_thread(*args) -> pd.DataFrame:
    """A pool worker: one BLAS thread each, so ``jobs`` workers do not oversubscribe."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return _write_participant(*args)


def _write_participant(
    out: Path, p: dict, truth: dict, index: int, settings: StudySettings
) -> pd.DataFrame:
    pid = p["participant_id"]
    offsets = disc_offsets_ms(pd.Series(truth), settings.effects, settings.seed, index)
    rng = np.random.default_rng([settings.seed, 4, index])
    fat = fat_thickness_for_bmi(p["bmi"], rng)
    size = body_size_scale(p["sex"], rng)
    session_seeds = rng.integers(0, 2**31, size=len(SESSIONS))
    frames = []
    for k, ses in enumerate(SESSIONS):
        table_path = _truth_anat(out, pid, ses) / bids.truth_name(
            bids.session_stem(pid, ses), "table", ".tsv"
        )
        if table_path.exists():
            frames.append(read_tsv(table_path))
            continue
        phantom = make_spine_phantom(
            seed=p["anatomy_seed"],
            grades=p["grades"],
            protocol=settings.protocol,
            disc_t2_offset_ms=offsets[ses],
            fat_thickness_mm=fat,
            size_scale=size,
            session_seed=p["anatomy_seed"] + 1000 * (k + 1),
        )
        table = _session_truth(phantom, pid, ses, truth[f"true_effect_{ses}_ms"])
        _write_session(out, pid, ses, phantom, settings, int(session_seeds[k]))
        write_tsv(table, table_path)
        frames.append(read_tsv(table_path))  # same types whether fresh or resumed
    return pd.concat(frames, ignore_index=True)


def _truth_anat(out: Path, pid: str, ses: str) -> Path:
    return bids.truth_anat(out, pid, ses)


def _session_truth(phantom: SpinePhantom, pid: str, ses: str, effect_ms: float) -> pd.DataFrame:
    voxel_mm3 = float(abs(np.linalg.det(phantom.affine[:3, :3])))
    rows = []
    for level in LEVELS:
        mask = phantom.discs == LEVEL_INDEX[level]
        n = int(mask.sum())
        nucleus = mask & (phantom.tissue == Tissue.NUCLEUS)
        annulus = mask & (phantom.tissue == Tissue.ANNULUS)
        rows.append(
            {
                "participant_id": pid,
                "session": ses,
                "level": level,
                "pfirrmann_true": phantom.grades.get(level),
                "t2_true_ms": float(phantom.t2_ms[mask].mean()) if n else np.nan,
                "nucleus_t2_true_ms": float(phantom.t2_ms[nucleus].mean())
                if nucleus.any()
                else np.nan,
                "annulus_t2_true_ms": float(phantom.t2_ms[annulus].mean())
                if annulus.any()
                else np.nan,
                "disc_voxels": n,
                "disc_volume_mm3": n * voxel_mm3,
                "true_effect_ms": effect_ms,
                "qc_reason": _missing_reason(phantom, level, n),
            }
        )
    return pd.DataFrame(rows)


def _missing_reason(phantom: SpinePhantom, level: str, n_voxels: int) -> str:
    if n_voxels:
        return ""
    if level not in phantom.grades:
        return "not labelled in the source segmentation"
    return "outside field of view"


def _write_session(
    out: Path, pid: str, ses: str, phantom: SpinePhantom, settings: StudySettings, seed: int
) -> None:
    proto = settings.protocol
    acq = simulate_mese(
        phantom, proto, snr=settings.snr, seed=seed, psf_fwhm_vox=settings.psf_fwhm_vox
    )
    t2w = simulate_t2w(phantom, proto, seed=seed, psf_fwhm_vox=settings.psf_fwhm_vox)
    stem = bids.session_stem(pid, ses)
    anat = bids.raw_anat(out, pid, ses)
    common = {
        "MagneticFieldStrength": proto.field_strength_t,
        "Manufacturer": "t2quant synthetic",
        "MRAcquisitionType": "2D",
        "SliceThickness": proto.slice_thickness_mm,
        "RepetitionTime": proto.tr_ms / 1000.0,
    }
    for n, te in enumerate(acq.te_ms, start=1):
        echo = np.clip(np.rint(acq.echoes[..., n - 1]), 0, 65535).astype(np.uint16)
        save_nifti(echo, acq.affine, anat / bids.echo_name(stem, n))
        write_json(
            {
                **common,
                "EchoTime": round(float(te) / 1000.0, 6),
                "FlipAngle": proto.excite_deg,
                "PulseSequenceType": "Multi-echo spin echo (CPMG)",
                "SeriesDescription": f"MESE {proto.n_echoes} echoes, ESP {proto.esp_ms} ms",
            },
            anat / bids.echo_name(stem, n, ".json"),
        )
    save_nifti(
        np.clip(np.rint(t2w), 0, 65535).astype(np.uint16), acq.affine, anat / bids.t2w_name(stem)
    )
    write_json(
        {
            **common,
            "RepetitionTime": proto.t2w_tr_ms / 1000.0,
            "EchoTime": proto.t2w_te_ms / 1000.0,
            "PulseSequenceType": "Fast spin echo",
        },
        anat / bids.t2w_name(stem, ".json"),
    )
    truth = _truth_anat(out, pid, ses)
    save_nifti(
        phantom.t2_ms / 1000.0,
        acq.affine,
        truth / bids.truth_name(stem, "t2map"),
        dtype=np.float32,
    )
    write_json(
        {
            "Units": "s",
            "EstimationAlgorithm": "ground truth: input of the simulation",
            "Description": "True T2 at each voxel centre, in seconds (BIDS).",
        },
        truth / bids.truth_name(stem, "t2map", ".json"),
    )
    save_nifti(phantom.pd, acq.affine, truth / bids.truth_name(stem, "pdmap"), dtype=np.float32)
    write_json(
        {"Units": "arbitrary", "Description": "Proton density relative to water."},
        truth / bids.truth_name(stem, "pdmap", ".json"),
    )
    save_nifti(acq.b1, acq.affine, truth / bids.truth_name(stem, "b1map"), dtype=np.float32)
    write_json(
        {
            "Units": "fraction of nominal flip angle",
            "Description": "Transmit scale: refocusing angle = 180 deg x value.",
        },
        truth / bids.truth_name(stem, "b1map", ".json"),
    )
    save_nifti(phantom.discs, acq.affine, truth / bids.truth_name(stem, "discs"), dtype=np.int16)
    save_nifti(phantom.tissue, acq.affine, truth / bids.truth_name(stem, "tissue"), dtype=np.int16)


def disc_lookup_table() -> pd.DataFrame:
    """BIDS ``dseg.tsv`` lookup of the project's disc labels."""
    names = [*LEVELS, "L5/L6", "L6/S1"]
    return pd.DataFrame(
        {
            "index": [LEVEL_INDEX[n] for n in names],
            "name": names,
            "abbreviation": [ABBREVIATIONS[n] for n in names],
            "color": [LEVEL_COLORS[n] for n in names],
        }
    )


def tissue_lookup_table() -> pd.DataFrame:
    """BIDS ``dseg.tsv`` lookup of the ground-truth tissue codes."""
    return pd.DataFrame(
        {
            "index": [int(t) for t in Tissue],
            "name": [t.name.lower() for t in Tissue],
            "color": [TISSUES[t].color for t in Tissue],
        }
    )


def _write_dataset_files(
    out: Path, participants: pd.DataFrame, truth: pd.DataFrame, settings: StudySettings
) -> None:
    generated = [
        {
            "Name": "t2quant",
            "Version": __version__,
            "Description": "t2quant synth-study: simulated lumbar MESE study",
        }
    ]
    write_json(
        {
            "Name": "t2quant synthetic lumbar MESE study",
            "BIDSVersion": BIDS_VERSION,
            "DatasetType": "raw",
            "License": "CC0",
            "GeneratedBy": generated,
            "HowToAcknowledge": "Baseline Pfirrmann grade distributions follow the SPIDER "
            "gradings (van der Graaf et al., Scientific Data 2024, CC BY 4.0).",
        },
        out / "dataset_description.json",
    )
    (out / "README").write_text(
        "Synthetic lumbar-spine multi-echo spin-echo study written by t2quant synth-study.\n"
        "Ground truth (true T2 maps, labels, grades, effects) is in derivatives/groundtruth.\n"
    )
    write_tsv(participants[list(PARTICIPANT_COLUMNS)], out / "participants.tsv")
    write_json(_participants_sidecar(), out / "participants.json")
    sessions = pd.DataFrame(
        {
            "session_id": [bids.session_id(s) for s in SESSIONS],
            "weeks": [SESSION_WEEKS[s] for s in SESSIONS],
        }
    )
    for pid in participants["participant_id"]:
        write_tsv(sessions, bids.sessions_tsv(out, pid))
    gt = out / "derivatives" / "groundtruth"
    write_json(
        {
            "Name": "t2quant synthetic ground truth",
            "BIDSVersion": BIDS_VERSION,
            "DatasetType": "derivative",
            "GeneratedBy": generated,
            "SourceDatasets": [{"URL": "../.."}],
        },
        gt / "dataset_description.json",
    )
    write_json(
        {
            "model": "see t2quant.synth.study module docstring",
            "sessions_weeks": SESSION_WEEKS,
            **settings.effects.as_dict(),
        },
        gt / "effects.json",
    )
    grades = pd.DataFrame(
        [
            {
                "participant_id": pid,
                **{f"pfirrmann_{ABBREVIATIONS[lvl]}": v for lvl, v in g.items()},
            }
            for pid, g in zip(participants.participant_id, participants.grades, strict=True)
        ]
    )
    write_tsv(truth.merge(grades, on="participant_id"), gt / "participants_truth.tsv")
    write_tsv(disc_lookup_table(), gt / "desc-discs_dseg.tsv")
    write_tsv(tissue_lookup_table(), gt / "desc-tissue_dseg.tsv")


def _participants_sidecar() -> dict:
    return {
        "group": {
            "Description": "trial arm",
            "Levels": {"run": "run-walk programme", "control": "waitlist control"},
        },
        "sex": {"Description": "sex", "Levels": {"F": "female", "M": "male"}},
        "age": {"Description": "age at baseline", "Units": "year"},
        "bmi": {"Description": "body-mass index", "Units": "kg/m^2"},
        "running_volume_km": {
            "Description": "cumulative running volume, weeks 0-12",
            "Units": "km",
        },
        "running_volume_6_12_km": {
            "Description": "cumulative running volume, weeks 6-12",
            "Units": "km",
        },
        "mean_speed_kmh": {"Description": "mean running speed", "Units": "km/h"},
        "dominant_surface": {
            "Description": "surface run on most",
            "Levels": {s: s for s in ("grass", "gravel", "pavement", "trail")},
        },
    }


def write_real_anatomy_session(
    out: str | Path,
    t2w_path: str | Path,
    discs_path: str | Path,
    *,
    axcodes: str,
    protocol: Protocol,
    snr: float = 80.0,
    seed: int = 0,
    participant_id: str = "sub-real",
    session: str = "baseline",
) -> pd.DataFrame:
    """Simulate one MESE session on a real T2w volume with manual disc masks.

    The T2w volume and the masks are read with nibabel; their affine is replaced by one
    built from ``axcodes`` (the files in the project notes store none).  Writes the same
    raw and ground-truth files as a synthetic study session and returns its truth table.
    """
    import nibabel as nib

    from t2quant.synth.real_anatomy import make_real_anatomy_phantom

    t2w_img = nib.load(t2w_path)
    discs_img = nib.load(discs_path)
    if t2w_img.shape != discs_img.shape:
        raise InputError(
            f"{discs_path}: shape {discs_img.shape} differs from the T2w volume "
            f"{t2w_path} {t2w_img.shape}"
        )
    phantom = make_real_anatomy_phantom(
        np.asarray(t2w_img.dataobj, dtype=np.float64),
        np.rint(np.asarray(discs_img.dataobj)).astype(np.int16),
        voxel_mm=tuple(float(z) for z in t2w_img.header.get_zooms()[:3]),
        axcodes=axcodes,
    )
    out = Path(out)
    settings = StudySettings(n_participants=1, seed=seed, protocol=protocol, snr=snr)
    table = _session_truth(phantom, participant_id, session, 0.0)
    _write_session(out, participant_id, session, phantom, settings, seed)
    write_tsv(
        table,
        _truth_anat(out, participant_id, session)
        / bids.truth_name(bids.session_stem(participant_id, session), "table", ".tsv"),
    )
    return table
