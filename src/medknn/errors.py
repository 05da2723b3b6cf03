"""User-facing errors: each says what is wrong, where, and how to fix it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class MedknnError(Exception):
    """An error caused by the user's input or environment, with a message meant to be read."""


class DataError(MedknnError):
    """Missing or malformed data: paths, images, CSV columns, labels."""


class ImageTooLargeError(DataError):
    """An image with more pixels than a limit allows (refused before its pixels are decoded)."""


class ConfigError(MedknnError):
    """An invalid option value or an unknown name (method, backbone, dataset)."""


class TrainingError(MedknnError):
    """Training cannot go on (e.g. a NaN loss); the last good checkpoint is kept."""


class RunLockedError(TrainingError):
    """Another process is training this run directory."""


def did_you_mean(name: str, choices: Iterable[str], n: int = 5) -> str:
    """A short hint listing the choices closest to ``name`` (or all of them if none is close)."""
    choices = sorted(set(choices))
    close = difflib.get_close_matches(name, choices, n=n, cutoff=0.5)
    if not close:
        close = [c for c in choices if name.lower() in c.lower()][:n]
    if close:
        return "Did you mean: " + ", ".join(close) + "?"
    shown = ", ".join(choices[:20]) + (" ..." if len(choices) > 20 else "")
    return f"Choose one of: {shown}"
