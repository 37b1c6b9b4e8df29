"""No exception inside the scheduler leaves a run waiting forever."""

from __future__ import annotations

import threading

import pytest
from nipype.interfaces.utility import Function
from nipype.pipeline import engine as pe

from t2quant.pipeline.plugins import CallbackFailed, guarded_callback, make_plugin


def _add_one(x):
    return x + 1


def _die(x):
    import os

    os._exit(3)  # the worker process disappears without a result


def _workflow(tmp_path, function) -> pe.Workflow:
    wf = pe.Workflow(name="wf", base_dir=str(tmp_path))
    wf.config["execution"] = {"crashdump_dir": str(tmp_path / "crash")}
    a = pe.Node(Function(input_names=["x"], output_names=["y"], function=_add_one), name="a")
    a.inputs.x = 1
    b = pe.Node(Function(input_names=["x"], output_names=["y"], function=function), name="b")
    wf.connect(a, "y", b, "x")
    return wf


def _run_with_deadline(target, seconds: float = 120.0) -> BaseException | None:
    """Run ``target`` in a thread; fail the test if it is still running after ``seconds``."""
    outcome: list = []

    def call() -> None:
        try:
            target()
        except BaseException as exc:
            outcome.append(exc)
        else:
            outcome.append(None)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the run hung"
    return outcome[0]


@pytest.mark.parametrize("plugin", ["Linear", "MultiProc"])
def test_a_failing_status_callback_ends_the_run(tmp_path, plugin):
    errors: list = []

    def progress(node, status):
        if status == "end":
            raise FileNotFoundError("gone")

    args = {"n_procs": 2, "status_callback": guarded_callback(progress, errors)}
    wf = _workflow(tmp_path, _add_one)
    error = _run_with_deadline(lambda: wf.run(plugin=make_plugin(plugin, args)))
    assert isinstance(error, CallbackFailed) and "FileNotFoundError('gone')" in str(error)
    assert len(errors) == 1


def test_a_worker_that_dies_fails_its_node_instead_of_hanging(tmp_path):
    wf = _workflow(tmp_path, _die)
    error = _run_with_deadline(lambda: wf.run(plugin=make_plugin("MultiProc", {"n_procs": 2})))
    assert error is not None
    assert "BrokenProcessPool" in str(error) or "terminated abruptly" in str(error)
