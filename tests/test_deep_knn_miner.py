"""DeepKNNMiner against a brute-force loop that sorts the distances of every anchor."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from medknn.errors import ConfigError
from medknn.miners.deep_knn_miner import DeepKNNMiner


def brute_force_triplets(embeddings, labels, ref_emb, ref_labels, k, m, exclude_self):
    """Reference mining: per anchor, sort the references by distance, keep the first k and m."""
    queries, refs = F.normalize(embeddings, dim=1), F.normalize(ref_emb, dim=1)
    triplets, skipped = set(), 0
    for a in range(len(queries)):
        by_distance = sorted(
            range(len(refs)), key=lambda j, a=a: torch.linalg.norm(queries[a] - refs[j]).item()
        )
        positives = [
            j for j in by_distance if ref_labels[j] == labels[a] and not (exclude_self and j == a)
        ][:k]
        negatives = [j for j in by_distance if ref_labels[j] != labels[a]][:m]
        if not positives or not negatives:
            skipped += 1
        triplets |= {(a, p, n) for p in positives for n in negatives}
    return triplets, skipped


def as_set(indices_tuple):
    return set(zip(*(t.tolist() for t in indices_tuple), strict=True))


def random_labels(generator, size):
    """Labels including classes with exactly 1 and 2 members (mined with fewer than K positives)."""
    labels = torch.randint(0, 4, (size - 3,), generator=generator)
    labels = torch.cat([labels, torch.tensor([7, 8, 8])])
    return labels[torch.randperm(size, generator=generator)]


@pytest.mark.parametrize("seed", range(50))
def test_batch_mining_matches_brute_force(seed):
    gen = torch.Generator().manual_seed(seed)
    size = int(torch.randint(6, 25, (1,), generator=gen))
    k, m = (int(v) for v in torch.randint(1, 7, (2,), generator=gen))
    embeddings = torch.randn(size, 5, generator=gen, dtype=torch.float64)
    labels = random_labels(gen, size)

    miner = DeepKNNMiner(num_positives=k, num_negatives=m)
    mined = miner(embeddings, labels)

    expected, skipped = brute_force_triplets(
        embeddings, labels, embeddings, labels, k, m, exclude_self=True
    )
    assert as_set(mined) == expected
    assert len(mined[0]) == len(expected)  # no duplicates
    assert miner.num_skipped_anchors == skipped >= 1  # the class with one member
    assert miner.num_triplets == len(expected)


@pytest.mark.parametrize("seed", range(50))
def test_reference_set_mining_matches_brute_force(seed):
    gen = torch.Generator().manual_seed(1000 + seed)
    k, m = (int(v) for v in torch.randint(1, 7, (2,), generator=gen))
    embeddings = torch.randn(8, 4, generator=gen, dtype=torch.float64)
    labels = random_labels(gen, 8)
    labels[0] = 9  # a class absent from the reference set
    ref_emb = torch.randn(20, 4, generator=gen, dtype=torch.float64)
    ref_labels = random_labels(gen, 20)

    miner = DeepKNNMiner(num_positives=k, num_negatives=m)
    mined = miner(embeddings, labels, ref_emb, ref_labels)

    expected, skipped = brute_force_triplets(
        embeddings, labels, ref_emb, ref_labels, k, m, exclude_self=False
    )
    assert as_set(mined) == expected
    assert miner.num_skipped_anchors == skipped >= 1


def test_anchor_is_its_own_positive_only_for_a_separate_reference_set():
    embeddings = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 1])
    miner = DeepKNNMiner(num_positives=1, num_negatives=1)

    assert as_set(miner(embeddings, labels)) == set()
    assert miner.num_skipped_anchors == 2
    assert as_set(miner(embeddings, labels, embeddings.clone(), labels)) == {(0, 0, 1), (1, 1, 0)}
    assert miner.num_skipped_anchors == 0


def test_counts_k_times_m_triplets_and_skipped_anchors():
    gen = torch.Generator().manual_seed(0)
    labels = torch.tensor([0] * 6 + [1] * 6 + [2])  # class 2 has no positive
    miner = DeepKNNMiner(num_positives=3, num_negatives=4)
    miner(torch.randn(13, 8, generator=gen), labels)
    assert miner.num_triplets == 12 * 3 * 4
    assert miner.num_skipped_anchors == 1

    miner(torch.randn(5, 8, generator=gen), torch.zeros(5, dtype=torch.long))
    assert (miner.num_triplets, miner.num_skipped_anchors) == (0, 5)


def test_default_distance_is_scale_free():
    gen = torch.Generator().manual_seed(3)
    embeddings = torch.randn(30, 6, generator=gen)
    labels = torch.randint(0, 3, (30,), generator=gen)
    miner = DeepKNNMiner(num_positives=2, num_negatives=2)
    scaled = embeddings * torch.rand(30, 1, generator=gen) * 10
    assert as_set(miner(embeddings, labels)) == as_set(miner(scaled, labels))


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_invalid_neighbour_counts_name_the_value(bad):
    with pytest.raises(ConfigError, match=f"num_positives={bad!r}"):
        DeepKNNMiner(num_positives=bad)
    with pytest.raises(ConfigError, match=f"num_negatives={bad!r}"):
        DeepKNNMiner(num_negatives=bad)
