"""A torch Dataset over the decoded image cache, restricted to some table rows."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from medknn.errors import DataError


class CachedImageDataset(Dataset):
    """Item ``i`` is ``(transform(image), label, table_index)`` for table row ``indices[i]``.

    ``images`` (N×H×W×C uint8) and ``labels`` (N,) cover the whole table, so that one decoded
    array serves the train, val and test datasets alike.
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        indices: np.ndarray,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        if images.ndim != 4 or images.dtype != np.uint8:
            raise DataError(
                f"images must be uint8 N×H×W×C, got {images.dtype} with shape {images.shape}"
            )
        if len(labels) != len(images):
            raise DataError(f"{len(labels)} labels for {len(images)} images; they must match")
        self.images = images
        self.labels = np.asarray(labels, dtype=np.int64)
        self.indices = np.asarray(indices, dtype=np.int64)
        if len(self.indices) and (self.indices.min() < 0 or self.indices.max() >= len(images)):
            raise DataError(f"indices must lie in 0..{len(images) - 1}")
        self.transform = transform

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def targets(self) -> np.ndarray:
        """Labels of this dataset's items, in item order (for samplers)."""
        return self.labels[self.indices]

    def __getitem__(self, position: int) -> tuple[torch.Tensor, int, int]:
        index = int(self.indices[position])
        image = torch.from_numpy(self.images[index]).permute(2, 0, 1)  # H×W×C → C×H×W view
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.labels[index]), index
