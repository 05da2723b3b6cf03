"""The torch device a run asks for (``auto``, ``cpu``, ``cuda:1``), with a clear error."""

from __future__ import annotations

import torch

from medknn.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """``auto`` is the first CUDA device when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigError(f"Unknown device {name!r}: use auto, cpu or cuda[:N].") from None
