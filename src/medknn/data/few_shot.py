"""The few-shot protocol's training set: N images per class drawn from the training split."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from medknn.errors import ConfigError, DataError


def few_shot_indices(
    labels: np.ndarray,
    train_indices: np.ndarray,
    shots: int,
    seed: int,
    *,
    class_names: Sequence[str] | None = None,
) -> np.ndarray:
    """Sorted row indices: ``shots`` of ``train_indices`` per class, drawn without replacement.

    ``labels`` are the class indices of every row of the table; every class of ``labels`` must
    have at least ``shots`` training rows. The draw depends only on the arguments, so every
    method trained with the same ``seed`` sees the same images.
    """
    if isinstance(shots, bool) or not isinstance(shots, int | np.integer) or shots < 1:
        raise ConfigError(f"shots={shots!r} must be a whole number >= 1, e.g. --shots 20.")
    labels, train_indices = np.asarray(labels), np.asarray(train_indices, dtype=np.int64)
    rng = np.random.default_rng(seed)
    drawn = []
    for c in np.unique(labels):
        members = np.sort(train_indices[labels[train_indices] == c])
        if len(members) < shots:
            name = class_names[c] if class_names is not None else f"class {c}"
            raise DataError(
                f"{name!r} has {len(members)} training image(s), fewer than shots={shots}. "
                f"Lower --shots to at most {len(members)}, or give that class more images."
            )
        drawn.append(rng.choice(members, size=shots, replace=False))
    return np.sort(np.concatenate(drawn))
