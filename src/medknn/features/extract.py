"""Embed every image of a data set once with a frozen backbone; cache the vectors in an .npz.

Decoding, transforms and the network are the training pipeline's own (``whole_data``,
``PreparedData.dataset``, ``build_feature_extractor``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console

from medknn.errors import ConfigError
from medknn.features.feature_set import FeatureSet
from medknn.models import backbone_normalization
from medknn.prediction import compute_outputs
from medknn.runs import TrainConfig
from medknn.runs.build import build_feature_extractor, uses_pretrained
from medknn.runs.device import resolve_device
from medknn.runs.prepare import whole_data

FORMAT = "medknn.features/1"


def extract_features(
    data: str,
    out: str | os.PathLike,
    *,
    backbone: str = "tf_efficientnet_lite0",
    image_size: int = 64,
    pretrained: bool | None = None,
    weights: str | None = None,
    data_options: Mapping[str, Any] | None = None,
    batch_size: int = 128,
    device: str = "auto",
    progress: bool = True,
    console: Console | None = None,
) -> FeatureSet:
    """The pooled ``backbone`` features of every image of ``data``, written to ``out`` (.npz).

    Images go through the training pipeline's evaluation path (decode cache, centre crop,
    the backbone's normalisation); ``pretrained=None`` loads ImageNet weights where they ship
    offline, as ``medknn train`` does. If ``out`` already holds features made with the same
    settings it is loaded instead; other settings there are an error, never overwritten.
    """
    console = console or Console(stderr=True, quiet=not progress)
    # The training config validates these options and resolves the defaults a run would use.
    config = TrainConfig(
        data=data,
        data_options=dict(data_options or {}),
        backbone=backbone,
        image_size=image_size,
        pretrained=pretrained,
        weights=weights,
    )
    settings = {
        "format": FORMAT,
        "data": data,
        "data_options": config.data_options,
        "backbone": backbone,
        "image_size": image_size,
        "pretrained": uses_pretrained(config),
        "weights": weights,
        "small_input": config.resolved_small_input,
    }
    out = Path(out)
    if out.exists():
        cached = FeatureSet.load(out)
        _check_same_settings(out, cached.settings, settings)
        console.print(
            f"reusing the features in {out} (same data, backbone and image size)", markup=False
        )
        return cached

    torch_device = resolve_device(device)
    # The network first: a wrong backbone or weights file fails before minutes of decoding.
    network = build_feature_extractor(config).to(torch_device)
    prepared = whole_data(config, progress=progress).normalized_for(
        *backbone_normalization(network.backbone)
    )
    table = prepared.table
    features, _ = compute_outputs(
        network,
        prepared.dataset("train", augment=False),
        device=torch_device,
        batch_size=batch_size,
        progress=progress,
        description=f"{backbone} features of {len(table)} images",
    )
    feature_set = FeatureSet(
        features=features,
        labels=table.labels,
        class_names=list(table.class_names),
        ids=list(table.ids),
        groups=table.groups,
        official_split=table.official_split,
        settings={**settings, "data_source": table.source, "skipped_images": table.dropped},
        source=str(out),
    )
    feature_set.save(out)
    console.print(f"{len(feature_set)} × {feature_set.dim} features written to {out}", markup=False)
    return feature_set


def _check_same_settings(path: Path, saved: dict[str, Any], wanted: dict[str, Any]) -> None:
    changed = {
        key: (saved.get(key), value) for key, value in wanted.items() if saved.get(key) != value
    }
    if changed:
        listing = ", ".join(f"{key}: {old!r} → {new!r}" for key, (old, new) in changed.items())
        raise ConfigError(
            f"{path} holds features made with other settings ({listing}). Choose another --out, "
            "or delete that file to extract again."
        )
