"""Deep kNN with neighbours searched in the whole training set: an embedding bank refreshed
every epoch (method ``deepknn`` with ``method_options: {neighbours: bank}``)."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import medknn.run_training
from medknn.errors import ConfigError
from medknn.io import read_json
from medknn.losses.deep_knn_loss import DeepKNNLoss
from medknn.methods import (
    EmbeddingBank,
    MemoryBankObjective,
    MetricLossObjective,
    ObjectiveContext,
    TrainingSetEmbedder,
    create_objective,
)
from medknn.miners.deep_knn_miner import DeepKNNMiner
from medknn.runs import RunDir, TrainConfig
from medknn.training import Trainer
from medknn.training.distributed import DistributedContext, distributed_session
from medknn.training.distributed_sampler import DistributedBatchSampler

NUM_IMAGES, NUM_CLASSES, DIM = 40, 3, 6
MARGIN = 0.3


def _bank_data(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """40 float64 bank embeddings, 3 classes, at table rows that are not 0..39 (as a split's)."""
    rng = np.random.default_rng(seed)
    embeddings = rng.normal(size=(NUM_IMAGES, DIM))
    labels = np.arange(NUM_IMAGES) % NUM_CLASSES
    table_indices = rng.permutation(200)[:NUM_IMAGES]
    return embeddings, labels, table_indices


def _fixed_bank(
    embeddings: np.ndarray, labels: np.ndarray, table_indices: np.ndarray
) -> EmbeddingBank:
    bank = EmbeddingBank(
        TrainingSetEmbedder(table_indices, labels, embed=lambda _: torch.from_numpy(embeddings))
    )
    bank.refresh(nn.Linear(1, 1))
    return bank


def _batch(seed: int, embeddings: np.ndarray, table_indices: np.ndarray):
    """10 bank images as a batch: their bank row plus a little noise (an augmented view), so
    that each anchor's own row is its nearest neighbour unless it is excluded."""
    rng = np.random.default_rng(seed + 1000)
    rows = rng.choice(NUM_IMAGES, 10, replace=False)
    anchors = embeddings[rows] + 0.01 * rng.normal(size=(10, DIM))
    return rows, anchors, table_indices[rows]


def brute_force_triplets(anchors, anchor_labels, own_rows, bank, bank_labels, k, m):
    """Per anchor, the bank sorted by distance (unit vectors): the first k same-class rows other
    than its own, the first m other-class rows; all their (anchor, p, n) combinations."""
    queries = anchors / np.linalg.norm(anchors, axis=1, keepdims=True)
    refs = bank / np.linalg.norm(bank, axis=1, keepdims=True)
    triplets = set()
    for a in range(len(queries)):
        order = np.argsort(np.linalg.norm(refs - queries[a], axis=1), kind="stable")
        same = bank_labels[order] == anchor_labels[a]
        positives = [j for j in order[same] if j != own_rows[a]][:k]
        negatives = list(order[~same][:m])
        triplets |= {(a, p, n) for p in positives for n in negatives}
    return triplets


def slow_loss(anchors: torch.Tensor, bank: torch.Tensor, triplets: set) -> torch.Tensor:
    """Mean over the triplets of [d(a, p) + margin - d(a, n)]_+ on unit vectors, one at a time."""
    queries, refs = F.normalize(anchors, dim=1), F.normalize(bank, dim=1)
    terms = [
        F.relu(
            torch.linalg.norm(queries[a] - refs[p])
            + MARGIN
            - torch.linalg.norm(queries[a] - refs[n])
        )
        for a, p, n in sorted(triplets)
    ]
    return torch.stack(terms).mean()


# --- the whole-set search and the loss ---------------------------------------------------------


@pytest.mark.parametrize("seed", range(10))
def test_whole_set_search_matches_brute_force_without_the_anchors_own_row(seed: int) -> None:
    embeddings, labels, table_indices = _bank_data(seed)
    bank = _fixed_bank(embeddings, labels, table_indices)
    rows, anchors, batch_table_indices = _batch(seed, embeddings, table_indices)
    k, m = 1 + seed % 4, 1 + (seed * 3) % 5

    anchor_rows = bank.rows(torch.from_numpy(batch_table_indices))
    mined = DeepKNNMiner(k, m)(
        torch.from_numpy(anchors),
        torch.from_numpy(labels[rows]),
        bank.embeddings,
        bank.labels,
        anchor_rows=anchor_rows,
    )

    assert anchor_rows.tolist() == rows.tolist()
    expected = brute_force_triplets(anchors, labels[rows], rows, embeddings, labels, k, m)
    assert set(zip(*(t.tolist() for t in mined), strict=True)) == expected
    assert len(mined[0]) == len(expected) == 10 * k * m  # every class has > k other members
    # Without the exclusion each anchor would be its own (nearest) positive.
    with_itself = DeepKNNMiner(k, m)(
        torch.from_numpy(anchors), torch.from_numpy(labels[rows]), bank.embeddings, bank.labels
    )
    pairs = set(zip(with_itself[0].tolist(), with_itself[1].tolist(), strict=True))
    assert all((a, row) in pairs for a, row in enumerate(rows.tolist()))


def test_loss_equals_a_slow_loop_with_bank_rows_as_positives_and_negatives() -> None:
    embeddings, labels, table_indices = _bank_data(0)
    bank = _fixed_bank(embeddings, labels, table_indices)
    rows, anchors, batch_table_indices = _batch(0, embeddings, table_indices)
    anchors = torch.from_numpy(anchors + 0.5 * np.random.default_rng(7).normal(size=anchors.shape))
    objective = MemoryBankObjective(
        DeepKNNLoss(num_positives=3, num_negatives=4, margin=MARGIN),
        bank,
        stat_attributes=("num_triplets",),
    )

    loss, stats = objective(
        anchors, None, torch.from_numpy(labels[rows]), torch.from_numpy(batch_table_indices)
    )

    triplets = brute_force_triplets(anchors.numpy(), labels[rows], rows, embeddings, labels, 3, 4)
    reference = slow_loss(anchors, torch.from_numpy(embeddings), triplets)
    assert reference.item() > 0  # some triplets violate the margin, so the test can fail
    torch.testing.assert_close(loss, reference)
    assert stats == {"num_triplets": 10 * 3 * 4}


class TinyNetwork(nn.Module):
    """A linear embedding of unit length, no classifier (``(embeddings, None)`` like the models)."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Linear(10, DIM)
        self.embedding_dim = DIM

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, None]:
        return F.normalize(self.embedding(inputs), dim=1), None


def test_gradients_reach_the_network_through_the_anchors_only() -> None:
    torch.manual_seed(0)
    network = TinyNetwork()
    images, labels = torch.randn(NUM_IMAGES, 10), torch.arange(NUM_IMAGES) % NUM_CLASSES
    bank = EmbeddingBank(
        TrainingSetEmbedder(np.arange(NUM_IMAGES), labels.numpy(), lambda net: net(images)[0])
    )
    objective = MemoryBankObjective(DeepKNNLoss(2, 2, margin=MARGIN), bank)
    objective.on_epoch_start(network)
    batch = torch.tensor([3, 8, 15, 22, 31, 39])

    loss, _ = objective(network(images[batch])[0], None, labels[batch], batch)
    loss.backward()
    gradient = network.embedding.weight.grad.clone()

    assert not bank.embeddings.requires_grad and bank.embeddings.grad_fn is None
    triplets = brute_force_triplets(
        network(images[batch])[0].detach().numpy(),
        labels[batch].numpy(),
        batch.numpy(),
        bank.embeddings.numpy(),
        labels.numpy(),
        2,
        2,
    )
    for bank_side_differentiable, expected_equal in ((False, True), (True, False)):
        network.zero_grad()
        references = network(images)[0]
        if not bank_side_differentiable:
            references = references.detach()
        slow_loss(network(images[batch])[0], references, triplets).backward()
        same = torch.allclose(network.embedding.weight.grad, gradient, atol=1e-6)
        assert same == expected_equal
    assert gradient.abs().sum() > 0


# --- the refresh, the trainer and a run --------------------------------------------------------


def test_bank_is_refreshed_at_the_start_of_every_epoch(tmp_path: Path) -> None:
    torch.manual_seed(0)
    network = TinyNetwork()
    images, labels = torch.randn(24, 10), torch.arange(24) % NUM_CLASSES
    table_indices = torch.arange(100, 124)  # the batches carry table rows, not positions
    filled: list[torch.Tensor] = []

    def embed(net: nn.Module) -> torch.Tensor:
        filled.append(net(images)[0])
        return filled[-1]

    bank = EmbeddingBank(TrainingSetEmbedder(table_indices.numpy(), labels.numpy(), embed))
    objective = MemoryBankObjective(DeepKNNLoss(2, 2), bank, stat_attributes=("num_triplets",))
    loader = DataLoader(TensorDataset(images, labels, table_indices), batch_size=12, shuffle=True)
    trainer = Trainer(
        network,
        objective,
        TrainConfig(epochs=3, lr=0.5, weight_decay=0.0, device="cpu"),
        RunDir(tmp_path / "run"),
        device=torch.device("cpu"),
        progress=False,
    )

    history = trainer.fit(loader)

    assert bank.refreshes == len(filled) == 3
    assert not torch.allclose(filled[0], filled[1]) and not torch.allclose(filled[1], filled[2])
    assert torch.equal(bank.embeddings, filled[-1])
    assert [record["num_triplets"] for record in history] == [24 * 2 * 2] * 3


def test_tiny_run_with_whole_set_neighbours_completes(
    train_tiny: Callable, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bank_fills = []
    compute_outputs = medknn.run_training.compute_outputs

    def counting(network, dataset, **kwargs):
        if kwargs.get("description") == "embedding bank":
            bank_fills.append(len(dataset))
        return compute_outputs(network, dataset, **kwargs)

    monkeypatch.setattr(medknn.run_training, "compute_outputs", counting)

    run = train_tiny(
        tmp_path / "bank", method="deepknn", epochs=2, method_options={"neighbours": "bank"}
    )

    history = read_json(RunDir(run.path).history)
    train_size = len(read_json(RunDir(run.path).split)["train"]["indices"])
    assert bank_fills == [train_size, train_size]  # the whole training set, once per epoch
    assert [record["num_triplets"] for record in history] == [2 * 12 * 5 * 5] * 2
    assert read_json(RunDir(run.path).metrics)["method"] == "deepknn"
    assert run.config.method_options == {"neighbours": "bank"}


# --- two processes (gloo, CPU): each rank's bank and the global batch's table rows ---------------

# 12 of 24 training images, shuffled so that each rank's share mixes classes and positions.
GLOBAL_BATCH = np.random.default_rng(0).permutation(24)[:12].tolist()


def _fit_bank(
    workdir: Path, distributed: DistributedContext | None = None
) -> tuple[float, float, dict[str, torch.Tensor]]:
    """One step of the bank objective on ``GLOBAL_BATCH`` (this rank's share of it): the loss,
    the triplet count and the gradients."""
    torch.manual_seed(0)
    network = TinyNetwork()
    images, labels = torch.randn(24, 10), torch.arange(24) % NUM_CLASSES
    table_indices = torch.arange(50, 74)
    embedder = TrainingSetEmbedder(table_indices.numpy(), labels.numpy(), lambda n: n(images)[0])
    objective = MemoryBankObjective(
        DeepKNNLoss(2, 3), EmbeddingBank(embedder), stat_attributes=("num_triplets",)
    )
    batches: list | DistributedBatchSampler = [GLOBAL_BATCH]
    if distributed is not None:
        batches = DistributedBatchSampler(batches, rank=distributed.rank, world_size=2)
    loader = DataLoader(TensorDataset(images, labels, table_indices), batch_sampler=batches)
    trainer = Trainer(
        network,
        objective,
        TrainConfig(epochs=1, lr=0.1, weight_decay=0.0, device="cpu"),
        RunDir(workdir),
        device=torch.device("cpu"),
        progress=False,
        distributed=distributed,
    )
    (record,) = trainer.fit(loader)
    grads = {name: p.grad for name, p in network.named_parameters()}
    return record["loss"], record["num_triplets"], grads


def _bank_worker(rank: int, port: int, out: Path) -> None:
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE="2",
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        MEDKNN_DIST_TIMEOUT="120",
    )
    torch.set_num_threads(1)
    with distributed_session("cpu") as distributed:
        torch.save(_fit_bank(out / f"rank{rank}", distributed), out / f"rank{rank}.pt")


def test_two_processes_give_the_loss_and_gradients_of_one(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    torch.multiprocessing.spawn(_bank_worker, args=(port, tmp_path), nprocs=2)

    loss, num_triplets, grads = _fit_bank(tmp_path / "one")

    assert num_triplets == 12 * 2 * 3
    for rank in range(2):
        rank_loss, rank_triplets, rank_grads = torch.load(tmp_path / f"rank{rank}.pt")
        assert (rank_loss, rank_triplets) == (pytest.approx(loss, rel=1e-5), num_triplets)
        for name, grad in grads.items():
            torch.testing.assert_close(rank_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)


# --- choosing the search -------------------------------------------------------------------------


def test_neighbour_search_option_is_checked() -> None:
    counts = np.array([10, 10, 10])
    assert isinstance(
        create_objective("deepknn", ObjectiveContext(class_counts=counts)), MetricLossObjective
    )
    with pytest.raises(ConfigError, match="neighbours='whole'.*'batch'.*'bank'"):
        create_objective(
            "deepknn", ObjectiveContext(class_counts=counts, options={"neighbours": "whole"})
        )
    with pytest.raises(ConfigError, match="needs a run"):
        create_objective(
            "deepknn", ObjectiveContext(class_counts=counts, options={"neighbours": "bank"})
        )


def test_bank_refuses_images_it_does_not_hold() -> None:
    embeddings, labels, table_indices = _bank_data(0)
    bank = EmbeddingBank(TrainingSetEmbedder(table_indices, labels, lambda _: torch.zeros(40, 6)))
    with pytest.raises(RuntimeError, match="refresh"):
        bank.rows(torch.from_numpy(table_indices[:3]))
    bank.refresh(nn.Linear(1, 1))
    outside = sorted(set(range(201)) - set(table_indices.tolist()))
    for missing in (outside[0], 200, -1):
        with pytest.raises(RuntimeError, match="not in the embedding bank"):
            bank.rows(torch.tensor([int(table_indices[0]), missing]))
