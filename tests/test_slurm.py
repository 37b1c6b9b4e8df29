"""The participant level through a real Slurm (Nipype's SLURM and SLURMGraph plugins).

Uses the cluster named by ``SLURM_CONF`` when ``sinfo`` answers; otherwise, as root with
Debian's slurm and munge packages installed (CI: ``.ci/system-packages``), starts a
single-node cluster on localhost with ``pipelines/slurm/local-cluster.sh``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from t2quant.cli import main
from t2quant.io import read_tsv
from t2quant.pipeline.slurm import graph_job_names, parse_queue

REPO = Path(__file__).resolve().parents[1]
LOCAL_CLUSTER = REPO / "pipelines" / "slurm" / "local-cluster.sh"


def test_graph_job_names_come_from_the_submit_script(tmp_path):
    script = tmp_path / "submit_jobs.sh"
    script.write_text(
        "#!/usr/bin/env bash\n# Condense format attempted\n"
        "j0_fit_t2=$(sbatch -o a.o -e a.e  -J j0_fit_t2 a.sh | awk '/^Submitted/ {print $4}')\n"
        "j1_segment=$(sbatch --dependency=afterok:${j0_fit_t2} -J j1_segment b.sh | awk '')\n"
    )
    assert graph_job_names(script) == ["j0_fit_t2", "j1_segment"]


def test_parse_queue_keeps_only_our_jobs_with_their_reason():
    text = (
        "j1_segment|PENDING|Dependency\nother|RUNNING|None\nj2_x|PENDING|DependencyNeverSatisfied\n"
    )
    assert parse_queue(text, ["j1_segment", "j2_x", "j9_gone"]) == {
        "j1_segment": "PENDING Dependency",
        "j2_x": "PENDING DependencyNeverSatisfied",
    }


def _answers(env: dict) -> bool:
    if not shutil.which("sinfo"):
        return False
    result = subprocess.run(["sinfo", "-h"], env=env, capture_output=True, text=True)
    return result.returncode == 0 and bool(result.stdout.strip())


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """A Slurm cluster the tests can submit to; SLURM_CONF and LOGNAME set while in use."""
    saved = {key: os.environ.get(key) for key in ("SLURM_CONF", "LOGNAME")}
    os.environ.setdefault("LOGNAME", "root" if os.geteuid() == 0 else os.environ.get("USER", ""))
    started = None
    if not (os.environ.get("SLURM_CONF") and _answers(dict(os.environ))):
        if not (shutil.which("slurmctld") or Path("/usr/sbin/slurmctld").exists()):
            pytest.skip("Slurm is not installed (CI installs it: .ci/system-packages)")
        if os.geteuid() != 0:
            pytest.skip("no Slurm cluster configured and starting one needs root")
        started = tmp_path_factory.mktemp("slurm")
        subprocess.run(["bash", str(LOCAL_CLUSTER), "start", str(started)], check=True)
        os.environ["SLURM_CONF"] = str(started / "slurm.conf")
    yield os.environ["SLURM_CONF"]
    if started is not None:
        subprocess.run(["bash", str(LOCAL_CLUSTER), "stop", str(started)], check=False)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Two participants' baseline sessions, and their MultiProc derivatives as the reference."""
    from t2quant.synth.writer import StudySettings, write_synthetic_study

    root = tmp_path_factory.mktemp("slurmstudy")
    write_synthetic_study(root / "bids", StudySettings(n_participants=2, seed=5), jobs=2)
    assert main(_participant(root, "MultiProc")) == 0
    return root


def _participant(root: Path, plugin: str, *extra: str) -> list[str]:
    return [str(root / "bids"), str(root / f"out_{plugin}"), "participant", "--session-label",
            "baseline", "--work-dir", str(root / f"work_{plugin}"), "--plugin", plugin,
            "--nprocs", "2", *extra]  # fmt: skip


def _assert_same_derivatives(reference: Path, other: Path, *, only_shared: bool = False) -> None:
    files = sorted(p.relative_to(reference) for p in reference.rglob("sub-*/ses-*/anat/*"))
    assert len(files) >= 2 * 12
    theirs = sorted(p.relative_to(other) for p in other.rglob("sub-*/ses-*/anat/*"))
    assert set(files) <= set(theirs) if only_shared else files == theirs
    for rel in files:
        if rel.name.endswith(".nii.gz"):
            a, b = nib.load(reference / rel), nib.load(other / rel)
            np.testing.assert_array_equal(np.asanyarray(a.dataobj), np.asanyarray(b.dataobj))
            np.testing.assert_array_equal(a.affine, b.affine)
        else:
            assert (reference / rel).read_bytes() == (other / rel).read_bytes(), rel


@pytest.mark.slow
@pytest.mark.parametrize("plugin", ["SLURM", "SLURMGraph"])
def test_slurm_plugins_give_the_multiproc_derivatives(slurm, study, plugin):
    args = _participant(study, plugin, "--plugin-args", json.dumps({"sbatch_args": "--mem=2G"}))
    assert main(args) == 0
    _assert_same_derivatives(study / "out_MultiProc", study / f"out_{plugin}")
    logs = list((study / f"work_{plugin}").rglob("*.o")) + list(
        (study / f"work_{plugin}").rglob("slurm-*.out")
    )
    assert logs, "no Slurm job log: the jobs did not go through sbatch"
    sidecar = json.loads(
        (
            study
            / f"out_{plugin}"
            / "sub-01/ses-baseline/anat/sub-01_ses-baseline_discfeatures.json"
        ).read_text()
    )
    assert (
        sidecar["Sources"]["labels"]
        == "bids::sub-01/ses-baseline/anat/sub-01_ses-baseline_dseg.nii.gz"
    )


@pytest.mark.slow
def test_slurm_graph_reports_a_failed_job(slurm, study, tmp_path, capsys):
    broken = tmp_path / "bids"
    shutil.copytree(study / "bids" / "sub-01", broken / "sub-01")
    shutil.copy(study / "bids" / "dataset_description.json", broken)
    echo = next((broken / "sub-01" / "ses-baseline" / "anat").glob("*_echo-1_MESE.nii.gz"))
    echo.write_bytes(b"not a nifti")
    # the preflight would refuse the corrupt echo; it must reach fit_t2
    args = [str(broken), str(tmp_path / "out"), "participant", "--session-label", "baseline",
            "--work-dir", str(tmp_path / "work"), "--plugin", "SLURMGraph",
            "--skip-bids-validation"]  # fmt: skip
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # one line: the session, the node, the message, the crash file
    assert err[0].startswith("t2quant: failed: sub-01/ses-baseline fit_t2: ")
    assert "as NIfTI" in err[0] and "(crash file: " in err[0]
    assert Path(err[0].rsplit("(crash file: ", 1)[1].rstrip(")")).is_file()


def _wait_gone(job_ids: list[str], timeout_s: float = 900) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        queue = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True)
        if not any(line.split("_")[0] in job_ids for line in queue.stdout.split()):
            return
        time.sleep(1.0)
    raise TimeoutError(f"jobs {job_ids} still queued")


@pytest.mark.slow
def test_array_template_runs_participants_then_the_group(slurm, study):
    out, work = study / "out_array", study / "work_array"
    env = os.environ | {
        "T2QUANT": str(Path(sys.executable).with_name("t2quant")),
        "PARTICIPANT_ARGS": "--t2-method epg",
    }
    submitted = subprocess.run(
        ["bash", str(REPO / "pipelines/slurm/submit.sh"), str(study / "bids"), str(out),
         str(work), "--", "--mem=2G"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    jobs = submitted.stdout.split("jobs:")[1].split()
    assert len(jobs) == 2
    _wait_gone(jobs)
    logs = sorted((work / "logs").glob("*.log"))
    assert [p.name.split("_")[0] for p in logs] == ["group", "participant", "participant"]
    _assert_same_derivatives(study / "out_MultiProc", out, only_shared=True)
    table = read_tsv(out / "group" / "discs.tsv")
    assert len(table) == 2 * 3 * 7 and table["t2_mean_ms"].notna().sum() >= 40
    assert (out / "group" / "moderators.tsv").is_file() and (out / "group.html").is_file()
