"""Progress lines: one per T2 map and per session, with a stage-weighted ETA."""

from __future__ import annotations

import io
from types import SimpleNamespace

import t2quant.pipeline.progress as bidsapp
from t2quant.pipeline.progress import Progress


def _node(name: str, session: str = "ses_baseline_wf"):
    return SimpleNamespace(name=name, fullname=f"t2quant_wf.sub_01_wf.{session}.x.{name}")


def test_progress_lines_and_eta(monkeypatch):
    clock = iter([0.0, 12.0, 30.0, 40.0])
    monkeypatch.setattr(bidsapp.time, "monotonic", lambda: next(clock))
    stream = io.StringIO()
    progress = Progress(2, participants=1, stream=stream)  # 2 sessions, total work 2.0
    progress(_node("fit_t2"), "start")  # ignored
    progress(_node("fit_t2"), "end")  # work 0.6 at 12 s -> 1.4 left -> ETA 28 s
    progress(_node("collect"), "end")  # not a stage: no line, no work
    for name in ("seg_image", "segment", "features"):
        progress(_node(name), "end")
    sink = _node("ds_session")
    sink.fullname = "t2quant_wf.sub_01_wf.ses_baseline_wf.ds_session"
    progress(sink, "end")  # work 0.6+0.28 = 0.88 at 30 s -> 1.12 left -> ETA 38 s
    lines = stream.getvalue().splitlines()
    assert lines == [
        "[t2quant] T2 maps 1/2, elapsed 0m12s, ETA 0m28s",
        "[t2quant] sessions 1/2 (sub-01/ses-baseline), elapsed 0m30s, ETA 0m38s",
    ]


def test_failed_nodes_print_nothing_while_running(monkeypatch):
    """A failure is reported once, at the end, by t2quant.pipeline.failures."""
    monkeypatch.setattr(bidsapp.time, "monotonic", lambda: 0.0)
    stream = io.StringIO()
    Progress(1, stream=stream)(_node("segment"), "exception")
    assert stream.getvalue() == ""


def test_a_crash_file_is_one_line(tmp_path):
    from t2quant.pipeline.failures import failures_since

    crash = tmp_path / "crash-20261127-120000-root-fit_t2-abc.txt"
    crash.write_text(
        "Node: t2quant_wf.sub_01_wf.ses_wk06_wf.t2map_wf.fit_t2\n"
        "Working directory: /w/t2quant_wf/sub_01_wf/ses_wk06_wf/t2map_wf/fit_t2\n\n"
        "Node inputs:\n\nstem = sub-01_ses-wk06\n\n"
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1, in f\n'
        "t2quant.errors.InputError: /b/anat: echo entities [1, 2, 4] are not 1..3; "
        "an echo is missing\n"
    )
    [failure] = failures_since(tmp_path, since=0)
    assert failure.line() == (
        "sub-01/ses-wk06 fit_t2: /b/anat: echo entities [1, 2, 4] are not 1..3; an echo is "
        f"missing (crash file: {crash})"
    )
    other = tmp_path / "crash-2-root-report-x.txt"
    other.write_text(
        "Node: t2quant_wf.sub_02_wf.report\n\nTraceback (most recent call last):\n"
        "KeyError: 'level'\n"
    )
    lines = [f.line() for f in failures_since(tmp_path, since=0)]
    assert f"sub-02 report: KeyError: 'level' (crash file: {other})" in lines
