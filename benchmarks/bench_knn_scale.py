"""kNN search at scale: exact, IVF and HNSW indexes of medknn's KNNClassifier on clustered
synthetic embeddings: build time, queries/s, memory, and recall@k against exact search.

OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_knn_scale.py --sizes 100000,1000000

The embeddings are L2-normalised 128-d points of a mixture of Gaussian clusters (random unit
centres, per-cluster noise 0.8-1.6x the centre's norm, cluster weights ~ Dirichlet(2)); the
queries are new draws from the same mixture. Each index is built, saved, and loaded back as a
run loads it (approximate indexes memory-mapped), and the loaded one is timed. Exact search is
timed on the first --exact-queries queries only (it is slow at 1M); recall is measured on
those, whose true neighbours are known.
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from importlib.metadata import version
from pathlib import Path

import numpy as np
from _report import markdown_table, median_seconds, write_report

from medknn.prediction import KNNClassifier
from medknn.prediction.knn_index import set_search_options
from medknn.runs.knn_index_options import KNN_INDEXES

# Query-time settings also timed on each approximate index (no rebuild needed).
SEARCH_SWEEP = {"ivf": ("nprobe", (4, 8, 32)), "hnsw": ("ef_search", (64, 256))}
TARGET_SPEEDUP, TARGET_RECALL = 10.0, 0.95

Draw = Callable[[int], tuple[np.ndarray, np.ndarray]]


@dataclass
class Result:
    size: int
    index: str
    options: dict[str, int | None]
    default: bool
    queries: int
    recall: float
    queries_per_s: float = 0.0
    speedup: float = 0.0
    build_s: float | None = None
    file_mib: float | None = None
    rss_mib: tuple[float, float, float] | None = None  # growth: build, load, after queries


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="training set sizes")
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--exact-queries", type=int, default=300)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--clusters", type=int, default=1_000)
    parser.add_argument("--k", type=int, default=5, help="neighbours (K_p)")
    parser.add_argument("--reps", type=int, default=3, help="timed repeats of each query set")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def mixture(args: argparse.Namespace) -> Draw:
    """``draw(n) -> (points, cluster of each)`` from one fixed mixture of Gaussian clusters."""
    rng = np.random.default_rng(args.seed)
    centres = rng.normal(size=(args.clusters, args.dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    noise = rng.uniform(0.8, 1.6, args.clusters).astype(np.float32) / np.sqrt(args.dim)
    weights = rng.dirichlet(np.full(args.clusters, 2.0))

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        cluster = rng.choice(args.clusters, n, p=weights)
        points = rng.standard_normal((n, args.dim), dtype=np.float32)
        points = points * noise[cluster, None] + centres[cluster]
        return points / np.linalg.norm(points, axis=1, keepdims=True), cluster

    return draw


def rss_mib() -> float:
    """Resident set size now (anonymous and mapped file pages), MiB; Linux only."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of the true k nearest neighbours among the k returned."""
    return float((found[:, :, None] == truth[:, None, :]).any(axis=2).mean())


def search(knn: KNNClassifier, options: dict[str, int | None], queries: np.ndarray) -> None:
    set_search_options(knn.index_, knn.index_type_, options)
    knn.kneighbors(queries)


def built_saved_loaded(
    kind: str, train: np.ndarray, labels: np.ndarray, k: int, directory: Path
) -> tuple[KNNClassifier, float, float, float, float]:
    """``(loaded classifier, build s, file MiB, RSS growth of the build, RSS before the load)``;
    one copy of the index is alive at a time."""
    gc.collect()
    before = rss_mib()
    start = time.perf_counter()
    knn = KNNClassifier(k, index=kind).fit(train, labels)
    build_s, build_mib = time.perf_counter() - start, rss_mib() - before
    knn.save(directory)
    file = directory / ("embeddings.safetensors" if kind == "exact" else "index.faiss")
    del knn
    gc.collect()
    before_load = rss_mib()
    return (
        KNNClassifier.load(directory),
        build_s,
        file.stat().st_size / 2**20,
        build_mib,
        before_load,
    )


def measure_size(
    size: int, args: argparse.Namespace, draw: Draw, workdir: Path
) -> tuple[list[Result], float]:
    """The results of every index and setting, and the share of the true neighbours that lie
    in the query's own cluster (how clustered the data is)."""
    train, clusters = draw(size)
    labels = clusters % 7  # any labels: the benchmark times the search, not the vote
    queries, query_clusters = draw(args.queries)
    checked = queries[: args.exact_queries]
    results: list[Result] = []
    searches: dict[str, Callable[[], None]] = {}
    truth = None
    for kind in KNN_INDEXES:  # exact first: it gives the true neighbours
        knn, build_s, file_mib, build_mib, before_load = built_saved_loaded(
            kind, train, labels, args.k, workdir / f"{size}-{kind}"
        )
        load_mib = rss_mib() - before_load
        name, others = SEARCH_SWEEP.get(kind, ("", ()))
        default = knn.index_options_.get(name)
        for value in sorted({*others, default}) if others else [default]:
            options = {**knn.index_options_, name: value} if others else {}
            set_search_options(knn.index_, kind, options)
            found = knn.kneighbors(checked)[1]  # also pages in what the searches need
            truth = found if truth is None else truth
            timed = checked if kind == "exact" else queries
            result = Result(size, kind, options, value == default, len(timed), recall(found, truth))
            if result.default:
                result.build_s, result.file_mib, with_memory = build_s, file_mib, result
            searches[f"{kind} {value}"] = partial(search, knn, options, timed)
            results.append(result)
        with_memory.rss_mib = (build_mib, load_mib, rss_mib() - before_load)
        print(f"{time.strftime('%X')} n={size:,} {kind}: built, saved, loaded", flush=True)
    # The searches alternate, so that load changes on the shared CPU hit every index alike.
    seconds = median_seconds(searches, reps=args.reps, warmup=0)
    for result, elapsed in zip(results, seconds.values(), strict=True):
        result.queries_per_s = result.queries / elapsed
        result.speedup = result.queries_per_s / results[0].queries_per_s
    own_cluster = float((clusters[truth] == query_clusters[: len(truth), None]).mean())
    return results, own_cluster


def table(results: list[Result], k: int) -> str:
    rows = []
    for r in results:
        shown = ", ".join(f"{key}={value}" for key, value in r.options.items()) or "-"
        rows.append(
            [
                f"{r.size:,}",
                r.index,
                f"{shown} (default)" if r.default and r.options else shown,
                "" if r.build_s is None else f"{r.build_s:.1f}",
                f"{r.queries_per_s:,.0f}",
                f"{r.speedup:.1f}x",
                f"{r.recall:.3f}",
                "" if r.file_mib is None else f"{r.file_mib:,.0f}",
                "" if r.rss_mib is None else " / ".join(f"{m:,.0f}" for m in r.rss_mib),
            ]
        )
    header = [
        "training cases",
        "index",
        "options",
        "build s",
        "queries/s",
        "vs exact",
        f"recall@{k}",
        "index file MiB",
        "RSS growth MiB: build / load / after queries",
    ]
    return markdown_table(header, rows)


def verdict(results: list[Result]) -> str:
    largest = max(r.size for r in results)
    met = [
        r
        for r in results
        if r.size == largest and r.default and r.index != "exact"
        if r.speedup >= TARGET_SPEEDUP and r.recall >= TARGET_RECALL
    ]
    target = (
        f"Target at {largest:,}: an approximate index >= {TARGET_SPEEDUP:.0f}x the queries/s of "
        f"exact search with recall >= {TARGET_RECALL}"
    )
    if not met:
        return f"{target}: **not reached** with the default options."
    reached = ", ".join(f"{r.index} ({r.speedup:.0f}x, recall {r.recall:.3f})" for r in met)
    return f"{target}: reached by {reached} with the default options."


def main() -> None:
    args = parse_args()
    load_at_start = os.getloadavg()
    draw = mixture(args)
    results, own_cluster = [], {}
    with tempfile.TemporaryDirectory(prefix="bench_knn_scale.") as workdir:
        for size in (int(s) for s in args.sizes.split(",")):
            size_results, own_cluster[size] = measure_size(size, args, draw, Path(workdir))
            results += size_results
    load = " / ".join(f"{x:.1f}" for x in load_at_start)
    clustered = ", ".join(f"{share:.1%} at {size:,}" for size, share in own_cluster.items())
    notes = (
        f"{verdict(results)}\n\n"
        f"{args.dim}-d L2-normalised embeddings from {args.clusters:,} Gaussian clusters (noise "
        f"0.8-1.6x the centre's norm; of the exact {args.k} nearest neighbours of a query, "
        f"{clustered} lie in its own cluster), {args.queries:,} queries from the same mixture "
        f"({args.exact_queries:,} for exact search), k = {args.k}. Queries/s: median of "
        f"{args.reps} batch searches, all settings of a size alternating, faiss's OpenMP threads "
        f"on the {os.cpu_count()} cores. Recall@{args.k}: the share of the exact {args.k} "
        "nearest neighbours that the index returns. Rows without a build time reuse the index "
        "above with another query-time option. Memory: the index file as saved in a run's "
        "`knn/`, and the process RSS growth while building, when loading the saved index "
        "(exact: read into memory; IVF and HNSW: memory-mapped), and after the first queries "
        "(the mapped pages they touched, which stay in the page cache, shared by processes). "
        f"1/5/15-minute load average at the start: {load}."
    )
    versions = {"faiss-cpu": version("faiss-cpu"), "numpy": np.__version__}
    write_report(
        "bench_knn_scale",
        "kNN search at scale: exact, IVF and HNSW",
        table(results, args.k),
        versions,
        notes,
    )


if __name__ == "__main__":
    main()
