"""Run a network over a dataset once: embeddings, and logits when it has a classifier;
optionally averaged over test-time augmentations (TTA)."""

from __future__ import annotations

import numpy as np
import torch
from rich.progress import track
from torch.nn import functional
from torch.utils.data import DataLoader, Dataset

from medknn.models import EmbeddingNetwork

TTA_VIEWS = {"none": 1, "flips": 2, "crops": 4}


def tta_views(batch: torch.Tensor, tta: str) -> list[torch.Tensor]:
    """The batch as the network sees it under ``tta``: ``"none"``; ``"flips"``, the batch and
    its mirror image; ``"crops"``, those two and both again zoomed in by 15 % (centre)."""
    if tta not in TTA_VIEWS:
        raise ValueError(f"unknown test-time augmentation {tta!r}; use none, flips or crops")
    views = [batch]
    if tta in ("flips", "crops"):
        views.append(batch.flip(-1))
    if tta == "crops":
        size = batch.shape[-1]
        inner = round(size / 1.15)
        start = (size - inner) // 2
        zoomed = functional.interpolate(
            batch[..., start : start + inner, start : start + inner],
            size=batch.shape[-2:],
            mode="bilinear",
            align_corners=False,
        )
        views += [zoomed, zoomed.flip(-1)]
    return views


def network_outputs(
    network: EmbeddingNetwork, inputs: torch.Tensor, tta: str = "none"
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Embeddings and logits of one batch (the network in eval mode), averaged over the TTA
    views: embeddings averaged (and L2-normalised again if the network normalises them),
    class probabilities averaged and returned as their logarithm, so that a softmax of the
    returned logits gives the mean probabilities."""
    outputs = [network(view) for view in tta_views(inputs, tta)]
    if len(outputs) == 1:
        return outputs[0]
    embedding = torch.stack([e.float() for e, _ in outputs]).mean(0)
    if getattr(network, "normalize", False):
        embedding = functional.normalize(embedding, dim=1)
    if outputs[0][1] is None:
        return embedding, None
    proba = torch.stack([torch.softmax(logit.float(), dim=1) for _, logit in outputs]).mean(0)
    return embedding, proba.clamp_min(1e-12).log()


@torch.no_grad()
def compute_outputs(
    network: EmbeddingNetwork,
    dataset: Dataset,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 256,
    progress: bool = False,
    description: str = "embedding",
    tta: str = "none",
) -> tuple[np.ndarray, np.ndarray | None]:
    """``(embeddings (N, D) float32, logits (N, C) or None)`` in dataset order, in eval mode,
    averaged over the test-time augmentation ``tta`` (see :func:`network_outputs`)."""
    was_training = network.training
    network.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    embeddings, logits = [], []
    for inputs, *_ in track(loader, description=description, disable=not progress, transient=True):
        embedding, logit = network_outputs(network, inputs.to(device), tta)
        embeddings.append(embedding.float().cpu())
        if logit is not None:
            logits.append(logit.float().cpu())
    network.train(was_training)
    dim = network.embedding_dim
    stacked = torch.cat(embeddings).numpy() if embeddings else np.zeros((0, dim), np.float32)
    return stacked, (torch.cat(logits).numpy() if logits else None)
