"""The wall-clock budget of ``medknn tune``: parsing "90s", "60m", "2h", "1h30m", and the time a
trial will take, estimated from the trials that already ran."""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Iterable
from dataclasses import dataclass

from medknn.errors import ConfigError

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
# A trial's user attribute when it was stopped because it would overrun the budget: the deadline
# of the command that stopped it, so that its other workers do not take it up again, while a
# rerun (a new deadline) resumes it.
STOPPED_FOR_BUDGET = "stopped_for_budget"
SAFETY = 1.2  # a trial is started only if 1.2 × its estimate fits in the time left


def parse_budget(budget: str | float | int) -> float:
    """Seconds of ``budget``: a number of seconds, or "90s", "60m", "2h", "1h30m", "1d"."""
    if isinstance(budget, int | float) and not isinstance(budget, bool):
        seconds = float(budget)
    else:
        text = str(budget).strip().lower().replace(" ", "")
        if re.fullmatch(r"\d+(\.\d+)?", text):
            text += "s"
        parts = _PART.findall(text)
        if not text or "".join(n + u for n, u in parts) != text:
            raise ConfigError(
                f"--budget {budget!r}: write a wall-clock time such as 90s, 60m, 2h or 1h30m."
            )
        seconds = sum(float(number) * _UNITS[unit] for number, unit in parts)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(f"--budget {budget!r} must be a positive time, e.g. 60m.")
    return seconds


def describe_seconds(seconds: float) -> str:
    """``4 min 10 s``, ``1 h 05 min``, ``12 s``."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def budget_flag(seconds: float) -> str:
    """A --budget value of at least ``seconds``, rounded up to whole minutes."""
    return f"{max(1, math.ceil(seconds / 60))}m"


@dataclass(frozen=True)
class TrialTiming:
    """What a trial that ran took: seconds outside its epochs (data, index, scoring), seconds per
    epoch, at which image size, for which method."""

    method: str
    image_size: int
    overhead_seconds: float
    epoch_seconds: float


def estimate_seconds(
    timings: Iterable[TrialTiming], *, method: str, image_size: int, epochs: int
) -> float | None:
    """The time a trial of ``method`` at ``image_size`` for ``epochs`` epochs should take: the
    median over earlier trials (of the same method where there are some) of their time, with
    per-epoch and overhead seconds scaled by the number of pixels. None before any trial ran."""
    timings = list(timings)
    same = [t for t in timings if t.method == method] or timings
    if not same:
        return None

    def scaled(t: TrialTiming) -> float:
        pixels = (image_size / t.image_size) ** 2
        return (t.overhead_seconds + t.epoch_seconds * epochs) * pixels

    return statistics.median(scaled(t) for t in same)
