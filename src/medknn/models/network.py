"""The network every method trains: backbone -> embedding head -> (L2 norm) -> (classifier)."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import timm
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medknn.errors import ConfigError, did_you_mean
from medknn.models.backbones import create_backbone
from medknn.models.cosine_classifier import CosineClassifier
from medknn.models.mlp import MLPBackbone
from medknn.models.torchvision_backbones import torchvision_backbone_names
from medknn.models.weights import load_backbone_weights

MLP = "mlp"
# Embedding-head activations by name (the constellation-loss paper puts a sigmoid before the norm).
HEAD_ACTIVATIONS: dict[str, type[nn.Module]] = {"sigmoid": nn.Sigmoid}
# Embedding heads: one Linear, or SupCon's projection MLP (Linear -> ReLU -> Linear).
PROJECTIONS = ("linear", "mlp")
# Classifiers on the embedding: nn.Linear, or LDAM's normalised linear classifier (cosine logits).
CLASSIFIER_TYPES = ("linear", "cosine")


class EmbeddingNetwork(nn.Module):
    """backbone -> optional embedding head (to embedding_dim) -> optional activation ->
    optional L2 normalisation; optional classifier on the embedding.

    With ``embedding_dim=None`` the embedding is the backbone's pooled feature. ``projection``
    picks the head: ``"linear"`` (one Linear) or ``"mlp"`` (Linear(F, F) -> ReLU ->
    Linear(F, embedding_dim), SupCon's projection head; F = pooled feature size). The classifier
    sees the embedding after normalisation, so cross-entropy methods use ``normalize=False``;
    ``classifier_type`` is ``"linear"`` or ``"cosine"`` (:class:`CosineClassifier`, for LDAM,
    whose logits are ``classifier_scale`` times the cosines).
    ``head_activation`` names an entry of ``HEAD_ACTIVATIONS`` (e.g. ``"sigmoid"``) or is None.
    """

    def __init__(
        self,
        backbone: nn.Module,
        *,
        embedding_dim: int | None = 128,
        normalize: bool = True,
        num_classes: int | None = None,
        head_activation: str | None = None,
        projection: str = "linear",
        classifier_type: str = "linear",
        classifier_scale: float = 1.0,
    ) -> None:
        super().__init__()
        num_features = _pooled_size(backbone)
        if embedding_dim is not None and embedding_dim < 1:
            raise ConfigError(
                f"embedding_dim must be a positive integer or None (use the backbone's "
                f"{num_features} pooled features), got {embedding_dim}."
            )
        _check_choice("projection", projection, PROJECTIONS)
        _check_choice("classifier_type", classifier_type, CLASSIFIER_TYPES)
        self.backbone = backbone
        self.embedding_head: nn.Module = _embedding_head(num_features, embedding_dim, projection)
        # A separate module (not inside embedding_head) keeps the saved weight names unchanged.
        self.head_activation: nn.Module = _activation(head_activation)
        self.embedding_dim: int = embedding_dim or num_features
        self.normalize = normalize
        self.projection = projection
        self.classifier_type = classifier_type
        self.classifier_scale = classifier_scale
        self.backbone_frozen = False
        self.channels_last = False
        self.classifier: nn.Module | None = None
        if num_classes is not None:
            self.reset_classifier(num_classes)

    def use_channels_last(self) -> None:
        """Keep conv weights, and convert image batches, to channels-last memory: the same
        results, computed faster by oneDNN on CPU (docs/benchmarks/cpu_speed.md)."""
        self.to(memory_format=torch.channels_last)
        self.channels_last = True

    def embed(self, x: Tensor) -> Tensor:
        """``(B, embedding_dim)`` embeddings, unit length iff ``normalize``."""
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        embedding = self.head_activation(self.embedding_head(self.backbone(x)))
        return F.normalize(embedding, dim=1) if self.normalize else embedding

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """``(embedding, logits)``; logits are None without a classifier."""
        embedding = self.embed(x)
        logits = self.classifier(embedding) if self.classifier is not None else None
        return embedding, logits

    def remove_classifier(self) -> None:
        self.classifier = None

    def reset_classifier(self, num_classes: int) -> None:
        """A new, randomly initialised classifier of ``classifier_type`` on the embedding."""
        if num_classes < 1:
            raise ConfigError(f"num_classes must be at least 1, got {num_classes}.")
        device = next(self.backbone.parameters()).device
        if self.classifier_type == "cosine":
            self.classifier = CosineClassifier(
                self.embedding_dim, num_classes, self.classifier_scale
            ).to(device)
        else:
            self.classifier = nn.Linear(self.embedding_dim, num_classes, device=device)

    def freeze_backbone(self) -> None:
        """Fix the backbone: no gradients for its parameters, and eval mode for good (even after
        ``train()``), so that BatchNorm running statistics do not move either."""
        self.backbone.requires_grad_(False)
        self.backbone_frozen = True
        self.backbone.eval()

    def train(self, mode: bool = True) -> EmbeddingNetwork:
        super().train(mode)
        if self.backbone_frozen:
            self.backbone.eval()
        return self


def _check_choice(option: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"Unknown {option} {value!r}; choose one of: {', '.join(choices)}.")


def _embedding_head(num_features: int, embedding_dim: int | None, projection: str) -> nn.Module:
    if not embedding_dim:
        if projection == "mlp":
            raise ConfigError(
                "projection='mlp' needs an embedding_dim (the projection's output size, e.g. "
                "128); embedding_dim=None means no embedding head at all."
            )
        return nn.Identity()
    if projection == "mlp":
        return nn.Sequential(
            nn.Linear(num_features, num_features),
            nn.ReLU(),
            nn.Linear(num_features, embedding_dim),
        )
    return nn.Linear(num_features, embedding_dim)


def _activation(name: str | None) -> nn.Module:
    if name is None:
        return nn.Identity()
    if name not in HEAD_ACTIVATIONS:
        raise ConfigError(
            f"Unknown head_activation {name!r}. " + did_you_mean(name, HEAD_ACTIVATIONS)
        )
    return HEAD_ACTIVATIONS[name]()


def _pooled_size(backbone: nn.Module) -> int:
    # timm models with a pre-logits head (MobileNetV3) output head_hidden_size, not num_features
    size = getattr(backbone, "head_hidden_size", None) or getattr(backbone, "num_features", None)
    if not isinstance(size, int):
        raise ConfigError(
            f"Backbone {type(backbone).__name__} has no integer .num_features (its pooled "
            "feature size); use a timm model or MLPBackbone, or set the attribute."
        )
    return size


def create_network(
    backbone: str,
    *,
    embedding_dim: int | None = 128,
    normalize: bool = True,
    num_classes: int | None = None,
    pretrained: bool = False,
    weights: str | Path | None = None,
    small_input: bool = False,
    in_features: int | None = None,
    head_activation: str | None = None,
    projection: str = "linear",
    classifier_type: str = "linear",
    classifier_scale: float = 1.0,
) -> EmbeddingNetwork:
    """An :class:`EmbeddingNetwork` on a named backbone (see :func:`list_backbones`).

    ``backbone="mlp"`` builds :class:`MLPBackbone` and needs ``in_features``; ``small_input``
    does not apply to it and ``in_features`` does not apply to image backbones. The other
    arguments are those of :func:`create_backbone` and :class:`EmbeddingNetwork`.
    """
    if backbone == MLP:
        if in_features is None:
            raise ConfigError(
                "Backbone 'mlp' needs in_features, the length of each flattened input "
                "(e.g. 3*28*28 = 2352 for 28 px RGB images)."
            )
        if pretrained:
            raise ConfigError(
                "No pretrained weights exist for backbone 'mlp'; pass weights=PATH "
                "(CLI --weights PATH) or train from scratch."
            )
        model: nn.Module = MLPBackbone(in_features)
        if weights is not None:
            load_backbone_weights(model, weights)
    else:
        model = create_backbone(
            backbone, pretrained=pretrained, weights=weights, small_input=small_input
        )
    return EmbeddingNetwork(
        model,
        embedding_dim=embedding_dim,
        normalize=normalize,
        num_classes=num_classes,
        head_activation=head_activation,
        projection=projection,
        classifier_type=classifier_type,
        classifier_scale=classifier_scale,
    )


def list_backbones(pattern: str = "*") -> list[str]:
    """Backbone names matching a shell-style ``pattern``: every timm model, every torchvision
    classification model as ``torchvision/NAME``, and ``"mlp"``."""
    names = timm.list_models(pattern) + fnmatch.filter(torchvision_backbone_names(), pattern)
    if fnmatch.fnmatch(MLP, pattern):
        names.append(MLP)
    return sorted(names)
