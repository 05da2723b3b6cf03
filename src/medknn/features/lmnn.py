"""Large margin nearest neighbour (LMNN, Weinberger & Saul 2009): a linear map learned for kNN.

medknn's own implementation, in place of metric-learn's ``LMNN`` (whose last release, 0.7.0,
calls a scikit-learn argument removed in 1.8, and which took minutes per iteration on 2,000
rows of 1,280 features here). The objective is the paper's (eq. 13 there, with its hinge):

    (1 − μ) Σ_i Σ_{j ⇝ i} ‖L(x_i − x_j)‖² + μ Σ_i Σ_{j ⇝ i} Σ_{l: y_l ≠ y_i}
        [1 + ‖L(x_i − x_j)‖² − ‖L(x_i − x_l)‖²]_+

where ``j ⇝ i`` are the ``n_neighbors`` nearest same-class rows of ``x_i`` in the input space
(its target neighbours, fixed before training) and every other-class row is a candidate impostor.
It is minimised over ``L`` (``n_components`` × d, started from PCA as metric-learn and scikit-
learn's NCA do) with L-BFGS on all pairs at once, as PyLMNN does, in float64 on the CPU; each of
the ``max_iter`` iterations costs a few n² distance evaluations, so the fit is meant for a few
thousand rows (``SubsampledFit`` draws them). Both sums are divided by the number of (i, j)
pairs, which leaves the minimiser unchanged and the step sizes independent of n.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors
from sklearn.utils.validation import check_is_fitted, check_X_y, validate_data

from medknn.errors import ConfigError


class LMNN(TransformerMixin, BaseEstimator):
    """A scikit-learn transformer: ``fit(X, y)`` learns ``components_`` (``n_components`` × d);
    ``transform(X)`` returns ``X @ components_.T``. ``n_iter_`` and ``loss_`` tell how the
    L-BFGS run ended (``loss_curve_`` holds the loss after each iteration)."""

    def __init__(
        self,
        n_neighbors: int = 3,
        n_components: int | None = None,
        max_iter: int = 200,
        push_weight: float = 0.5,
        tol: float = 1e-7,
        random_state: int = 0,
    ) -> None:
        self.n_neighbors = n_neighbors
        self.n_components = n_components
        self.max_iter = max_iter
        self.push_weight = push_weight
        self.tol = tol
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray) -> LMNN:
        X, y = check_X_y(X, y, dtype=np.float64)
        classes, y = np.unique(y, return_inverse=True)
        counts = np.bincount(y)
        if len(classes) < 2:
            raise ConfigError("LMNN needs at least two classes in the rows it is fitted on.")
        if counts.min() < 2:
            raise ConfigError(
                f"LMNN needs two rows of every class (one has {counts.min()}): each row's "
                "target neighbours are rows of its own class."
            )
        self.n_features_in_ = X.shape[1]
        components = min(self.n_components or X.shape[1], X.shape[1])
        k = min(self.n_neighbors, int(counts.min()) - 1)
        targets = _target_neighbours(X, y, k)
        start = PCA(components, random_state=self.random_state).fit(X).components_
        data = torch.from_numpy(X)
        labels = torch.from_numpy(y)
        targets_t = torch.from_numpy(targets)
        other = labels[:, None] != labels[None, :]
        weight = torch.tensor(self.push_weight, dtype=torch.float64)
        # L is kept transposed (d × c): z = x Lᵀ is then a plain product with a contiguous grad.
        matrix = torch.tensor(start.T.copy(), dtype=torch.float64, requires_grad=True)
        optimizer = torch.optim.LBFGS(
            [matrix],
            max_iter=self.max_iter,
            tolerance_change=self.tol,
            tolerance_grad=1e-9,
            history_size=10,
            line_search_fn="strong_wolfe",
        )
        curve: list[float] = []

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            loss = _objective(data @ matrix, targets_t, other, weight)
            loss.backward()
            curve.append(float(loss.detach()))
            return loss

        optimizer.step(closure)
        self.components_ = matrix.detach().numpy().T.copy()
        self.loss_curve_ = curve
        self.loss_ = curve[-1]
        self.n_iter_ = optimizer.state[optimizer._params[0]]["n_iter"]
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "components_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return X @ self.components_.T


def _target_neighbours(X: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` nearest rows of each row's own class (itself excluded), as row indices."""
    targets = np.empty((len(X), k), dtype=np.int64)
    for label in np.unique(y):
        rows = np.flatnonzero(y == label)
        index = NearestNeighbors(n_neighbors=k + 1).fit(X[rows])
        nearest = index.kneighbors(X[rows], return_distance=False)
        # drop each row itself (first, unless a duplicate row came first)
        own = nearest != np.arange(len(rows))[:, None]
        targets[rows] = np.array([n[o][:k] for n, o in zip(nearest, own, strict=True)])
        targets[rows] = rows[targets[rows]]
    return targets


def _objective(
    z: torch.Tensor, targets: torch.Tensor, other: torch.Tensor, push_weight: torch.Tensor
) -> torch.Tensor:
    squared = (z * z).sum(1)
    distances = (squared[:, None] + squared[None, :] - 2 * z @ z.T).clamp_min(0)
    to_targets = distances.gather(1, targets)  # n × k
    pull = to_targets.sum()
    # [1 + d(i, j) − d(i, l)]_+ for every target j and other-class l of each i
    margins = 1 + to_targets[:, :, None] - distances[:, None, :]
    push = (margins.clamp_min(0) * other[:, None, :]).sum()
    return ((1 - push_weight) * pull + push_weight * push) / targets.numel()
