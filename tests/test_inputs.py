"""Every bad input of the issue "refused by name, nothing used silently", one test each.

Each case must give a one-line error naming the file (or option) and the problem, or a
flagged result; never another exception and never a silent coercion.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from t2quant.cli import main
from t2quant.io import write_tsv
from test_fit_cli import AFFINE, SHAPE, TE, write_bids_session

SAGITTAL = np.diag([1.0, 1.0, 1.0, 1.0])


@pytest.fixture(scope="module")
def echoes():
    t2 = np.zeros(SHAPE)
    t2[3:13, 2:10] = 80.0
    signal = np.where(t2[..., None] > 0, 1500 * np.exp(-TE / 80.0), 5.0)
    return np.round(signal).astype(np.uint16)


def _one_line_error(capsys, argv, *fragments, code: int = 2) -> str:
    assert main([str(a) for a in argv]) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err  # one line
    for fragment in fragments:
        assert str(fragment) in err, err
    return err


# --- sidecars --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (None, "null"),
        ([0.01], "[0.01]"),
        ({"v": 1}, '{"v": 1}'),
        ("0.036s", '"0.036s"'),
        (True, "true"),
        (-0.01, "positive"),
    ],
)
def test_echo_time_of_the_wrong_type_names_the_sidecar(tmp_path, echoes, capsys, value, words):
    session = write_bids_session(tmp_path / "bids", echoes)
    side = session / "anat" / "sub-01_ses-01_echo-2_MESE.json"
    side.write_text(json.dumps({"EchoTime": value}))
    _one_line_error(capsys, ["fit", session, "-o", tmp_path / "o"], side, "EchoTime", words)


def test_a_deeply_nested_sidecar_is_refused(tmp_path, echoes, capsys):
    session = write_bids_session(tmp_path / "bids", echoes)
    side = session / "anat" / "sub-01_ses-01_echo-2_MESE.json"
    side.write_text('{"EchoTime": 0.024, "x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    _one_line_error(capsys, ["fit", session, "-o", tmp_path / "o"], side, "nested")


def test_te_that_disagrees_with_the_sidecars_is_refused(tmp_path, echoes, capsys):
    session = write_bids_session(tmp_path / "bids", echoes)
    files = sorted((session / "anat").glob("*_MESE.nii.gz"))
    doubled = [str(t) for t in 2 * TE]
    _one_line_error(capsys, ["fit", *files, "--te", *doubled, "-o", tmp_path / "o"],
                    "--te", "disagrees with the sidecars")  # fmt: skip
    assert main(["fit", *map(str, files), "--te", *map(str, TE), "-o", str(tmp_path / "o")]) == 0


# --- options and masks -------------------------------------------------------------------------


def test_a_noise_sigma_that_is_not_a_number_names_the_option(tmp_path, echoes, capsys):
    session = write_bids_session(tmp_path / "bids", echoes)
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", str(session), "-o", str(tmp_path / "o"), "--noise-sigma", "abc"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --noise-sigma: must be a number, got 'abc'" in err


def test_an_all_zero_mask_is_refused(tmp_path, echoes, capsys):
    session = write_bids_session(tmp_path / "bids", echoes)
    mask = tmp_path / "mask.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros(SHAPE, np.uint8), AFFINE), mask)
    _one_line_error(capsys, ["fit", session, "-o", tmp_path / "o", "--mask", mask], mask,
                    "selects no voxel")  # fmt: skip
    assert not (tmp_path / "o" / "sub-01_ses-01_desc-epg_T2ms.nii.gz").exists()


def test_a_thresholds_file_that_is_not_json_names_the_file(tmp_path, capsys):
    from t2quant.errors import InputError
    from t2quant.pfirrmann import load_thresholds

    bad = tmp_path / "thr.json"
    bad.write_text("thresholds: 0.3\n")
    with pytest.raises(InputError, match=r"thr\.json: the thresholds file is not valid JSON"):
        load_thresholds(bad)
    bad.write_text(json.dumps({"thresholds": {"band_depth": {"value": "0.1", "scale": 1}}}))
    with pytest.raises(InputError, match=r"thr\.json: threshold"):
        load_thresholds(bad)


# --- images ------------------------------------------------------------------------------------


def _sagittal_t2w(path: Path, data: np.ndarray) -> Path:
    nib.save(nib.Nifti1Image(data, AFFINE), path)
    return path


def test_a_t2w_with_non_finite_voxels_is_masked_and_flagged(tmp_path):
    from t2quant.segmentation.files import segment_to_files

    rng = np.random.default_rng(0)
    data = rng.uniform(100, 200, (40, 60, 8))
    data[10:20, 20:40, :] = np.nan
    data[0, 0, 0] = np.inf
    path = _sagittal_t2w(tmp_path / "sub-1_T2w.nii.gz", data)
    seg, paths = segment_to_files([path], tmp_path / "seg")
    assert "invalid_voxels" in seg.flags
    warning = next(w for w in seg.warnings if "masked out" in w)
    assert "1601 voxels" in warning and "[0:20, 0:40, 0:8]" in warning
    assert not seg.labels[10:20, 20:40].any()
    record = json.loads(paths["discs_json"].read_text())
    assert "invalid_voxels" in record["Flags"]


def test_negative_voxels_in_a_magnitude_image_are_flagged_not_used(tmp_path):
    from t2quant.segmentation.files import load_t2w_image

    data = np.full((30, 40, 5), 150.0)
    data.flat[::7] = -1e6
    src = load_t2w_image([_sagittal_t2w(tmp_path / "t.nii.gz", data)], None)
    assert src.invalid.sum() == data.size // 7 + 1
    assert src.image.min() == 0  # masked, not -1e6
    assert "negative" in src.notes[0]


def test_a_mostly_non_finite_t2w_is_refused(tmp_path, capsys):
    data = np.full((30, 40, 5), np.nan)
    data[:5] = 100
    path = _sagittal_t2w(tmp_path / "t.nii.gz", data)
    _one_line_error(capsys, ["segment", path, "-o", tmp_path / "s"], path, "too much")


def test_huge_values_are_rescaled_for_a_t2w_and_refused_for_echoes(tmp_path, capsys):
    from t2quant.segmentation.files import load_t2w_image

    data = np.random.default_rng(1).uniform(1, 2, (30, 40, 5)) * 1e302
    src = load_t2w_image([_sagittal_t2w(tmp_path / "t.nii.gz", data)], None)
    assert np.isfinite(src.image).all() and src.image.max() == pytest.approx(1e6, rel=1e-3)
    assert "divided by" in src.notes[0]
    four = tmp_path / "e.nii.gz"
    nib.save(nib.Nifti1Image(np.stack([data] * 3, axis=-1), AFFINE), four)
    _one_line_error(capsys, ["fit", four, "--te", 10, 20, 30, "-o", tmp_path / "o"], four,
                    "beyond single precision")  # fmt: skip


def test_a_2d_t2w_is_a_single_slice_not_an_echo_train(tmp_path, capsys):
    path = tmp_path / "slice.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((40, 60), np.float32), np.eye(4)), path)
    main(["segment", str(path), "-o", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert "4D" not in err and "echoes on the fourth axis" not in err


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (np.full(SHAPE, 0.3), "fractional values (e.g. 0.3"),
        (np.full(SHAPE, -1.0), "labels run from -1"),
        (np.full(SHAPE, np.nan), "NaN or infinite"),
    ],
)
def test_a_label_mask_that_is_not_whole_labels_is_refused(tmp_path, capsys, data, words):
    image = _sagittal_t2w(tmp_path / "t.nii.gz", np.ones(SHAPE, np.float32) * 100)
    mask = tmp_path / "mask.nii.gz"
    nib.save(nib.Nifti1Image(data.astype(np.float32), AFFINE), mask)
    _one_line_error(capsys, ["segment", image, "-o", tmp_path / "s", "--labels-from",
                             "project", mask], mask, words)  # fmt: skip


# --- tables ------------------------------------------------------------------------------------


@pytest.fixture
def small_study(tmp_path) -> Path:
    bids = tmp_path / "bids"
    for sub in ("sub-01", "sub-02"):
        (bids / sub / "ses-baseline" / "anat").mkdir(parents=True)
    write_tsv(pd.DataFrame({"participant_id": ["sub-01", "sub-02"], "group": ["run", "control"]}),
              bids / "participants.tsv")  # fmt: skip
    (tmp_path / "derivatives").mkdir()
    return bids


def test_table_with_a_missing_derivatives_folder_is_refused(small_study, tmp_path, capsys):
    missing = tmp_path / "no" / "such"
    _one_line_error(capsys, ["table", small_study, missing, "-o", tmp_path / "t"], missing,
                    "no such derivatives folder")  # fmt: skip


def test_an_empty_participants_tsv_names_the_file(small_study, tmp_path, capsys):
    (small_study / "participants.tsv").write_text("")
    _one_line_error(capsys, ["table", small_study, tmp_path / "derivatives", "-o", tmp_path / "t"],
                    "participants.tsv", "empty")  # fmt: skip


def test_a_word_for_weeks_in_sessions_tsv_names_the_file(small_study, tmp_path, capsys):
    tsv = small_study / "sub-01" / "sub-01_sessions.tsv"
    tsv.write_text("session_id\tweeks\nses-baseline\tsix\n")
    _one_line_error(capsys, ["table", small_study, tmp_path / "derivatives", "-o", tmp_path / "t"],
                    tsv, "'weeks'", "whole numbers", "'six'")  # fmt: skip


def test_a_participant_listed_twice_is_refused(small_study, tmp_path, capsys):
    (small_study / "participants.tsv").write_text(
        "participant_id\tgroup\r\nsub-01\trun\r\nsub-02\tcontrol\r\nsub-01\trun\r\n"
    )
    _one_line_error(capsys, ["table", small_study, tmp_path / "derivatives", "-o", tmp_path / "t"],
                    "participants.tsv", "duplicated", "sub-01")  # fmt: skip


def test_validate_with_ids_without_sub_is_refused(tmp_path, capsys):
    keys = {"participant_id": ["01", "01"], "session": ["a", "a"], "level": ["L4/L5", "L5/S1"]}
    write_tsv(pd.DataFrame(keys | {"pfirrmann": [2, 3]}), tmp_path / "manual.tsv")
    auto = {**keys, "participant_id": ["sub-01"] * 2}
    write_tsv(pd.DataFrame(auto | {"pfirrmann_suggested": [2, 3]}), tmp_path / "auto.tsv")
    _one_line_error(capsys, ["validate", "--manual", tmp_path / "manual.tsv", "--auto",
                             tmp_path / "auto.tsv", "-o", tmp_path / "v"],
                    "manual.tsv", "sub- prefix")  # fmt: skip


def test_a_disc_measured_twice_is_refused(tmp_path):
    from t2quant.errors import InputError
    from t2quant.features.files import read_feature_tables

    row = {"participant_id": ["sub-01"], "session": ["a"], "level": ["L4/L5"], "qc_status": ["ok"]}
    for name in ("one", "two"):
        write_tsv(pd.DataFrame(row), tmp_path / f"{name}_discfeatures.tsv")
    with pytest.raises(InputError, match=r"measured twice.*sub-01 session 'a' L4/L5"):
        read_feature_tables(sorted(tmp_path.glob("*.tsv")))


# --- outputs -----------------------------------------------------------------------------------


def test_an_output_that_cannot_be_a_folder_is_refused_before_the_work(tmp_path, echoes, capsys):
    session = write_bids_session(tmp_path / "bids", echoes)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    _one_line_error(capsys, ["fit", session, "-o", blocker / "out"], blocker / "out",
                    "cannot create the output folder")  # fmt: skip


def test_a_read_only_output_folder_is_refused_before_the_work(tmp_path, echoes, capsys,
                                                              monkeypatch):  # fmt: skip
    import tempfile

    session = write_bids_session(tmp_path / "bids", echoes)
    out = tmp_path / "ro"
    out.mkdir()
    if os.geteuid() != 0:
        out.chmod(0o555)
    else:  # root writes anywhere: make the probe fail as a read-only folder would
        real = tempfile.mkstemp

        def refuse(*args, dir=None, **kwargs):
            if dir is not None and Path(dir) == out:
                raise PermissionError(13, "Permission denied")
            return real(*args, dir=dir, **kwargs)

        monkeypatch.setattr(tempfile, "mkstemp", refuse)
    _one_line_error(capsys, ["fit", session, "-o", out], out, "not writable")
    assert not list(out.iterdir())  # nothing was fitted first


def test_too_little_free_space_is_refused(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    from t2quant.errors import InputError
    from t2quant.io import check_writable

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(10**9, 10**9 - 10**6, 10**6))
    with pytest.raises(InputError, match=r"needs about 50 MB but its disk has 1 MB free"):
        check_writable(tmp_path / "o", need_bytes=50_000_000)


# --- the moderator stage -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def disc_table(tmp_path_factory) -> Path:
    from t2quant.synth.table import simulate_disc_table

    table, _ = simulate_disc_table(n_participants=10, seed=3)
    path = tmp_path_factory.mktemp("stats") / "discs.tsv"
    write_tsv(table, path)
    return path


def _stats(table: Path, out: Path, *extra) -> list:
    return ["stats", table, "-o", out, "--moderators", "none", *extra]


def test_duplicated_disc_rows_are_refused(disc_table, tmp_path, capsys):
    table = pd.read_csv(disc_table, sep="\t")
    doubled = tmp_path / "doubled.tsv"
    write_tsv(pd.concat([table, table.head(30)], ignore_index=True), doubled)
    _one_line_error(capsys, _stats(doubled, tmp_path / "o"), doubled,
                    "30 duplicated disc row(s)", "sub-01")  # fmt: skip


@pytest.mark.parametrize("value", ['"false"', '"yes"', "1", "0"])
def test_reml_must_be_a_toml_boolean(disc_table, tmp_path, capsys, value):
    config = tmp_path / "stats.toml"
    config.write_text(f"[model]\nreml = {value}\n")
    _one_line_error(capsys, _stats(disc_table, tmp_path / "o", "--config", config), config,
                    "[model] reml must be true or false")  # fmt: skip


@pytest.mark.parametrize(("value", "words"), [(-50.0, "negative t2_mean_ms"),
                                              (np.inf, "infinite t2_mean_ms")])  # fmt: skip
def test_impossible_t2_values_are_refused_with_the_discs(disc_table, tmp_path, capsys, value,
                                                         words):  # fmt: skip
    table = pd.read_csv(disc_table, sep="\t")
    table.loc[3, "t2_mean_ms"] = value
    bad = tmp_path / "bad.tsv"
    write_tsv(table, bad)
    _one_line_error(capsys, _stats(bad, tmp_path / "o"), bad, words,
                    f"{table.loc[3, 'participant_id']}")  # fmt: skip


def test_an_empty_disc_table_names_the_file(tmp_path, capsys):
    empty = tmp_path / "discs.tsv"
    empty.write_text("")
    _one_line_error(capsys, _stats(empty, tmp_path / "o"), empty, "cannot read the disc table")


def test_a_stats_config_that_is_not_toml_names_the_file(disc_table, tmp_path, capsys):
    config = tmp_path / "stats.toml"
    config.write_text("[model\nreml = true\n")
    _one_line_error(capsys, _stats(disc_table, tmp_path / "o", "--config", config), config,
                    "cannot read the stats configuration")  # fmt: skip
