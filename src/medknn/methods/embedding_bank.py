"""A memory bank of every training image's embedding, for neighbour search in the whole set."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class TrainingSetEmbedder:
    """The training set as an objective may embed it.

    ``embed(network)`` returns the ``(N, D)`` embeddings of the training images (evaluation
    transforms, no gradient) in the order of ``table_indices``, their rows in the data table;
    ``labels`` are their classes. The API injects it: it knows the data and how to run a
    network over a dataset, which the methods layer does not.
    """

    table_indices: np.ndarray
    labels: np.ndarray
    embed: Callable[[nn.Module], torch.Tensor]


class EmbeddingBank(nn.Module):
    """Every training image's embedding, constant between calls of :meth:`refresh`.

    As in a memory bank (Wu et al. 2018), the entries are those of the network at the last
    refresh, not of the current one: neighbours searched here are as of that moment. The bank
    lives on the device of the network that filled it.
    """

    def __init__(self, source: TrainingSetEmbedder) -> None:
        super().__init__()
        table_indices = torch.as_tensor(source.table_indices, dtype=torch.long)
        if len(table_indices) != len(source.labels):
            raise ValueError(
                f"{len(table_indices)} table indices for {len(source.labels)} labels; they must "
                "describe the same training images."
            )
        self.embed = source.embed
        self.refreshes = 0
        # row_of[t]: the bank row of table row t, -1 for images outside the training set.
        size = int(table_indices.max()) + 1 if len(table_indices) else 0
        row_of = torch.full((size,), -1, dtype=torch.long)
        row_of[table_indices] = torch.arange(len(table_indices))
        self.register_buffer("row_of", row_of, persistent=False)
        labels = torch.as_tensor(np.asarray(source.labels), dtype=torch.long)
        self.register_buffer("labels", labels, persistent=False)
        self.register_buffer("embeddings", torch.empty(0, 0), persistent=False)

    @torch.no_grad()
    def refresh(self, network: nn.Module) -> None:
        """Re-embed the whole training set with ``network`` as it is now."""
        device = next(network.parameters()).device
        embeddings = self.embed(network).detach().to(device)
        if len(embeddings) != len(self.labels):
            raise RuntimeError(
                f"The training set embedder returned {len(embeddings)} rows for "
                f"{len(self.labels)} training images."
            )
        self.embeddings = embeddings
        self.labels = self.labels.to(device)
        self.row_of = self.row_of.to(device)
        self.refreshes += 1

    def rows(self, table_indices: torch.Tensor) -> torch.Tensor:
        """The bank row of each image given by its table row (a batch's own entries)."""
        if self.refreshes == 0:
            raise RuntimeError("The embedding bank is empty: call refresh(network) first.")
        table_indices = table_indices.to(self.row_of.device)
        if ((table_indices >= 0) & (table_indices < len(self.row_of))).all():
            rows = self.row_of[table_indices]
            if (rows >= 0).all():
                return rows
        raise RuntimeError(
            "A batch holds images that are not in the embedding bank; the bank must be filled "
            "from the training set the batches are drawn from."
        )
