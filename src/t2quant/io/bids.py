"""BIDS names and queries: the one place that knows how t2quant's files are named and found.

Raw data (read)::

    BIDS/participants.tsv
    BIDS/sub-<p>/sub-<p>_sessions.tsv
    BIDS/sub-<p>/ses-<s>/anat/sub-<p>_ses-<s>_echo-<n>_MESE.nii[.gz] (+ .json, EchoTime in s)
    BIDS/sub-<p>/ses-<s>/anat/sub-<p>_ses-<s>_T2w.nii[.gz]             (optional)

Derivatives (written by the participant level, ``OUT``)::

    OUT/dataset_description.json
    OUT/sub-<p>.html                                              participant report
    OUT/sub-<p>/ses-<s>/anat/<stem>_desc-<method>_<map>.nii.gz     T2 maps (+ .json)
    OUT/sub-<p>/ses-<s>/anat/<stem>_dseg.nii.gz, _dseg.tsv         disc labels and lookup
    OUT/sub-<p>/ses-<s>/anat/<stem>_discs.tsv, _discs.json, _qc.png  per-level record, QC
    OUT/sub-<p>/ses-<s>/anat/<stem>_discfeatures.tsv (+ .json)     features and grades
    OUT/group/...                                                  group level

Ratings (exported by a rater from a participant report, read by the group level)::

    RATINGS/sub-<p>_desc-ratings.tsv                               a rater's review

``<stem>`` is ``sub-<p>_ses-<s>``. Every other module asks this one for a name or a file list
instead of spelling a pattern itself.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from t2quant.errors import InputError, MissingInputError

__all__ = [
    "DSEG_PATTERN",
    "ENTITIES",
    "FEATURES_PATTERN",
    "FILTER_QUERIES",
    "MAP_SUFFIXES",
    "PARTICIPANT_COLUMNS",
    "PARTICIPANT_COVARIATES",
    "RATINGS_PATTERN",
    "SessionInputs",
    "by_session",
    "classify",
    "collect_data",
    "collect_session",
    "derivative_anat",
    "echo_name",
    "echo_number",
    "entities",
    "feature_names",
    "find_by_session",
    "find_echo_groups",
    "find_feature_tables",
    "find_in_session",
    "find_mask",
    "find_ratings",
    "find_t2_maps",
    "find_t2w",
    "find_truth_masks",
    "map_name",
    "matches",
    "participant_labels",
    "participant_session",
    "ratings_name",
    "raw_anat",
    "read_filters",
    "report_name",
    "segmentation_names",
    "session_id",
    "session_labels",
    "session_stem",
    "sidecar",
    "stem_of",
    "t2_seconds_to_ms",
    "t2w_name",
    "truth_anat",
    "truth_name",
]

ECHO_RE = re.compile(r"^(?P<pre>.+)_echo-(?P<echo>\d+)_(?P<suffix>MESE)\.nii(\.gz)?$")
NIFTI_RE = re.compile(r"\.nii(\.gz)?$")

#: The covariate columns of ``participants.tsv`` (besides ``participant_id`` and ``group``).
PARTICIPANT_COVARIATES: dict[str, str] = {
    "sex": "participants.tsv: sex (F/M)",
    "bmi": "participants.tsv: body-mass index (kg/m2)",
    "running_volume_km": "participants.tsv: cumulative running volume weeks 0-12 (km); "
    "runners only",
    "running_volume_6_12_km": "participants.tsv: cumulative running volume weeks 6-12 (km)",
    "mean_speed_kmh": "participants.tsv: mean running speed (km/h)",
    "dominant_surface": "participants.tsv: dominant running surface",
}

#: The columns of a trial's ``participants.tsv``, in order.
PARTICIPANT_COLUMNS: tuple[str, ...] = (
    "participant_id", "group", "sex", "age", *[c for c in PARTICIPANT_COVARIATES if c != "sex"],
)  # fmt: skip

#: Output key -> the suffix of a T2-fit map (``<stem>_desc-<method>_<suffix>.nii.gz``).
MAP_SUFFIXES: dict[str, str] = {
    "t2_s": "T2map",
    "t2_ms": "T2ms",
    "s0": "S0map",
    "b1": "TB1map",
    "offset": "offset",
    "r2": "rsquared",
    "rmse": "rmse",
    "t2_se_ms": "T2sems",
    "failure": "failure",
}

#: What the segmentation writes: key -> (suffix, extension).
_SEGMENTATION = {
    "dseg": ("dseg", ".nii.gz"),
    "lookup": ("dseg", ".tsv"),
    "discs": ("discs", ".tsv"),
    "discs_json": ("discs", ".json"),
    "qc": ("qc", ".png"),
}

#: Per-session derivatives the report and the validation look up: key -> glob within anat/.
#: ``DSEG_PATTERN`` and ``FEATURES_PATTERN`` are the two a user may meet in messages and options.
_SESSION_FILES = {
    "t2_ms": "*_T2ms.nii*",
    "t2_s": "*_T2map.nii*",
    "s0": "*_S0map.nii*",
    "b1": "*_TB1map.nii*",
    "r2": "*_rsquared.nii*",
    "dseg": "*_dseg.nii*",
    "discs_json": "*_discs.json",
    "features": "*_discfeatures.tsv",
}


DSEG_PATTERN = _SESSION_FILES["dseg"]
FEATURES_PATTERN = _SESSION_FILES["features"]
#: A rater's exported ratings; the trailing ``*`` also takes a browser's renamed second
#: download (``sub-01_desc-ratings (1).tsv``), which would otherwise be left out unseen.
RATINGS_PATTERN = "sub-*_desc-ratings*.tsv"


# --- names -----------------------------------------------------------------------------------


def session_stem(participant: str, session: str) -> str:
    """``sub-01``/``01`` and ``baseline``/``ses-baseline`` -> ``sub-01_ses-baseline``."""
    sub = f"sub-{participant.removeprefix('sub-')}"
    if not session:
        return sub
    return f"{sub}_ses-{session.removeprefix('ses-')}"


def map_name(stem: str, method: str, key: str) -> str:
    """File name of a T2-fit map, e.g. ``sub-01_ses-1_desc-epg_T2map.nii.gz``."""
    return f"{stem}_desc-{method}_{MAP_SUFFIXES[key]}.nii.gz"


def segmentation_names(stem: str) -> dict[str, str]:
    """File names of a segmentation's outputs, by key (``dseg``, ``lookup``, ``discs``,
    ``discs_json``, ``qc``)."""
    return {key: f"{stem}_{suffix}{ext}" for key, (suffix, ext) in _SEGMENTATION.items()}


def feature_names(stem: str) -> dict[str, str]:
    """File names of a session's feature table and its data dictionary."""
    return {"features": f"{stem}_discfeatures.tsv", "dictionary": f"{stem}_discfeatures.json"}


def report_name(participant: str) -> str:
    """``sub-01.html``."""
    return f"sub-{participant.removeprefix('sub-')}.html"


def ratings_name(participant: str) -> str:
    """The ratings a rater exports from a participant's report: ``sub-01_desc-ratings.tsv``."""
    return f"sub-{participant.removeprefix('sub-')}_desc-ratings.tsv"


def segmentation_image_name(stem: str) -> str:
    """The image a session is segmented on, in a node's folder."""
    return f"{stem}_desc-segment_T2w.nii.gz"


def echo_name(stem: str, echo: int, ext: str = ".nii.gz") -> str:
    """``sub-01_ses-1_echo-3_MESE.nii.gz`` (or ``.json``)."""
    return f"{stem}_echo-{echo}_MESE{ext}"


def t2w_name(stem: str, ext: str = ".nii.gz") -> str:
    """``sub-01_ses-1_T2w.nii.gz`` (or ``.json``)."""
    return f"{stem}_T2w{ext}"


#: A synthetic study's ground-truth files of a session: key -> (entities and suffix).
_TRUTH = {
    "t2map": "desc-true_T2map",
    "pdmap": "desc-true_PDmap",
    "b1map": "TB1map",
    "discs": "desc-discs_dseg",
    "tissue": "desc-tissue_dseg",
    "table": "desc-truth_discs",
}


def truth_name(stem: str, key: str, ext: str = ".nii.gz") -> str:
    """A ground-truth file of a synthetic session, e.g. ``<stem>_desc-discs_dseg.nii.gz``."""
    return f"{stem}_{_TRUTH[key]}{ext}"


def session_id(session: str) -> str:
    """The ``session_id`` column value of a ``sessions.tsv``: ``ses-<label>``."""
    return f"ses-{session.removeprefix('ses-')}"


def raw_anat(bids_dir: str | os.PathLike, participant: str, session: str) -> Path:
    """``BIDS/sub-X/ses-Y/anat``."""
    return derivative_anat(bids_dir, participant, session)


def sidecar(path: str | os.PathLike) -> Path:
    """The JSON sidecar of a ``.nii``, ``.nii.gz``, ``.tsv`` or ``.json`` file."""
    path = Path(path)
    return path.with_name(path.name.split(".")[0] + ".json")


def stem_of(name: str) -> str:
    """The file stem of a BIDS name without its suffix and extension:
    ``sub-01_ses-1_T2w.nii.gz`` -> ``sub-01_ses-1``; ``sub-01_ses-1_echo-3_MESE.nii`` ->
    ``sub-01_ses-1``. A name whose parts are not all ``key-value`` pairs is kept whole (without
    its extension)."""
    base = NIFTI_RE.sub("", Path(name).name)
    base = re.sub(r"\.(tsv|json|png)$", "", base)
    base = re.sub(r"_MESE$", "", re.sub(r"_echo-\d+", "", base))
    parts = base.split("_")
    if len(parts) > 1 and "-" not in parts[-1] and all("-" in p for p in parts[:-1]):
        return "_".join(parts[:-1])
    return base


def participant_session(name: str) -> tuple[str, str]:
    """``participant_id`` (with ``sub-``) and session label (without ``ses-``) of a file name
    or stem; the name itself and ``""`` when it carries no such entity."""
    sub = re.search(r"(?:^|_)(sub-[A-Za-z0-9]+)", name)
    ses = re.search(r"(?:^|_)ses-([A-Za-z0-9]+)", name)
    return (sub.group(1) if sub else name), (ses.group(1) if ses else "")


#: pybids' long entity names -> the short keys in file names.
ENTITIES = {
    "subject": "sub",
    "session": "ses",
    "acquisition": "acq",
    "run": "run",
    "reconstruction": "rec",
    "echo": "echo",
    "direction": "dir",
    "part": "part",
}
#: The queries a ``--bids-filter-file`` may hold: the MESE echoes and the T2-weighted image.
FILTER_QUERIES = ("mese", "t2w")


def entities(name: str) -> dict[str, str]:
    """The ``key-value`` entities of a BIDS file name, by short key (``sub``, ``ses``...)."""
    base = NIFTI_RE.sub("", Path(name).name).split(".")[0]
    return dict(part.split("-", 1) for part in base.split("_") if "-" in part)


def matches(path: str | os.PathLike, query: dict) -> bool:
    """Whether a file's entities satisfy a pybids-style query: ``{"acquisition": "fast"}``
    (that value), a list (any of them), ``null`` (the entity must be absent)."""
    found = entities(Path(path).name)
    for long_name, wanted in query.items():
        value = found.get(ENTITIES[long_name])
        if wanted is None:
            if value is not None:
                return False
        elif value not in ([str(w) for w in wanted] if isinstance(wanted, list) else [str(wanted)]):
            return False
    return True


def read_filters(path: str | os.PathLike) -> dict[str, dict]:
    """A ``--bids-filter-file``: ``{"mese": {...}, "t2w": {...}}`` with pybids entity names.

    Raises
    ------
    InputError
        For another shape, an unknown query or entity, or a value that is not a string, a
        number, a list of them or null.
    """
    from t2quant.io.jsonfile import read_json_object

    raw = read_json_object(path, what="BIDS filter file")
    unknown = sorted(set(raw) - set(FILTER_QUERIES))
    if unknown:
        raise InputError(f"{path}: unknown filter queries {unknown}; use {list(FILTER_QUERIES)}")
    for query, conditions in raw.items():
        if not isinstance(conditions, dict):
            raise InputError(f"{path}: filter {query!r} must be an object of entity: value")
        bad = sorted(set(conditions) - set(ENTITIES))
        if bad:
            raise InputError(
                f"{path}: filter {query!r}: unknown entities {bad}; use {sorted(ENTITIES)}"
            )
        for entity, value in conditions.items():
            values = value if isinstance(value, list) else [value]
            if not all(v is None or (isinstance(v, str | int) and not isinstance(v, bool))
                       for v in values):  # fmt: skip
                raise InputError(
                    f"{path}: filter {query!r} {entity!r} must be a string, a number, a list of "
                    f"them, or null; got {value!r}"
                )
    return raw


def echo_number(path: str | os.PathLike) -> int | None:
    """The ``echo-<n>`` entity of a MESE file name, or ``None``."""
    match = ECHO_RE.match(Path(path).name)
    return int(match["echo"]) if match else None


def t2_seconds_to_ms(path: str | os.PathLike) -> float:
    """Factor that turns a T2 map's values into ms: 1000 for a BIDS ``_T2map`` (seconds),
    1 for t2quant's ``_T2ms``."""
    name = Path(path).name
    return 1000.0 if "_T2map" in name and "T2ms" not in name else 1.0


# --- raw-data queries ------------------------------------------------------------------------


def participant_labels(bids_dir: str | os.PathLike, asked: tuple[str, ...] = ()) -> list[str]:
    """Participant labels (without ``sub-``); every asked-for label must exist."""
    found = sorted(p.name.removeprefix("sub-") for p in Path(bids_dir).glob("sub-*") if p.is_dir())
    if not found:
        raise InputError(f"{bids_dir}: no sub-* folders; is this a BIDS dataset?")
    if not asked:
        return found
    wanted = [label.removeprefix("sub-") for label in asked]
    missing = [w for w in wanted if w not in found]
    if missing:
        raise InputError(f"{bids_dir}: no participant(s) {missing}; found {found}")
    return wanted


def session_labels(bids_dir: str | os.PathLike, participant: str) -> list[str]:
    """Session labels (without ``ses-``) of a participant that have an ``anat`` folder."""
    sub = Path(bids_dir) / f"sub-{participant.removeprefix('sub-')}"
    return sorted(p.parent.name.removeprefix("ses-") for p in sub.glob("ses-*/anat") if p.is_dir())


def sessions_tsv(bids_dir: str | os.PathLike, participant: str) -> Path:
    """``BIDS/sub-X/sub-X_sessions.tsv`` (it may not exist)."""
    sub = f"sub-{participant.removeprefix('sub-')}"
    return Path(bids_dir) / sub / f"{sub}_sessions.tsv"


def find_echo_groups(folder: str | os.PathLike) -> dict[str, list[Path]]:
    """``*_echo-<n>_MESE.nii[.gz]`` files under ``folder`` grouped by stem, in echo order."""
    groups: dict[str, list[tuple[int, Path]]] = {}
    for p in sorted(Path(folder).rglob("*_MESE.nii*")):
        match = ECHO_RE.match(p.name)
        if match:
            groups.setdefault(match["pre"], []).append((int(match["echo"]), p))
    return {k: [p for _, p in sorted(v)] for k, v in groups.items()}


def find_t2w(anat_dir: str | os.PathLike, query: dict | None = None) -> Path | None:
    """The session's T2-weighted image (``*_T2w.nii[.gz]`` matching ``query``), or ``None``.

    Raises
    ------
    InputError
        When several match: choose one with a ``--bids-filter-file`` ``t2w`` query.
    """
    hits = [p for p in sorted(Path(anat_dir).glob("*_T2w.nii*")) if matches(p, query or {})]
    if len(hits) > 1:
        names = ", ".join(p.name for p in hits)
        raise InputError(
            f"{anat_dir}: several T2-weighted images ({names}); choose one with "
            '--bids-filter-file (e.g. {"t2w": {"acquisition": "..."}})'
        )
    return hits[0] if hits else None


@dataclass(frozen=True)
class SessionInputs:
    """Everything one session's processing reads from the raw dataset.

    Passing these files (not the folder) to the Nipype nodes lets the content hash see every
    byte that matters: replacing an echo or correcting a sidecar reruns what depends on it.
    """

    participant: str
    session: str
    stem: str
    anat_dir: Path
    echoes: tuple[Path, ...]
    sidecars: tuple[Path, ...]
    t2w: Path | None

    @property
    def where(self) -> str:
        """``sub-01/ses-baseline``."""
        return f"sub-{self.participant}/ses-{self.session}"


def collect_session(
    bids_dir: str | os.PathLike, participant: str, session: str, filters: dict | None = None
) -> SessionInputs:
    """The echo files, their sidecars and the T2w (if any) of one session; ``filters`` (a
    :func:`read_filters` result) choose among several series.

    Missing or misnumbered echoes are left for the checks and the fit to report (as that
    session's problem, so the other sessions still run); a session with no MESE series, or
    with several and no filter that picks one, is an error here.
    """
    filters = filters or {}
    label = participant.removeprefix("sub-")
    ses = session.removeprefix("ses-")
    anat = Path(bids_dir).resolve() / f"sub-{label}" / f"ses-{ses}" / "anat"
    groups = {
        stem: files
        for stem, files in find_echo_groups(anat).items()
        if all(matches(f, filters.get("mese", {})) for f in files)
    }
    if not groups:
        raise InputError(
            f"{anat}: no *_echo-<n>_MESE.nii[.gz] files"
            + (" match the --bids-filter-file" if filters.get("mese") else "")
        )
    if len(groups) > 1:
        raise InputError(
            f"{anat}: several MESE series ({', '.join(sorted(groups))}); choose one with "
            '--bids-filter-file (e.g. {"mese": {"acquisition": "..."}})'
        )
    stem, echoes = next(iter(groups.items()))
    return SessionInputs(
        participant=label,
        session=ses,
        stem=stem,
        anat_dir=anat,
        echoes=tuple(echoes),
        sidecars=tuple(sidecar(p) for p in echoes if sidecar(p).is_file()),
        t2w=find_t2w(anat, filters.get("t2w")),
    )


def collect_data(
    bids_dir: str | os.PathLike,
    participant: str,
    sessions: tuple[str, ...] | list[str] = (),
    filters: dict | None = None,
) -> list[SessionInputs]:
    """Every session of a participant (or the ``sessions`` asked for, and those a ``filters``
    ``session`` entity allows), as smriprep's ``collect_data`` gathers a subject's files once
    before the workflow is built."""
    label = participant.removeprefix("sub-")
    found = session_labels(bids_dir, label)
    asked = [s.removeprefix("ses-") for s in sessions]
    chosen = [s for s in found if s in asked] if asked else found
    wanted = (filters or {}).get("mese", {}).get("session")
    if wanted is not None:
        allowed = {str(w) for w in (wanted if isinstance(wanted, list) else [wanted])}
        chosen = [s for s in chosen if s in allowed]
    if not chosen:
        raise InputError(
            f"{Path(bids_dir) / f'sub-{label}'}: no ses-*/anat folders "
            f"(sessions asked: {asked or 'all'}; found: {found or 'none'})"
        )
    return [collect_session(bids_dir, label, s, filters) for s in chosen]


# --- derivative queries ----------------------------------------------------------------------


def derivative_anat(output_dir: str | os.PathLike, participant: str, session: str) -> Path:
    """``OUT/sub-X/ses-Y/anat``."""
    sub = f"sub-{participant.removeprefix('sub-')}"
    return Path(output_dir) / sub / f"ses-{session.removeprefix('ses-')}" / "anat"


def truth_anat(bids_dir: str | os.PathLike, participant: str, session: str) -> Path:
    """A synthetic study's ground truth of one session: ``BIDS/derivatives/groundtruth/...``."""
    return derivative_anat(Path(bids_dir) / "derivatives" / "groundtruth", participant, session)


def find_feature_tables(derivatives: str | os.PathLike) -> list[Path]:
    """Every session's ``*_discfeatures.tsv`` under a derivatives folder (or one file)."""
    path = Path(derivatives)
    if path.is_file():
        return [path]
    return sorted(path.rglob(FEATURES_PATTERN))


def find_ratings(folder: str | os.PathLike) -> list[Path]:
    """Every exported ratings file (:data:`RATINGS_PATTERN`) in ``folder`` and its subfolders
    (one per rater, say).

    Raises
    ------
    MissingInputError
        When ``folder`` does not exist.
    InputError
        When it holds no ratings file.
    """
    if not Path(folder).is_dir():
        raise MissingInputError(f"--ratings {folder}: no such folder")
    found = sorted(Path(folder).rglob(RATINGS_PATTERN))
    if not found:
        raise InputError(
            f"--ratings {folder}: no {RATINGS_PATTERN} files; put the files exported from the "
            "participant reports there"
        )
    return found


def find_in_session(anat: str | os.PathLike, key: str) -> Path | None:
    """One derivative of a session folder by key (``t2_ms``, ``dseg``, ``features``...)."""
    hits = sorted(Path(anat).glob(_SESSION_FILES[key]))
    return hits[0] if hits else None


def classify(path: str | os.PathLike) -> str | None:
    """The key of a session derivative (``t2_ms``, ``dseg``, ``features``...) by its name,
    or ``None`` for any other file."""
    from fnmatch import fnmatch

    name = Path(path).name
    return next((key for key, pattern in _SESSION_FILES.items() if fnmatch(name, pattern)), None)


def by_session(files: list[Path]) -> dict[tuple[str, str], dict[str, Path]]:
    """Session derivatives grouped by (participant, session), each by :func:`classify` key."""
    out: dict[tuple[str, str], dict[str, Path]] = {}
    for path in sorted(Path(f) for f in files):
        key = classify(path)
        if key is not None:
            out.setdefault(participant_session(path.name), {}).setdefault(key, path)
    return out


def find_session_dirs(output_dir: str | os.PathLike, participant: str) -> list[Path]:
    """``OUT/sub-X/ses-*/anat`` folders of a participant."""
    sub = f"sub-{participant.removeprefix('sub-')}"
    return sorted(p for p in Path(output_dir).glob(f"{sub}/ses-*/anat") if p.is_dir())


def find_truth_masks(bids_dir: str | os.PathLike) -> dict[tuple[str, str], Path]:
    """A synthetic study's true disc masks by (participant, session)."""
    truth = Path(bids_dir) / "derivatives" / "groundtruth"
    return find_by_session(truth, f"*_{_TRUTH['discs']}.nii*") if truth.is_dir() else {}


def find_t2_maps(folder: str | os.PathLike) -> dict[tuple[str, str], Path]:
    """T2 maps under ``folder`` by (participant, session): ``*_T2ms`` (ms), else BIDS
    ``*_T2map`` (s; convert with :func:`t2_seconds_to_ms`)."""
    return find_by_session(folder, _SESSION_FILES["t2_ms"]) or find_by_session(
        folder, _SESSION_FILES["t2_s"]
    )


def find_by_session(folder: str | os.PathLike, pattern: str) -> dict[tuple[str, str], Path]:
    """Files under ``folder`` matching ``pattern``, by (participant, session).

    Raises
    ------
    InputError
        When two files match one session (name a narrower pattern).
    """
    found: dict[tuple[str, str], Path] = {}
    for p in sorted(Path(folder).rglob(pattern)):
        key = participant_session(p.name)
        if key in found:
            raise InputError(
                f"{found[key]} and {p} both match {pattern!r} for {key[0]} {key[1]}; "
                "give a narrower pattern"
            )
        found[key] = p
    return found


def find_mask(folder: str | os.PathLike, participant: str, session: str) -> Path:
    """A session's disc mask (``sub-X_ses-Y*_dseg.nii*``) anywhere under ``folder``."""
    stem = session_stem(participant, session)
    if not Path(folder).is_dir():
        raise MissingInputError(f"--discs-from {folder}: no such folder")
    hits = sorted(Path(folder).rglob(f"{stem}*_dseg.nii*"))
    if not hits:
        raise InputError(f"--discs-from {folder}: no {stem}*_dseg.nii* found")
    return hits[0]
