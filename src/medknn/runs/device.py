"""The torch device a run asks for (``auto``, ``cpu``, ``cuda:1``), with a clear error."""

from __future__ import annotations

import torch

from medknn.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """``auto`` is the first CUDA device when there is one, else the CPU. A device that this
    machine does not have is a ConfigError now, not a crash at the first batch."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"Unknown device {name!r}: use auto, cpu or cuda[:N].") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(
                f"device={name!r}, but torch sees no CUDA GPU here; use --set device=cpu "
                "(or auto, which takes a GPU when there is one)."
            )
        if device.index is not None and device.index >= count:
            raise ConfigError(
                f"device={name!r}, but this machine has {count} CUDA GPU(s) "
                f"(cuda:0 … cuda:{count - 1}); pick one of them."
            )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device={name!r}, but MPS is not available here; use cpu or auto.")
    return device
