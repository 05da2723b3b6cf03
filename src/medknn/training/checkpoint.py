"""Checkpoints as single safetensors files: tensors plus a JSON skeleton in the metadata.

One file per checkpoint keeps the write atomic (no weights/state pair that a crash can split), and
safetensors never unpickles, so a downloaded run cannot execute code when loaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from medknn.errors import TrainingError
from medknn.io import atomic_save_tensors

_TENSOR = "__tensor__"


def flatten_state(state: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Move every tensor of a nested dict/list into ``tensors``; return the JSON skeleton."""
    if isinstance(state, torch.Tensor):
        tensors[prefix] = state
        return {_TENSOR: prefix}
    if isinstance(state, dict):
        return {
            "__dict__": [
                [key, flatten_state(value, f"{prefix}.{key}", tensors)]
                for key, value in state.items()
            ]
        }
    if isinstance(state, list | tuple):
        return [flatten_state(value, f"{prefix}.{i}", tensors) for i, value in enumerate(state)]
    return state


def unflatten_state(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(skeleton, dict) and _TENSOR in skeleton:
        return tensors[skeleton[_TENSOR]]
    if isinstance(skeleton, dict) and "__dict__" in skeleton:
        return {key: unflatten_state(value, tensors) for key, value in skeleton["__dict__"]}
    if isinstance(skeleton, list):
        return [unflatten_state(value, tensors) for value in skeleton]
    return skeleton


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Save a nested state (model/optimizer state dicts, epoch, history …) atomically."""
    tensors: dict[str, torch.Tensor] = {}
    skeleton = flatten_state(state, "s", tensors)
    # safetensors refuses tensors that share memory; checkpoints are small enough to copy.
    tensors = {key: value.detach().cpu().clone() for key, value in tensors.items()}
    return atomic_save_tensors(tensors, path, metadata={"medknn_state": json.dumps(skeleton)})


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The state saved by ``save_checkpoint``; a damaged or truncated file (a full disk, a bad
    copy) is a TrainingError that says how to go on without it."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
        if "medknn_state" not in metadata:
            raise ValueError("not a medknn checkpoint: no medknn_state metadata")
        state = unflatten_state(json.loads(metadata["medknn_state"]), tensors)
        if not isinstance(state, dict):
            raise ValueError("its state is not a mapping")
    except Exception as error:  # safetensors, json and a hand-edited skeleton fail differently
        lines = str(error).strip().splitlines()
        reason = lines[0][:200] if lines else type(error).__name__
        raise TrainingError(
            f"The checkpoint {path} is damaged ({reason}). Delete it and rerun the same command: "
            "the run then trains again from its first epoch (or move it aside and start a new "
            "--out)."
        ) from None
    return state
