"""The BSTriplet paper's methods (ce+bst, ce+triplet, ce+lifted), DM sampling, light backbones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import BREASTMNIST_SHORT_RUN
from torchvision import models

import medknn
from medknn.data import ClusterBatchSampler
from medknn.errors import ConfigError
from medknn.io import read_json
from medknn.losses import BSTripletLoss
from medknn.methods import ObjectiveContext, create_objective, get_method
from medknn.models import create_backbone, create_network, list_backbones
from medknn.runs import TrainConfig
from medknn.runs.batches import build_batch_sampler
from medknn.runs.prepare import prepare_data

NEW_METHODS = ("ce+bst", "ce+triplet", "ce+lifted")


def context(**options) -> ObjectiveContext:
    return ObjectiveContext(class_counts=np.array([30, 10]), options=options)


@pytest.mark.parametrize("name", NEW_METHODS)
def test_methods_put_classifier_and_metric_loss_on_the_pooled_feature(name: str) -> None:
    spec = get_method(name)
    assert (spec.embedding, spec.normalize_embedding, spec.classifier) == ("pooled", False, True)
    assert (spec.prediction, spec.sampler) == ("softmax", "shuffle")


@pytest.mark.parametrize("name", NEW_METHODS)
def test_loss_is_ce_plus_weighted_metric_and_reports_both(name: str) -> None:
    torch.manual_seed(0)
    embeddings = torch.rand(12, 8)
    logits, labels = torch.randn(12, 2), torch.arange(12) % 2
    objective = create_objective(name, context(weight=0.5))

    loss, stats = objective(embeddings, logits, labels)

    assert stats["ce"] == pytest.approx(F.cross_entropy(logits, labels).item(), rel=1e-6)
    assert stats["metric"] > 0
    assert loss.item() == pytest.approx(stats["ce"] + 0.5 * stats["metric"], rel=1e-6)


def test_ce_plus_bst_options_reach_the_loss() -> None:
    objective = create_objective("ce+bst", context(bst_margin=0.6, squared=False))
    loss = objective.metric_loss
    assert isinstance(loss, BSTripletLoss)
    assert (loss.margin, loss.squared, objective.weight) == (0.6, False, 1.0)


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("ce+bst", {"margin": 0.5}, "no option 'margin'.*bst_margin"),
        ("ce+bst", {"squared": "yes"}, "squared='yes'"),
        ("ce+bst", {"bst_margin": 2.0}, r"margin=2\.0"),
        ("ce+triplet", {"weight": "high"}, "weight='high' must be a number"),
        ("ce+lifted", {"weight": -1}, "finite number >= 0"),
    ],
)
def test_bad_options_raise_config_errors(name: str, options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        create_objective(name, context(**options))


def test_metric_gradient_reaches_the_backbone() -> None:
    torch.manual_seed(0)
    network = create_network(
        "mobilenetv3_small_050", embedding_dim=None, normalize=False, num_classes=2
    )
    objective = create_objective("ce+bst", context())
    embeddings, _ = network(torch.randn(6, 3, 32, 32))
    objective.metric_loss(embeddings, torch.tensor([0, 0, 0, 1, 1, 1])).backward()
    stem = network.backbone.conv_stem.weight.grad
    assert stem is not None and stem.abs().sum() > 0


def test_cluster_sampler_is_built_from_the_config() -> None:
    config = TrainConfig(**BREASTMNIST_SHORT_RUN, method="ce", sampler="cluster", cluster_groups=3)
    prepared = prepare_data(config, None, progress=False)
    sampler = build_batch_sampler(config, get_method("ce"), prepared)
    assert isinstance(sampler, ClusterBatchSampler)
    assert sampler.group_classes.tolist() == [0, 0, 0, 1, 1, 1]
    assert sampler.group_sizes.sum() == len(prepared.indices("train"))
    assert all(len(batch) == 12 for batch in sampler)
    with pytest.raises(ConfigError, match="cluster_groups=0"):
        TrainConfig(cluster_groups=0)
    with pytest.raises(ConfigError, match="Did you mean: cluster"):
        build_batch_sampler(config.replace(sampler="clusters"), get_method("ce"), prepared)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("method", "sampler"),
    [("ce+bst", "cluster"), ("ce+triplet", None), ("ce+lifted", None), ("ce", "cluster")],
)
def test_method_trains_one_short_epoch_on_breastmnist(
    tmp_path: Path, method: str, sampler: str | None
) -> None:
    run = tmp_path / "run"
    medknn.train(
        {**BREASTMNIST_SHORT_RUN, "method": method, "sampler": sampler}, run, progress=False
    )
    (epoch,) = read_json(run / "history.json")
    metrics = read_json(run / "metrics.json")
    assert np.isfinite(epoch["loss"])
    if method != "ce":
        assert epoch["ce"] > 0 and epoch["metric"] >= 0
    assert 0 <= metrics["sensitivity"] <= 1 and 0 <= metrics["specificity"] <= 1
    assert metrics["auc"] is not None


def test_shufflenet_v2_from_torchvision_builds_and_trains_a_step() -> None:
    assert "torchvision/shufflenet_v2_x1_0" in list_backbones("torchvision/shufflenet*")
    torch.manual_seed(0)
    network = create_network(
        "torchvision/shufflenet_v2_x1_0",
        embedding_dim=None,
        normalize=False,
        num_classes=2,
        small_input=True,
    )
    assert network.embedding_dim == 1024
    objective = create_objective("ce+bst", context())
    optimizer = torch.optim.SGD(network.parameters(), lr=0.1)
    before = network.backbone.conv1[0].weight.detach().clone()

    embeddings, logits = network(torch.randn(6, 3, 28, 28))
    loss, _ = objective(embeddings, logits, torch.tensor([0, 1, 0, 1, 0, 1]))
    loss.backward()
    optimizer.step()

    assert embeddings.shape == (6, 1024) and torch.isfinite(loss)
    assert not torch.equal(before, network.backbone.conv1[0].weight)


def test_torchvision_backbone_loads_a_torchvision_state_dict(tmp_path: Path) -> None:
    source = models.shufflenet_v2_x0_5(weights=None)  # with its 1000-class fc, as published
    path = tmp_path / "shufflenet.pth"
    torch.save(source.state_dict(), path)
    backbone = create_backbone("torchvision/shufflenet_v2_x0_5", weights=path)
    torch.testing.assert_close(backbone.conv5[0].weight, source.conv5[0].weight)
    assert backbone.num_features == 1024 and isinstance(backbone.fc, torch.nn.Identity)


def test_torchvision_backbone_errors_name_the_fix() -> None:
    with pytest.raises(ConfigError, match="No offline pretrained weights.*--weights"):
        create_backbone("torchvision/shufflenet_v2_x1_0", pretrained=True)
    with pytest.raises(ConfigError, match="Did you mean: .*torchvision/shufflenet_v2_x1_0"):
        create_backbone("torchvision/shufflenet_v2_x1")
    with pytest.raises(ConfigError, match="auxiliary outputs"):
        create_backbone("torchvision/googlenet")
