"""What a person watching `dfscan run` sees: a progress bar on stderr (files done of total, videos/s,
errors, ETA) and one-line notes above it. The total is unknown until the counting walk, which runs
in a background thread, finishes."""

from __future__ import annotations

import time


class Progress:
    def __init__(self, enabled: bool):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
        from rich.progress import Progress as RichProgress

        self.bar = RichProgress(
            TextColumn("[bold]scanning"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:.1f} videos/s"), TextColumn("errors {task.fields[errors]}"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=Console(stderr=True), disable=not enabled, transient=False)
        self.task = self.bar.add_task("scan", total=None, rate=0.0, errors=0)
        self.started = time.monotonic()

    def update(self, done: int, errors: int, total: int | None) -> None:
        rate = done / max(time.monotonic() - self.started, 1e-6)
        self.bar.update(self.task, completed=done, total=total, rate=rate, errors=errors)

    def log(self, message: str) -> None:
        self.bar.console.print(message, markup=False, highlight=False)
