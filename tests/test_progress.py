"""The progress display: plain lines (at most one per tenth of a stage) when the output is
not a terminal, a live rich display when it is, and the participant level's node stages."""

from __future__ import annotations

import io
from types import SimpleNamespace

import t2quant.pipeline.progress as progress_module
from t2quant.pipeline.progress import NodeProgress, StageProgress, clock


def _node(name: str, session: str = "ses_baseline_wf"):
    return SimpleNamespace(name=name, fullname=f"t2quant_wf.sub_01_wf.{session}.x.{name}")


def test_plain_lines_only_each_tenth_of_a_stage(monkeypatch):
    clock_values = iter([0.0, 0.0, *[10.0 * i for i in range(1, 21)]])  # display, stage, steps
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: next(clock_values))
    stream = io.StringIO()
    with StageProgress(stream=stream) as display:  # a StringIO is not a terminal
        display.add("fit", "T2 fits", 20)
        for _ in range(20):
            display.advance("fit")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 10  # one per tenth, not 20
    assert lines[0] == "[t2quant] T2 fits 2/20 (10%), elapsed 0m20s, ETA 3m00s"
    assert lines[-1] == "[t2quant] T2 fits 20/20 (100%), elapsed 3m20s, ETA 0m00s"


def test_node_stages_of_the_participant_level(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: now[0])
    stream = io.StringIO()
    display = StageProgress(stream=stream)
    callback = NodeProgress(display, sessions=3, participants=1)
    assert {k: (s.label, s.total) for k, s in display.stages.items()} == {
        "fit": ("T2 fits", 3), "segment": ("segmentation", 3),
        "features": ("features and grades", 3), "report": ("participant reports", 1),
    }  # fmt: skip
    now[0] = 100.0  # the fits begin 100 s after the run: their ETA counts from then
    callback(_node("fit_t2"), "start")
    now[0] = 110.0
    callback(_node("fit_t2"), "end")
    callback(_node("collect"), "end")  # not a stage
    callback(_node("report"), "end")
    callback(_node("segment"), "exception")  # failures are reported once, at the end
    assert display.stages["fit"].done == 1 and display.stages["segment"].done == 0
    assert display.stages["segment"].started is None  # no segmentation node has started
    assert stream.getvalue().splitlines() == [
        "[t2quant] T2 fits 1/3 (33%), elapsed 1m50s, ETA 0m20s",
        "[t2quant] participant reports 1/1 (100%), elapsed 1m50s, ETA 0m00s",
    ]


def test_live_display_on_a_terminal():
    stream = io.StringIO()
    with StageProgress(stream=stream, live=True) as display:
        display.add("study", "synthetic study", 4)
        for _ in range(4):
            display.advance("study")
        display.line("a message")
    text = stream.getvalue()
    assert "synthetic study" in text and "4/4" in text and "[t2quant] a message" in text


def test_clock():
    assert clock(75.2) == "1m15s" and clock(0) == "0m00s" and clock(3600) == "60m00s"
