"""Training on 2 processes (gloo, CPU) matches one process: batch split, loss, gradients, a run."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from medknn.data import (
    ClassBalancedBatchSampler,
    ClusterBatchSampler,
    ShuffledBatchSampler,
    StratifiedBatchSampler,
)
from medknn.errors import ConfigError
from medknn.methods import ObjectiveContext, create_objective
from medknn.prediction import TrainedRun
from medknn.runs import RunDir, TrainConfig
from medknn.training import Trainer
from medknn.training.checkpoint import load_checkpoint
from medknn.training.distributed import DistributedContext, distributed_session
from medknn.training.distributed_sampler import DistributedBatchSampler

WORLD = 2
LABELS = np.repeat([0, 1, 2], [10, 7, 5])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _rank_env(rank: int, port: int, timeout: float) -> dict[str, str]:
    """What torchrun sets for a worker, for processes started by hand."""
    return {
        "RANK": str(rank),
        "LOCAL_RANK": str(rank),
        "WORLD_SIZE": str(WORLD),
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
        "MEDKNN_DIST_TIMEOUT": str(timeout),
        "OMP_NUM_THREADS": "1",
    }


# --- the batch split -----------------------------------------------------------------------


def _sampler(kind: str) -> Any:
    if kind == "stratified":
        return StratifiedBatchSampler(LABELS, classes_per_batch=3, samples_per_class=4, seed=1)
    if kind == "shuffle":  # 21 = 8 + 8 + 5: the last batch is padded to 6
        return ShuffledBatchSampler(len(LABELS) - 1, batch_size=8, seed=1)
    if kind == "cluster":
        features = np.random.default_rng(0).normal(size=(len(LABELS), 4))
        return ClusterBatchSampler(LABELS, features, batch_size=8, seed=1)
    return ClassBalancedBatchSampler(LABELS, 8, seed=1)


@pytest.mark.parametrize("kind", ["stratified", "shuffle", "cluster", "balanced"])
def test_ranks_split_each_global_batch_into_equal_disjoint_slices(kind: str) -> None:
    whole = _sampler(kind)
    ranks = [DistributedBatchSampler(_sampler(kind), rank=r, world_size=WORLD) for r in (0, 1)]
    assert len(ranks[0]) == len(whole)
    padded = 0
    for epoch in (0, 3):
        for sampler in (whole, *ranks):
            sampler.set_epoch(epoch)
        for batch, *slices in zip(whole, *ranks, strict=True):
            assert len(slices[0]) == len(slices[1]) >= 2
            interleaved = np.stack(slices, axis=1).ravel().tolist()
            if len(batch) % WORLD == 0:
                assert interleaved == batch  # a partition, in the sampler's order
            else:  # the short last batch, padded with its own images
                assert interleaved[: len(batch)] == batch
                assert set(interleaved) == set(batch)
                padded += 1
    assert padded == (2 if kind == "shuffle" else 0)


def test_every_rank_gets_every_class_of_a_stratified_batch() -> None:
    for rank in (0, 1):
        sampler = DistributedBatchSampler(_sampler("stratified"), rank=rank, world_size=WORLD)
        for batch in sampler:
            assert sorted(set(LABELS[batch])) == [0, 1, 2]


def test_a_batch_that_cannot_be_split_evenly_is_refused() -> None:
    odd = StratifiedBatchSampler(LABELS, classes_per_batch=3, samples_per_class=3)
    with pytest.raises(ConfigError, match=r"Batches of 9 images .* batch_size=10"):
        DistributedBatchSampler(odd, rank=0, world_size=WORLD)
    with pytest.raises(ConfigError, match="rank=2"):
        DistributedBatchSampler(_sampler("shuffle"), rank=2, world_size=WORLD)


# --- one training step: 2 processes on two halves vs 1 process on the whole ----------------------

METHODS = ("deepknn", "supcon", "weighted-ce", "ce+bst", "npairs", "triplet-hard")
# Shuffled so that the split into rows r, r + 2, ... mixes classes and positions.
BATCH = np.random.default_rng(0).permutation(12).tolist()
Fitted = tuple[list[float], dict[str, torch.Tensor], dict[str, torch.Tensor]]


class TinyNetwork(nn.Module):
    """Linear embedding of unit length and a linear classifier: no BatchNorm, no dropout."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Linear(10, 8)
        self.classifier = nn.Linear(8, 3)

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embeddings = F.normalize(self.embedding(inputs), dim=1)
        return embeddings, self.classifier(embeddings)


def _fit(
    method: str, workdir: Path, distributed: DistributedContext | None = None, *, epochs: int = 1
) -> Fitted:
    """The Trainer on ``BATCH`` (this rank's share of it) each epoch: the epochs' losses, the
    last step's gradients and the final weights."""
    torch.manual_seed(0)
    network = TinyNetwork()
    inputs = torch.randn(12, 10)
    labels = torch.arange(12) % 3
    batches: Any = [BATCH]
    if distributed is not None:
        batches = DistributedBatchSampler(batches, rank=distributed.rank, world_size=WORLD)
    loader = DataLoader(TensorDataset(inputs, labels, torch.arange(12)), batch_sampler=batches)
    context = ObjectiveContext(class_counts=np.array([4, 4, 4]), num_positives=2, num_negatives=2)
    trainer = Trainer(
        network,
        create_objective(method, context),
        TrainConfig(epochs=epochs, lr=0.1, weight_decay=0.0, device="cpu"),
        RunDir(workdir),
        device=torch.device("cpu"),
        progress=False,
        distributed=distributed,
    )
    losses = [record["loss"] for record in trainer.fit(loader)]
    grads = {name: p.grad for name, p in network.named_parameters() if p.grad is not None}
    return losses, grads, {name: p.detach() for name, p in network.named_parameters()}


def _fit_worker(rank: int, port: int, out: Path) -> None:
    os.environ.update(_rank_env(rank, port, timeout=120))
    torch.set_num_threads(1)
    with distributed_session("cpu") as distributed:
        results = {m: _fit(m, out / f"rank{rank}" / m, distributed) for m in METHODS}
        # Both ranks share a run directory, as under torchrun: rank 0 writes, both resume.
        _fit("deepknn", out / "shared", distributed, epochs=1)
        distributed.barrier("waiting for rank 0's checkpoint")
        results["resumed"] = _fit("deepknn", out / "shared", distributed, epochs=2)
    torch.save(results, out / f"rank{rank}.pt")


@pytest.fixture(scope="module")
def two_process_fits(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Fitted]]:
    out = tmp_path_factory.mktemp("ddp-fits")
    torch.multiprocessing.spawn(_fit_worker, args=(_free_port(), out), nprocs=WORLD)
    return [torch.load(out / f"rank{rank}.pt") for rank in range(WORLD)]


@pytest.mark.parametrize("method", METHODS)
def test_two_processes_give_the_loss_and_gradients_of_one(
    method: str, two_process_fits: list[dict[str, Fitted]], tmp_path: Path
) -> None:
    (loss,), grads, _ = _fit(method, tmp_path)
    assert sum(g.abs().sum() for g in grads.values()) > 0
    for results in two_process_fits:
        (rank_loss,), rank_grads, _ = results[method]
        assert rank_loss == pytest.approx(loss, rel=1e-5)
        assert rank_grads.keys() == grads.keys()
        for name, grad in grads.items():
            torch.testing.assert_close(rank_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_a_resumed_two_process_run_continues_like_one_process(
    two_process_fits: list[dict[str, Fitted]], tmp_path: Path
) -> None:
    losses, _, weights = _fit("deepknn", tmp_path, epochs=2)
    assert losses[1] < losses[0]
    for results in two_process_fits:
        rank_losses, _, rank_weights = results["resumed"]
        assert rank_losses == pytest.approx(losses, rel=1e-5)
        for name, weight in weights.items():
            torch.testing.assert_close(rank_weights[name], weight, rtol=1e-4, atol=1e-6, msg=name)


# --- the real command under torchrun ------------------------------------------------------------


def test_torchrun_trains_a_complete_run_that_loads_in_one_process(
    tiny_options: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "run"
    options = {**tiny_options, "device": "cpu"}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    command = [
        *(*torchrun, "-m", "medknn", "train", "--out", str(out), "--quiet"),
        *(f"--set={key}={json.dumps(value)}" for key, value in options.items()),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MEDKNN_DIST_TIMEOUT": "120"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    run_dir = RunDir(out)
    assert json.loads(run_dir.status.read_text())["status"] == "complete"
    (record,) = json.loads(run_dir.history.read_text())
    # 2 global batches of 3 classes × 4 images; each anchor: 3 positives × 5 negatives. Each
    # rank's own 6 images would give 6 anchors × 1 positive × 4 negatives.
    assert record["num_triplets"] == 2 * 12 * 3 * 5
    run = TrainedRun.load(out)
    assert set(load_checkpoint(run_dir.last_checkpoint)["model"]) == set(run.network.state_dict())
    (prediction,) = run.predict_arrays(np.zeros((1, 32, 32, 1), np.uint8), ["blank"])
    assert len(prediction.neighbours) == tiny_options["k_predict"]


# --- a rank that fails ----------------------------------------------------------------------

# Both processes wait for each other after the slow imports, so that the short timeout only
# measures the failure, not one process importing medknn later than the other.
FAILING_JOB = """
import os, sys, time
from pathlib import Path
import torch
from medknn.training.distributed import distributed_session
ready = Path(sys.argv[2])
(ready / os.environ["RANK"]).touch()
while len(list(ready.iterdir())) < 2:
    time.sleep(0.05)
with distributed_session("cpu") as distributed:
    if distributed.rank == 1:
        if sys.argv[1] == "raise":
            raise ValueError("rank 1 broke")
        time.sleep(300)
    started = time.monotonic()
    try:
        distributed.gather(torch.ones(3))
    finally:
        print(f"waited {time.monotonic() - started:.1f}", flush=True)
"""


@pytest.mark.parametrize("failure", ["raise", "hang"])
def test_a_failed_rank_stops_the_job_with_a_message_within_the_timeout(
    failure: str, tmp_path: Path
) -> None:
    port, timeout = _free_port(), 5.0
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", FAILING_JOB, failure, str(tmp_path)],
            env={**os.environ, **_rank_env(rank, port, timeout)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in range(WORLD)
    ]
    try:
        stdout, stderr = processes[0].communicate(timeout=300)
    finally:
        for process in processes:
            process.kill()
            process.communicate()
    assert processes[0].returncode != 0
    assert "TrainingError: rank 0 of 2: gathering the batch failed" in stderr
    assert f"within {timeout:g} s" in stderr
    waited = float(stdout.split()[-1])
    # A crashed rank is noticed at once (its sockets close); a hung one after the timeout.
    assert timeout - 1 < waited < timeout + 5 if failure == "hang" else waited < timeout
