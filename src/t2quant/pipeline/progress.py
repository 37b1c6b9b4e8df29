"""One progress display for a run: a bar per stage, with counts and an ETA.

On a terminal the stages are a live ``rich`` display (one bar each, redrawn in place). When the
output is not a terminal (CI, Slurm logs, a pipe) the same progress is plain lines, at most one
per stage each tenth of the way (and when it completes), so a log stays short.

:class:`NodeProgress` is the Nipype ``status_callback`` that advances the participant level's
stages (T2 fits, segmentation, features, reports) as their nodes finish.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

__all__ = ["NODE_STAGES", "NodeProgress", "StageProgress", "clock"]

#: Participant-level node name -> (stage key, label).
NODE_STAGES = {
    "fit_t2": ("fit", "T2 fits"),
    "segment": ("segment", "segmentation"),
    "features": ("features", "features and grades"),
    "report": ("report", "participant reports"),
}


def clock(seconds: float) -> str:
    """``75.2`` -> ``1m15s``."""
    minutes, sec = divmod(round(seconds), 60)
    return f"{minutes}m{sec:02d}s"


@dataclass
class _Stage:
    label: str
    total: int
    done: int = 0
    started: float | None = None
    last_tenth: int = 0
    task: object = None

    def eta(self, now: float) -> str:
        if not self.done or self.started is None:
            return "?"
        rate = (now - self.started) / self.done
        return clock(rate * (self.total - self.done))


@dataclass
class StageProgress:
    """Stages of a run, shown live (``rich``) or as plain lines; use as a context manager."""

    stream: TextIO | None = None
    live: bool | None = None
    stages: dict[str, _Stage] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.stream = self.stream or sys.stdout
        if self.live is None:
            self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self._rich = None
        self._start = time.monotonic()

    def __enter__(self) -> StageProgress:
        if self.live:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,  # fmt: skip
                TimeRemainingColumn,
            )

            self._rich = Progress(
                TextColumn("[bold]{task.description:<22}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                console=Console(file=self.stream), transient=False,
            )  # fmt: skip
            self._rich.start()
            for stage in self.stages.values():
                stage.task = self._rich.add_task(
                    stage.label, total=stage.total, start=stage.started is not None
                )
        return self

    def __exit__(self, *exc) -> None:
        if self._rich is not None:
            self._rich.stop()
            self._rich = None

    def add(self, key: str, label: str, total: int, *, started: bool = True) -> None:
        """A stage of ``total`` steps (shown from now on). Its clock, which the ETA divides,
        runs from now, or with ``started=False`` from the first :meth:`begin`."""
        stage = _Stage(label, max(int(total), 0), started=time.monotonic() if started else None)
        if self._rich is not None:
            stage.task = self._rich.add_task(label, total=stage.total, start=started)
        self.stages[key] = stage

    def begin(self, key: str) -> None:
        """The first step of stage ``key`` has started (later calls change nothing)."""
        stage = self.stages[key]
        if stage.started is None:
            stage.started = time.monotonic()
            if self._rich is not None:
                self._rich.start_task(stage.task)

    def advance(self, key: str, n: int = 1) -> None:
        """``n`` more steps of stage ``key`` are done."""
        stage = self.stages[key]
        now = time.monotonic()
        stage.done = min(stage.done + n, stage.total)
        if self._rich is not None:
            self._rich.update(stage.task, completed=stage.done)
            return
        tenth = stage.done * 10 // max(stage.total, 1)
        if tenth > stage.last_tenth or stage.done == stage.total:
            stage.last_tenth = tenth
            self.line(
                f"{stage.label} {stage.done}/{stage.total} "
                f"({100 * stage.done // max(stage.total, 1)}%), elapsed "
                f"{clock(now - self._start)}, ETA {stage.eta(now)}"
            )

    def line(self, text: str) -> None:
        """A plain message (above the live bars on a terminal)."""
        if self._rich is not None:
            self._rich.console.print(f"[t2quant] {text}", markup=False, highlight=False)
        else:
            print(f"[t2quant] {text}", file=self.stream, flush=True)


@dataclass
class NodeProgress:
    """The Nipype ``status_callback`` of the participant level: advances a stage each time
    one of its nodes finishes."""

    display: StageProgress
    sessions: int
    participants: int

    def __post_init__(self) -> None:
        for node, (key, label) in NODE_STAGES.items():
            total = self.participants if node == "report" else self.sessions
            self.display.add(key, label, total, started=False)

    def __call__(self, node, status: str) -> None:
        if node.name not in NODE_STAGES:
            return
        key = NODE_STAGES[node.name][0]
        if status == "start":  # a stage's clock (and ETA) runs from its first node's start
            self.display.begin(key)
        elif status == "end":
            self.display.begin(key)  # a cached node ends without having started
            self.display.advance(key)
