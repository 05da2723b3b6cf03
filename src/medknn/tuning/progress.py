"""The progress bar of ``medknn tune``: the budget spent, trials done, the best so far, the time
left and the current trial."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn
from rich.text import Text

from medknn.tuning.budget import describe_seconds


class TimeLeft(ProgressColumn):
    def __init__(self, deadline: float) -> None:
        super().__init__()
        self.deadline = deadline

    def render(self, task: Task) -> Text:
        return Text(f"{describe_seconds(self.deadline - time.time())} left", style="cyan")


class StudyProgress:
    """One bar: the budget spent, trials done, the best so far, time left, the current trial."""

    def __init__(self, console: Console, started: float, seconds: float, enabled: bool) -> None:
        self.started, self.seconds = started, seconds
        self.progress = Progress(
            TextColumn("[bold]tune"),
            BarColumn(),
            TextColumn("{task.fields[status]}"),
            TimeLeft(started + seconds),
            TextColumn("{task.fields[current]}"),
            console=console,
            disable=not enabled,
            transient=False,
        )
        self.task = self.progress.add_task("tune", total=seconds, status="", current="")

    def __enter__(self) -> StudyProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def update(self, status: str, current: str = "") -> None:
        elapsed = min(self.seconds, time.time() - self.started)
        self.progress.update(self.task, completed=elapsed, status=status, current=current)
