"""Fit a transformer on a stratified subsample, apply it to every row (bounded O(n²) cost)."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import check_is_fitted

from medknn.errors import ConfigError


class SubsampledFit(TransformerMixin, BaseEstimator):
    """Fits a clone of ``estimator`` on at most ``max_samples`` rows drawn stratified by class
    (all rows if there are fewer), then transforms all rows with it.

    NCA and LMNN compare every pair of training points in each iteration, so their cost grows
    with n²; a few thousand points already fix a linear map of a few hundred features well.
    ``n_fit_samples_`` records how many rows the fit saw.
    """

    def __init__(
        self, estimator: BaseEstimator, *, max_samples: int = 2000, random_state: int = 0
    ) -> None:
        self.estimator = estimator
        self.max_samples = max_samples
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray) -> SubsampledFit:
        X, y = np.asarray(X), np.asarray(y)
        if isinstance(self.max_samples, bool) or not isinstance(self.max_samples, int | np.integer):
            raise ConfigError(f"max_samples={self.max_samples!r} must be an integer, e.g. 2000.")
        if self.max_samples < 2:
            raise ConfigError(f"max_samples={self.max_samples} must be at least 2, e.g. 2000.")
        rows = np.arange(len(X))
        if len(X) > self.max_samples:
            counts = np.unique(y, return_counts=True)[1]
            # Stratifying needs two members per class; otherwise the draw is plain random.
            rows, _ = train_test_split(
                rows,
                train_size=int(self.max_samples),
                stratify=y if counts.min() >= 2 else None,
                random_state=self.random_state,
            )
        self.estimator_ = clone(self.estimator).fit(X[rows], y[rows])
        self.n_fit_samples_ = len(rows)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        return self.estimator_.transform(X)
