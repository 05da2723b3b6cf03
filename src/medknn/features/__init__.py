"""The feature-vector setting (the Deep kNN paper's Table 3): vectors extracted once from a frozen
backbone, or a user's own, and kNN / NCA / LMNN / MLP methods on them."""

from medknn.features.benchmark import (
    FeatureBenchmarkResult,
    run_feature_benchmark,
    table3_methods,
)
from medknn.features.extract import extract_features
from medknn.features.feature_set import FeatureSet, load_feature_set
from medknn.features.lmnn import LMNN
from medknn.features.methods import check_feature_method, run_feature_method
from medknn.features.metric_knn import make_metric_knn
from medknn.features.parts import FeatureParts
from medknn.features.subsampled_fit import SubsampledFit
from medknn.features.wide_table import methods_as_columns_table

__all__ = [
    "FeatureBenchmarkResult",
    "FeatureParts",
    "FeatureSet",
    "LMNN",
    "SubsampledFit",
    "check_feature_method",
    "extract_features",
    "load_feature_set",
    "make_metric_knn",
    "methods_as_columns_table",
    "run_feature_benchmark",
    "run_feature_method",
    "table3_methods",
]
