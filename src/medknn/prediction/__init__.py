"""Prediction: kNN with evidence, the softmax rule, and finished runs loaded back."""

from medknn.prediction.embed import compute_outputs
from medknn.prediction.knn import KNNClassifier, Neighbour
from medknn.prediction.rules import predict_with_rule
from medknn.prediction.trained_run import Prediction, TrainedRun

__all__ = [
    "KNNClassifier",
    "Neighbour",
    "Prediction",
    "TrainedRun",
    "compute_outputs",
    "predict_with_rule",
]
