"""Concise progress of the participant level: a line per finished T2 map and per session.

The ETA weighs the stages by their share of a session's run time (the T2 fit dominates), so
it is useful even though the parallel plugins tend to fit every session before they segment
any.
"""

from __future__ import annotations

import sys
import time

__all__ = ["STAGE_WEIGHTS", "Progress"]

# share of a session's run time per node, from the node run times of the 40-participant demo
# (fit 2.3 s, segmentation 0.8 s, features 0.23 s, report 1.5 s per 3 sessions)
STAGE_WEIGHTS = {"fit_t2": 0.6, "seg_image": 0.01, "segment": 0.2, "features": 0.06,
                 "ds_session": 0.01, "report": 0.12}  # fmt: skip


class Progress:
    """A Nipype ``status_callback`` printing progress lines (see the module docstring)."""

    def __init__(self, total: int, participants: int = 1, stream=None) -> None:
        self.total, self.stream, self.start = total, stream or sys.stdout, time.monotonic()
        self.fits = self.sessions = 0
        self.work = 0.0
        # a report covers all of a participant's sessions
        self.report_weight = STAGE_WEIGHTS["report"] * total / max(participants, 1)

    def __call__(self, node, status: str) -> None:
        """Nipype ``status_callback``."""
        if status != "end" or node.name not in STAGE_WEIGHTS:
            return
        self.work += self.report_weight if node.name == "report" else STAGE_WEIGHTS[node.name]
        if node.name == "fit_t2":
            self.fits += 1
            self.line(f"T2 maps {self.fits}/{self.total}")
        elif node.name == "ds_session":
            self.session_finished(_where(node.fullname))

    def session_finished(self, where: str, *, count_work: bool = False) -> None:
        self.sessions += 1
        if count_work:
            self.work = float(self.sessions)
        self.line(f"sessions {self.sessions}/{self.total} ({where})")

    def line(self, what: str) -> None:
        elapsed = time.monotonic() - self.start
        left = max(self.total - self.work, 0.0)
        eta = _clock(elapsed / self.work * left) if self.work > 0 else "?"
        print(f"[t2quant] {what}, elapsed {_clock(elapsed)}, ETA {eta}", file=self.stream,
              flush=True)  # fmt: skip


def _where(fullname: str) -> str:
    """``t2quant_wf.sub_01_wf.ses_wk06_wf.ds_session`` -> ``sub-01/ses-wk06``."""
    parts = fullname.split(".")[-3:-1]
    return "/".join(p.removesuffix("_wf").replace("_", "-", 1) for p in parts)


def _clock(seconds: float) -> str:
    minutes, sec = divmod(round(seconds), 60)
    return f"{minutes}m{sec:02d}s"
