"""Networks: timm/MLP backbones, an embedding head with optional L2 norm, an optional classifier."""

from medknn.models.backbones import backbone_normalization, create_backbone
from medknn.models.cosine_classifier import CosineClassifier
from medknn.models.mlp import MLPBackbone
from medknn.models.network import EmbeddingNetwork, create_network, list_backbones
from medknn.models.small_input import adapt_to_small_input
from medknn.models.weights import load_backbone_weights, read_state_dict

__all__ = [
    "CosineClassifier",
    "EmbeddingNetwork",
    "MLPBackbone",
    "adapt_to_small_input",
    "backbone_normalization",
    "create_backbone",
    "create_network",
    "list_backbones",
    "load_backbone_weights",
    "read_state_dict",
]
