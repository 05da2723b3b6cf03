"""Run a network over a dataset once: embeddings, and logits when it has a classifier."""

from __future__ import annotations

import numpy as np
import torch
from rich.progress import track
from torch.utils.data import DataLoader, Dataset

from medknn.models import EmbeddingNetwork


@torch.no_grad()
def compute_outputs(
    network: EmbeddingNetwork,
    dataset: Dataset,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 256,
    progress: bool = False,
    description: str = "embedding",
) -> tuple[np.ndarray, np.ndarray | None]:
    """``(embeddings (N, D) float32, logits (N, C) or None)`` in dataset order, in eval mode."""
    was_training = network.training
    network.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    embeddings, logits = [], []
    for inputs, *_ in track(loader, description=description, disable=not progress, transient=True):
        embedding, logit = network(inputs.to(device))
        embeddings.append(embedding.float().cpu())
        if logit is not None:
            logits.append(logit.float().cpu())
    network.train(was_training)
    dim = network.embedding_dim
    stacked = torch.cat(embeddings).numpy() if embeddings else np.zeros((0, dim), np.float32)
    return stacked, (torch.cat(logits).numpy() if logits else None)
