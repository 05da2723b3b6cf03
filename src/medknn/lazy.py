"""Package attributes imported on first use (PEP 562), so that ``import medknn`` and the light
commands (``--help``, ``methods``, ``datasets``) do not import torch, timm, faiss and
scikit-learn seconds before anything happens."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_getattr(
    package: str, namespace: dict[str, Any], sources: Mapping[str, str]
) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``sources`` maps each attribute to the module
    that defines it; the value is imported once, then kept in ``namespace``."""

    def __getattr__(name: str) -> Any:
        if name not in sources:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(sources[name]), name)
        namespace[name] = value
        return value

    return __getattr__
