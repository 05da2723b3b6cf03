"""A 2-D map of embeddings coloured by class (t-SNE, or UMAP where installed), optionally with
image thumbnails at their positions (the constellation-loss paper's Fig. 4 and 5)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import pyplot as plt
from matplotlib.offsetbox import AnnotationBbox, OffsetImage
from sklearn.manifold import TSNE

from medknn.errors import ConfigError, DataError, did_you_mean
from medknn.reports.classification_plots import save_figure

MAP_METHODS = ("tsne", "umap")
THUMBNAIL_PX = 28  # drawn size of the longer side of a thumbnail


def plot_embedding_map(
    embeddings: np.ndarray,
    labels: np.ndarray,
    class_names: list[str],
    path: str | Path,
    *,
    method: str = "tsne",
    seed: int = 0,
    thumbnails: np.ndarray | None = None,
    max_thumbnails: int = 200,
) -> Path:
    """Project ``embeddings`` (N×D) to 2-D and write a PNG to ``path``; returns the path.

    ``thumbnails`` (N×H×W grey or N×H×W×3 RGB, uint8 or floats in [0, 1]) draws each case's image
    at its position, framed in its class colour; ``max_thumbnails`` of them, chosen at random
    with ``seed``, so that a large test set stays readable.
    """
    embeddings, labels = np.asarray(embeddings, dtype=np.float64), np.asarray(labels)
    if embeddings.ndim != 2 or labels.shape != (len(embeddings),) or len(embeddings) < 3:
        raise DataError(
            f"embeddings {embeddings.shape} and labels {labels.shape} must be an N×D array and "
            "N class indices with N >= 3."
        )
    if labels.min() < 0 or labels.max() >= len(class_names):
        raise DataError(
            f"labels run from {labels.min()} to {labels.max()} but there are "
            f"{len(class_names)} class names; pass one name per class index."
        )
    if thumbnails is not None:
        thumbnails = np.asarray(thumbnails)
        if len(thumbnails) != len(embeddings) or thumbnails.ndim not in (3, 4):
            raise DataError(
                f"thumbnails {thumbnails.shape} must hold one H×W or H×W×3 image per embedding "
                f"({len(embeddings)})."
            )
    points = _project(embeddings, method, seed)
    colours = plt.get_cmap("tab10" if len(class_names) <= 10 else "tab20").colors
    figure, axes = plt.subplots(figsize=(7.5, 6.5))
    for c, name in enumerate(class_names):
        members = labels == c
        if members.any():
            axes.scatter(*points[members].T, s=9, color=colours[c % len(colours)], label=name)
    if thumbnails is not None:
        _draw_thumbnails(axes, points, labels, thumbnails, colours, max_thumbnails, seed)
    axes.set_title(f"{'t-SNE' if method == 'tsne' else 'UMAP'} of {len(labels)} embeddings")
    axes.set_xticks([])
    axes.set_yticks([])
    axes.legend(loc="best", fontsize=8, markerscale=2)
    return save_figure(figure, path)


def _project(embeddings: np.ndarray, method: str, seed: int) -> np.ndarray:
    if method not in MAP_METHODS:
        raise ConfigError(f"Unknown map method {method!r}. " + did_you_mean(method, MAP_METHODS))
    if method == "umap":
        try:
            import umap
        except ImportError:
            raise ConfigError(
                "method='umap' needs the umap-learn package (pip install umap-learn); "
                "or use method='tsne'."
            ) from None
        return umap.UMAP(n_components=2, random_state=seed).fit_transform(embeddings)
    # The perplexity must stay below the number of points; 30 is scikit-learn's default.
    perplexity = min(30.0, (len(embeddings) - 1) / 3)
    return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(embeddings)


def _draw_thumbnails(
    axes: plt.Axes,
    points: np.ndarray,
    labels: np.ndarray,
    thumbnails: np.ndarray,
    colours: tuple,
    max_thumbnails: int,
    seed: int,
) -> None:
    count = min(max_thumbnails, len(points))
    chosen = np.random.default_rng(seed).choice(len(points), size=count, replace=False)
    zoom = THUMBNAIL_PX / max(thumbnails.shape[1:3])
    for i in chosen:
        image = OffsetImage(thumbnails[i], zoom=zoom, cmap="gray")
        frame = {"edgecolor": colours[labels[i] % len(colours)], "linewidth": 1.5}
        axes.add_artist(AnnotationBbox(image, points[i], frameon=True, pad=0.1, bboxprops=frame))
