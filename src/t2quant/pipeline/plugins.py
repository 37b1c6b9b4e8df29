"""Nipype's local plugins with the two holes that can hang a run closed.

- MultiProc learns that a node finished from a callback on the worker's future. If that
  future fails (a worker killed, a result that cannot be unpickled) Nipype's callback raises
  in the pool's thread, the result never arrives and the scheduler waits for it forever.
  :class:`GuardedMultiProcPlugin` turns such a future into a failed node with its traceback.
- A status callback that raises (t2quant's progress display, say) must end the run, not
  stall it: :func:`guarded_callback` records the error, and the guarded plugins re-raise it
  from the scheduler loop so that the run stops and exits 1.
"""

from __future__ import annotations

import traceback as tb
from collections.abc import Callable

from nipype.pipeline.plugins.linear import LinearPlugin
from nipype.pipeline.plugins.multiproc import MultiProcPlugin

__all__ = ["GuardedLinearPlugin", "GuardedMultiProcPlugin", "guarded_callback", "make_plugin"]


class CallbackFailed(RuntimeError):
    """The status callback raised; the run is stopped."""


def guarded_callback(callback: Callable, errors: list) -> Callable:
    """Wrap a Nipype ``status_callback`` so that its exception is recorded in ``errors`` and
    re-raised as :class:`CallbackFailed`, which the scheduler loop does not swallow."""

    def call(node, status: str) -> None:
        try:
            callback(node, status)
        except Exception as exc:
            errors.append(exc)
            raise CallbackFailed(f"status callback failed on {node.fullname}: {exc!r}") from exc

    return call


class GuardedMultiProcPlugin(MultiProcPlugin):
    """MultiProc whose futures can never leave the scheduler waiting (see the module)."""

    def _async_callback(self, args):
        try:
            result = args.result()
        except BaseException as exc:  # the worker or the pool failed, not the node
            taskid = next((t for t, f in list(self._task_obj.items()) if f is args), None)
            if taskid is None:
                return
            text = "".join(tb.format_exception(type(exc), exc, exc.__traceback__))
            result = {"taskid": taskid, "result": None, "traceback": [text]}
        self._taskresult[result["taskid"]] = result


class GuardedLinearPlugin(LinearPlugin):
    """Linear, for symmetry: its callbacks already run in the main thread."""


def make_plugin(name: str, plugin_args: dict):
    """A plugin instance for ``workflow.run``: the guarded local plugins, Nipype's own
    batch plugins by name."""
    if name == "MultiProc":
        return GuardedMultiProcPlugin(plugin_args=plugin_args)
    if name == "Linear":
        return GuardedLinearPlugin(plugin_args=plugin_args)
    return name
