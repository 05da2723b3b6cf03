"""The constellation paper's methods: their losses (eq. 1-4), the sigmoid head, real training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import medknn
from medknn.data import resolve_data_root
from medknn.errors import ConfigError, DataError
from medknn.methods import ObjectiveContext, create_objective, get_method
from medknn.models import create_network

NEW_METHODS = ["contrastive", "triplet-hard", "npairs", "npairs-all", "constellation"]


def _context(**changes) -> ObjectiveContext:
    return ObjectiveContext(class_counts=np.array([10, 10, 10]), **changes)


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(3).repeat_interleave(4)
    centres = torch.randn(3, 6, generator=gen)
    raw = centres[labels] + 0.8 * torch.randn(12, 6, generator=gen)
    return F.normalize(raw, dim=1), labels


@pytest.mark.parametrize("name", NEW_METHODS)
def test_methods_use_the_papers_head_and_stratified_knn(name: str):
    spec = get_method(name)
    assert (spec.head_activation, spec.embedding, spec.normalize_embedding) == (
        "sigmoid",
        "projected",
        True,
    )
    assert (spec.sampler, spec.prediction, spec.classifier) == ("stratified", "knn", False)
    with pytest.raises(ConfigError, match=f"{name}.*no option 'bogus'"):
        create_objective(name, _context(options={"bogus": 1}))


def test_triplet_hard_averages_every_violating_triplet_on_squared_distances():
    embeddings, labels = _batch()
    loss, _ = create_objective("triplet-hard", _context(margin=0.3))(embeddings, None, labels)
    squared = torch.cdist(embeddings, embeddings) ** 2
    terms = [
        squared[a, p] - squared[a, n] + 0.3
        for a in range(12)
        for p in range(12)
        for n in range(12)
        if a != p and labels[a] == labels[p] and labels[n] != labels[a]
    ]
    violating = [t for t in terms if t > 0]
    assert 0 < len(violating) < len(terms)
    assert loss.item() == pytest.approx(torch.stack(violating).mean().item(), rel=1e-5)


def test_contrastive_pulls_pairs_together_and_pushes_others_beyond_distance_one():
    embeddings, labels = _batch(1)
    loss, _ = create_objective("contrastive", _context())(embeddings, None, labels)
    distance = torch.cdist(embeddings, embeddings)
    same = labels[:, None] == labels[None, :]
    positive = distance[same & ~torch.eye(12, dtype=torch.bool)].mean()
    negative = F.relu(1 - distance[~same]).mean()
    assert loss.item() == pytest.approx((positive + negative).item(), rel=1e-5)


def test_npairs_is_softmax_over_cosines_of_one_pair_per_class():
    gen = torch.Generator().manual_seed(3)
    labels = torch.arange(3).repeat_interleave(4)
    embeddings = torch.sigmoid(torch.randn(12, 6, generator=gen))
    loss, _ = create_objective("npairs", _context())(embeddings, None, labels)
    anchors, positives = torch.tensor([0, 4, 8]), torch.tensor([1, 5, 9])  # first pair per class
    unit = F.normalize(embeddings, dim=1)
    expected = F.cross_entropy(unit[anchors] @ unit[positives].T, torch.arange(3))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_npairs_all_is_the_n_pair_loss_on_every_pair_of_the_batch():
    objective = create_objective("npairs-all", _context())
    assert get_method("npairs-all").stats == ("num_pairs", "num_terms")
    embeddings, labels = _batch(2)
    torch.manual_seed(0)
    loss, stats = objective(embeddings, None, labels)
    assert stats == {"num_pairs": 3 * (4 * 3 // 2), "num_terms": 18 * 2}  # one per other class
    torch.manual_seed(0)  # the same draw: the constellation loss with K = 2 other classes
    same, _ = create_objective("constellation", _context(num_negatives=2))(embeddings, None, labels)
    assert loss.item() == pytest.approx(same.item(), rel=1e-6)
    with pytest.raises(ConfigError, match="npairs-all.*no option 'num_negatives'"):
        create_objective("npairs-all", _context(options={"num_negatives": 3}))


def test_constellation_takes_k_from_num_negatives():
    objective = create_objective("constellation", _context(num_negatives=7))
    assert objective.loss.num_negatives == 7
    embeddings, labels = _batch(2)
    loss, stats = objective(embeddings, None, labels)
    assert loss.item() > 0 and stats["num_pairs"] == 3 * (4 * 3 // 2)
    assert stats["num_terms"] == stats["num_pairs"] * 7  # 2 other classes × 4 images ≥ 7


def test_head_activation_is_off_by_default_and_named_when_unknown():
    plain = create_network("mlp", in_features=4, embedding_dim=3)
    assert isinstance(plain.head_activation, nn.Identity)
    assert "embedding_head.weight" in plain.state_dict()
    sigmoid = create_network("mlp", in_features=4, embedding_dim=3, head_activation="sigmoid")
    assert set(sigmoid.state_dict()) == set(plain.state_dict())  # saved runs load as before
    sigmoid.load_state_dict(plain.state_dict())
    inputs = torch.randn(20, 4)
    embeddings = sigmoid.embed(inputs)
    assert (plain.embed(inputs) < 0).any() and (embeddings > 0).all()
    torch.testing.assert_close(embeddings.norm(dim=1), torch.ones(20), rtol=0, atol=1e-6)
    with pytest.raises(ConfigError, match="'sigmod'.*sigmoid"):
        create_network("mlp", in_features=4, head_activation="sigmod")


@pytest.fixture(scope="module")
def breastmnist_options() -> dict:
    try:
        if not (resolve_data_root() / "medmnist" / "breastmnist.npz").is_file():
            pytest.skip("breastmnist.npz is missing")
    except DataError:
        pytest.skip("no shared data folder")
    return {
        "data": "breastmnist",
        "backbone": "mobilenetv3_small_050",
        "pretrained": False,
        "image_size": 28,
        "epochs": 1,
        "batch_size": 12,
        "classes_per_batch": 2,
        "max_batches_per_epoch": 2,
        "embedding_dim": 16,
        "k_predict": 3,
        "num_negatives": 3,
    }


@pytest.mark.parametrize("name", NEW_METHODS)
def test_method_trains_one_short_epoch_on_breastmnist(
    name: str, breastmnist_options: dict, tmp_path: Path
):
    run = medknn.train({**breastmnist_options, "method": name}, tmp_path / name, progress=False)
    metrics = medknn.io.read_json(tmp_path / name / "metrics.json")
    assert metrics["n"] == 156 and 0 <= metrics["mcr"] <= 1
    history = medknn.api.history(tmp_path / name)
    assert len(history) == 1 and np.isfinite(history[0]["loss"])
    assert isinstance(run.network.head_activation, nn.Sigmoid)
    embeddings = run.knn.embeddings_
    assert (embeddings >= 0).all()  # sigmoid outputs, then L2 normalisation
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1, atol=1e-5)
