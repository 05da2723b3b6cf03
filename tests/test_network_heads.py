"""SupCon's MLP projection, LDAM's cosine classifier and the frozen backbone (issue 4 §1-2)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from medknn.errors import ConfigError
from medknn.models import CosineClassifier, EmbeddingNetwork, MLPBackbone, create_network


def _copy_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_mlp_projection_is_linear_relu_linear_at_the_pooled_size() -> None:
    net = create_network("resnet18", small_input=True, projection="mlp", embedding_dim=32)
    head = net.embedding_head
    assert [type(layer) for layer in head] == [nn.Linear, nn.ReLU, nn.Linear]
    assert (head[0].in_features, head[0].out_features, head[2].out_features) == (512, 512, 32)
    embedding, logits = net.eval()(torch.randn(3, 3, 28, 28))
    assert embedding.shape == (3, 32) and logits is None
    assert torch.allclose(embedding.norm(dim=1), torch.ones(3), atol=1e-5)


def test_default_configuration_keeps_its_saved_weight_names() -> None:
    net = EmbeddingNetwork(MLPBackbone(12, hidden_features=8), embedding_dim=4, num_classes=3)
    head_and_classifier = {k for k in net.state_dict() if not k.startswith("backbone.")}
    assert head_and_classifier == {
        "embedding_head.weight",
        "embedding_head.bias",
        "classifier.weight",
        "classifier.bias",
    }


def test_mlp_projection_needs_an_embedding_dim() -> None:
    with pytest.raises(ConfigError, match="embedding_dim"):
        create_network("mlp", in_features=12, projection="mlp", embedding_dim=None)


@pytest.mark.parametrize(
    ("option", "value", "choices"),
    [("projection", "mpl", "linear, mlp"), ("classifier_type", "cos", "linear, cosine")],
)
def test_unknown_head_names_list_the_choices(option: str, value: str, choices: str) -> None:
    with pytest.raises(ConfigError, match=f"{option} '{value}'; choose one of: {choices}"):
        create_network("mlp", in_features=12, **{option: value})


def test_cosine_classifier_gives_cosines_of_input_and_class_weights() -> None:
    classifier = CosineClassifier(6, 4)
    x = 5 * torch.randn(10, 6)
    logits = classifier(x)
    assert logits.shape == (10, 4)
    assert logits.abs().max() <= 1 + 1e-6
    expected = F.cosine_similarity(x[:, None, :], classifier.weight[None], dim=2)
    torch.testing.assert_close(logits, expected)
    # An input along class 2's weight, at any length, has cosine 1 with it.
    assert classifier(classifier.weight[2:3] * 7)[0, 2].item() == pytest.approx(1.0, abs=1e-6)


def test_cosine_classifier_scale_multiplies_the_cosines() -> None:
    unscaled = CosineClassifier(6, 4)
    scaled = CosineClassifier(6, 4, scale=30.0)
    scaled.load_state_dict(unscaled.state_dict())  # the scale is not a weight
    x = torch.randn(10, 6)
    torch.testing.assert_close(scaled(x), 30.0 * unscaled(x))


@pytest.mark.parametrize("scale", [0.0, -1.0, float("inf"), float("nan"), True, "30"])
def test_cosine_classifier_rejects_a_bad_scale(scale: object) -> None:
    with pytest.raises(ConfigError, match="scale=.* must be a number > 0"):
        CosineClassifier(6, 4, scale=scale)  # type: ignore[arg-type]


def test_reset_classifier_honours_the_classifier_type() -> None:
    net = create_network("mlp", in_features=12, embedding_dim=8, classifier_type="cosine")
    assert net.classifier is None
    net.reset_classifier(5)
    assert isinstance(net.classifier, CosineClassifier)
    assert set(net.classifier.state_dict()) == {"weight"}
    _, logits = net.eval()(torch.randn(4, 12))
    assert logits.shape == (4, 5) and logits.abs().max() <= 1 + 1e-6
    linear = create_network("mlp", in_features=12, num_classes=5)
    assert type(linear.classifier) is nn.Linear


def test_frozen_backbone_stays_bit_identical_while_the_classifier_learns() -> None:
    torch.manual_seed(0)
    # resnet18 has BatchNorm (running stats, num_batches_tracked): buffers must not move either.
    net = create_network("resnet18", small_input=True, embedding_dim=16, num_classes=3)
    net.freeze_backbone()
    backbone_before, head_before = _copy_state(net.backbone), _copy_state(net.embedding_head)
    classifier_before = _copy_state(net.classifier)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.5, momentum=0.9, weight_decay=1e-2)
    net.train()  # the trainer calls this every epoch
    assert net.backbone_frozen and not net.backbone.training and net.classifier.training
    for _ in range(3):
        _, logits = net(torch.randn(8, 3, 28, 28))
        loss = F.cross_entropy(logits, torch.randint(0, 3, (8,)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    after = net.backbone.state_dict()
    assert after.keys() == backbone_before.keys()
    assert any("running_mean" in key for key in after)
    for key, value in backbone_before.items():
        assert torch.equal(after[key], value), key
    assert all(p.grad is None for p in net.backbone.parameters())
    assert not torch.equal(net.classifier.weight, classifier_before["weight"])
    assert not torch.equal(net.embedding_head.weight, head_before["weight"])


def test_an_unfrozen_backbone_does_move() -> None:
    # Guards the test above against an optimiser that changes nothing anyway.
    torch.manual_seed(0)
    net = create_network("resnet18", small_input=True, embedding_dim=16, num_classes=3).train()
    before = _copy_state(net.backbone)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.5)
    _, logits = net(torch.randn(8, 3, 28, 28))
    F.cross_entropy(logits, torch.randint(0, 3, (8,))).backward()
    optimizer.step()
    after = net.backbone.state_dict()
    assert not torch.equal(after["conv1.weight"], before["conv1.weight"])
    assert not torch.equal(after["bn1.running_mean"], before["bn1.running_mean"])
    assert not net.backbone_frozen
