"""Property tests of the boundary: every reader, fed generated malformed input, returns a valid
result or raises the project's InputError naming the file. Never another exception, never a
silent coercion. Each property runs a fixed number of examples, so CI time is bounded."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from t2quant.errors import InputError

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**20, 10**20),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
)  # fmt: skip
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def _tmp() -> Path:
    return Path(tempfile.mkdtemp(prefix="t2quant-fuzz-"))


def _names_the_file(error: InputError, path: Path) -> None:
    assert path.name in str(error), str(error)


_REFUSED = object()


def _read_or_refused(read, path: Path):
    """``read()``'s result, or ``_REFUSED`` after checking that its InputError names ``path``;
    any other exception fails the property. Counts both outcomes for the statistics."""
    try:
        value = read()
    except InputError as error:
        _names_the_file(error, path)
        event("refused")
        return _REFUSED
    event("accepted")
    return value


# --- JSON sidecars ---------------------------------------------------------------------------


@FUZZ
@given(value=json_values, depth=st.integers(0, 200))
def test_sidecar_echo_time_is_a_number_or_an_input_error(value, depth):
    from t2quant.io.echoes import _sidecar_te_ms

    folder = _tmp()
    echo = folder / "sub-1_echo-1_MESE.nii.gz"
    echo.touch()
    text = json.dumps({"EchoTime": value}) if depth == 0 else (
        '{"EchoTime": ' + json.dumps(value) + ', "x": ' + "[" * depth + "]" * depth + "}"
    )  # fmt: skip
    (folder / "sub-1_echo-1_MESE.json").write_text(text)
    try:
        te = _sidecar_te_ms(echo)
    except InputError as error:
        _names_the_file(error, folder / "sub-1_echo-1_MESE.json")
        return
    # accepted only as what it is: a real number of seconds, never a coerced string or bool
    assert isinstance(value, int | float) and not isinstance(value, bool)
    assert math.isfinite(te) and te == pytest.approx(1000 * value) and 0 < value < 1


@FUZZ
@given(raw=st.binary(max_size=200))
def test_any_bytes_as_json_are_parsed_or_refused_by_name(raw):
    from t2quant.io.jsonfile import read_json_object

    path = _tmp() / "side.json"
    path.write_bytes(raw)
    value = _read_or_refused(lambda: read_json_object(path), path)
    if value is _REFUSED:
        return
    assert isinstance(value, dict)


@FUZZ
@given(content=json_values)
def test_thresholds_of_any_shape_load_or_are_refused_by_name(content):
    from t2quant.pfirrmann import load_thresholds

    path = _tmp() / "thresholds.json"
    path.write_text(json.dumps({"thresholds": content}))
    t = _read_or_refused(lambda: load_thresholds(path), path)
    if t is _REFUSED:
        return
    assert all(math.isfinite(x.value) and x.scale > 0 for x in t.__dict__.values())


# --- TSV tables --------------------------------------------------------------------------------

cells = st.one_of(
    st.sampled_from(["", "n/a", "NaN", "inf", "-1", "0", "1", "2.5", "six", "sub-01", "run",
                     "control", "F", "M", " 3 ", "1e308", "1e400"]),
    st.text(alphabet=st.characters(blacklist_characters="\t\r\n", blacklist_categories=("Cs",)),
            max_size=6),
)  # fmt: skip


good_cells = {
    "participant_id": st.sampled_from(["sub-01", "sub-02", "sub-03", "01"]),
    "group": st.sampled_from(["run", "control", "Run"]),
    "bmi": st.sampled_from(["22.5", "n/a", "31", "x", "-3"]),
    "weeks": st.sampled_from(["0", "6", "12", "6.5", "n/a", "six"]),
    "session_id": st.sampled_from(["ses-baseline", "ses-wk06", "ses-wk12"]),
    "level": st.sampled_from(["L4/L5", "L5/S1", "T12/L1", "L4"]),
    "pfirrmann": st.sampled_from(["1", "3", "5", "7", "n/a"]),
    "session": st.sampled_from(["a", "b", ""]),
    "rater": st.sampled_from(["ana", "", "bo"]),
    "time": st.sampled_from(["2024-05-01T10:00:00Z", "2024-05-01", "yesterday", "n/a", "1"]),
    "decision": st.sampled_from(["accept", "exclude", "maybe", ""]),
    "grade": st.sampled_from(["1", "5", "n/a", "6", "2.5", "x"]),
    "reason": st.sampled_from(["cut", "n/a", ""]),
}
clean_cells = {
    "participant_id": st.sampled_from(["sub-01", "sub-02", "sub-03"]),
    "group": st.sampled_from(["run", "control"]),
    "bmi": st.sampled_from(["22.5", "n/a", "31"]),
    "weeks": st.sampled_from(["0", "6", "12", "n/a"]),
    "session_id": st.sampled_from(["ses-baseline", "ses-wk06", "ses-wk12"]),
    "level": st.sampled_from(["L4/L5", "L5/S1", "T12/L1"]),
    "pfirrmann": st.sampled_from(["1", "3", "5"]),
    "session": st.sampled_from(["a", "b"]),
    "rater": st.sampled_from(["ana", "bo"]),
    "time": st.sampled_from(["2024-05-01T10:00:00Z", "2024-05-02T10:00:00.500+02:00"]),
    "decision": st.sampled_from(["accept", "exclude"]),
    "grade": st.sampled_from(["1", "5", "n/a"]),
    "reason": st.sampled_from(["cut"]),
}


@st.composite
def tsv_texts(draw, required: tuple[str, ...] = ()):
    """Half the time a well-formed table with the ``required`` columns (its values may still
    be wrong), else anything."""
    if draw(st.booleans()):
        extra = draw(st.lists(st.sampled_from(sorted(good_cells)), max_size=3, unique=True))
        names = [*required, *[n for n in extra if n not in required]] or ["x"]
        pool = clean_cells if draw(st.booleans()) else good_cells
        pool = pool | {"x": st.just("1")}
        rows = draw(st.lists(st.tuples(*(pool[n] for n in names)), max_size=5,
                             unique_by=lambda r: r[: len(required)] or None))  # fmt: skip
        rows = [list(r) for r in rows]
    else:
        anything = ["participant_id", "group", "bmi", "weeks", "session_id", "sex", "x", ""]
        names = draw(st.lists(st.sampled_from(anything), max_size=5))
        rows = draw(st.lists(st.lists(cells, min_size=0, max_size=6), max_size=5))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    lines = ["\t".join(names), *("\t".join(r) for r in rows)]
    return newline.join(lines) + draw(st.sampled_from(["", newline]))


@FUZZ
@given(text=tsv_texts(required=("participant_id", "group")))
def test_participants_tsv_is_typed_or_refused_by_name(text):
    from t2quant.group.table import read_participants

    path = _tmp() / "participants.tsv"
    path.write_bytes(text.encode())
    table = _read_or_refused(lambda: read_participants(path), path)
    if table is _REFUSED:
        return
    assert table["participant_id"].is_unique
    assert set(table["group"]) <= {"run", "control"}
    if "bmi" in table:  # never coerced: every number came from a number
        assert table["bmi"].dropna().between(5, 150).all()


@FUZZ
@given(text=tsv_texts(required=("session_id",)))
def test_sessions_tsv_is_typed_or_refused_by_name(text):
    from t2quant.group.table import SESSIONS_SCHEMA
    from t2quant.io.tables import read_table

    path = _tmp() / "sub-01_sessions.tsv"
    path.write_bytes(text.encode())
    table = _read_or_refused(
        lambda: read_table(path, SESSIONS_SCHEMA, what="sessions.tsv", unique=("session_id",)), path
    )
    if table is _REFUSED:
        return
    if "weeks" in table:
        weeks = table["weeks"].dropna()
        assert all(float(w).is_integer() and 0 <= w <= 1000 for w in weeks)


@FUZZ
@given(text=tsv_texts(required=("participant_id", "session", "level", "pfirrmann")))
def test_manual_grades_are_read_or_refused_by_name(text):
    from t2quant.pfirrmann import read_manual_grades

    path = _tmp() / "grades.tsv"
    path.write_bytes(text.encode())
    result = _read_or_refused(lambda: read_manual_grades(path), path)
    if result is _REFUSED:
        return
    table, _ = result
    assert table["pfirrmann"].isin([1, 2, 3, 4, 5]).all()


RATING_COLUMNS = ("rater", "time", "participant_id", "session", "level", "decision", "grade",
                  "reason")  # fmt: skip


@FUZZ
@given(text=tsv_texts(required=RATING_COLUMNS))
def test_ratings_are_read_or_refused_by_name(text):
    from t2quant.group.ratings import read_ratings_file

    path = _tmp() / "sub-01_desc-ratings.tsv"
    path.write_bytes(text.encode())
    try:
        table = read_ratings_file(path)
    except InputError as error:
        _names_the_file(error, path)
        event("refused")
        return
    event("accepted")
    assert table["decision"].isin(["accept", "exclude"]).all()
    assert table["grade"].dropna().isin([1, 2, 3, 4, 5]).all() and table["time"].notna().all()
    assert table.loc[table["decision"] == "exclude", "reason"].notna().all()


# --- NIfTI images and label masks --------------------------------------------------------------

dtypes = st.sampled_from([np.uint8, np.int16, np.int32, np.float32, np.float64, np.complex64])
special = st.one_of(
    st.sampled_from([0.0, 1.0, -1.0, np.nan, np.inf, -np.inf, 1e302, 0.3]),
    st.integers(0, 1000).map(float),
)
usual = st.integers(0, 1000).map(float)


@st.composite
def nifti_files(draw):
    plain = draw(st.booleans())  # half the time an ordinary image, else anything
    ndim = 3 if plain else draw(st.integers(1, 5))
    sizes = st.integers(1, 4) if plain else st.integers(0, 4)
    shape = tuple(draw(st.lists(sizes, min_size=ndim, max_size=ndim)))
    dtype = draw(st.sampled_from([np.uint8, np.int16, np.float32]) if plain else dtypes)
    data = np.zeros(shape, dtype=np.float64)
    if data.size:
        values = usual if plain else special
        data.flat[:] = draw(st.lists(values, min_size=data.size, max_size=data.size))
    affine = np.eye(4)
    if not plain and draw(st.booleans()):
        affine[draw(st.integers(0, 2)), draw(st.integers(0, 2))] = draw(special)
    with np.errstate(invalid="ignore", over="ignore"):
        typed = data.astype(dtype) if np.issubdtype(dtype, np.complexfloating) else (
            np.nan_to_num(data, nan=0, posinf=0, neginf=0).astype(dtype)
            if np.issubdtype(dtype, np.integer) else data.astype(dtype)
        )  # fmt: skip
    return typed, affine


def _save(data, affine, path: Path) -> bool:
    try:
        nib.save(nib.Nifti1Image(data, affine), path)
    except Exception:
        return False  # nibabel itself cannot write it (e.g. a zero-sized array): not our input
    return True


@FUZZ
@given(case=nifti_files(), magnitude=st.booleans(), rescale=st.booleans())
def test_images_are_read_or_refused_by_name(case, magnitude, rescale):
    from t2quant.io.images import read_image

    path = _tmp() / "image.nii.gz"
    if not _save(*case, path):
        return
    image = _read_or_refused(
        lambda: read_image(path, ndims=(2, 3), magnitude=magnitude, rescale=rescale), path
    )
    if image is _REFUSED:
        return
    assert image.data.dtype == np.float32 and image.data.ndim in (2, 3)
    assert np.isfinite(image.affine).all()
    valid = ~image.invalid
    assert np.isfinite(image.data[valid]).all()  # huge values refused or rescaled, never inf
    if magnitude:
        assert (image.data[valid] >= 0).all()


@FUZZ
@given(case=nifti_files())
def test_label_masks_are_whole_labels_or_refused_by_name(case):
    from t2quant.io.images import read_label_mask

    path = _tmp() / "mask.nii.gz"
    if not _save(*case, path):
        return
    result = _read_or_refused(lambda: read_label_mask(path), path)
    if result is _REFUSED:
        return
    labels, _ = result
    raw = np.asarray(nib.load(path).get_fdata())
    np.testing.assert_array_equal(labels, raw.reshape(labels.shape))  # nothing truncated
    assert labels.min(initial=0) >= 0


@FUZZ
@given(case=nifti_files(), n_echoes=st.integers(1, 4))
def test_echo_files_load_or_are_refused_by_name(case, n_echoes):
    from t2quant.io.echoes import load_echo_files

    folder = _tmp()
    paths = []
    for n in range(1, n_echoes + 1):
        path = folder / f"sub-1_echo-{n}_MESE.nii.gz"
        if not _save(*case, path):
            return
        (folder / f"sub-1_echo-{n}_MESE.json").write_text(json.dumps({"EchoTime": 0.01 * n}))
        paths.append(path)
    try:
        me = load_echo_files(paths)
    except InputError as error:
        assert any(p.name in str(error) for p in paths) or str(folder) in str(error), str(error)
        return
    assert me.data.shape[-1] == n_echoes
    assert me.te_ms.tolist() == [10.0 * n for n in range(1, n_echoes + 1)]


# --- TOML configurations ------------------------------------------------------------------------

toml_values = st.one_of(
    st.booleans(), st.integers(-5, 10), st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["true", "false", "yes", "t2_mean_ms", "crossed", "satterthwaite", "x"]),
    st.lists(st.sampled_from(["bmi", "sex", 1, True]), max_size=3),
)  # fmt: skip
model_keys = st.sampled_from(["outcome", "reml", "formulation", "inference", "fdr",
                              "baseline_adjustment", "covariates", "min_participants_per_arm",
                              "exclude_failed", "unknown_key"])  # fmt: skip


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


@FUZZ
@given(settings_=st.dictionaries(model_keys, toml_values, max_size=5),
       moderators=st.one_of(st.none(), st.lists(st.sampled_from(["sex", "nope", 3]),
                                                 max_size=2)))  # fmt: skip
def test_stats_configs_are_typed_or_refused_by_name(settings_, moderators):
    from t2quant.group.stats.config import MODEL_TYPES, load_config

    lines = []
    if moderators is not None:
        lines.append(f"moderators = {_toml_value(moderators)}")
    lines.append("[model]")
    lines += [f"{k} = {_toml_value(v)}" for k, v in settings_.items()]
    path = _tmp() / "stats.toml"
    path.write_text("\n".join(lines) + "\n")
    config = _read_or_refused(lambda: load_config(path), path)
    if config is _REFUSED:
        return
    for key, value in settings_.items():  # every accepted value kept its TOML type
        assert isinstance(value, MODEL_TYPES[key]) and not (
            MODEL_TYPES[key] is int and isinstance(value, bool)
        )  # fmt: skip
        got = getattr(config.model, key)
        assert got == (tuple(value) if isinstance(value, list) else value)
