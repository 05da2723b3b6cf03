"""faiss L2 indexes for kNN search: exact, IVF and HNSW; built, written and memory-mapped."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import faiss
import numpy as np

from medknn.errors import ConfigError
from medknn.io import atomic_write_bytes
from medknn.runs.knn_index_options import IVF_POINTS_PER_LIST

IVF_SAMPLE_PER_LIST = 64  # k-means training points per IVF list, at most


def build_index(
    vectors: np.ndarray, kind: str, options: dict[str, int | None]
) -> tuple[faiss.Index, str, dict[str, int | None]]:
    """``(index, kind built, options used)`` over ``vectors`` (contiguous float32, (N, D)).

    ``options`` are complete (``check_knn_index``). An IVF index needs ``IVF_POINTS_PER_LIST``
    training points per list: with fewer than that for a single list, exact search is built
    instead (with a warning); an explicit ``nlist`` too large for N is a ConfigError.
    """
    num, dim = vectors.shape
    if kind == "ivf":
        nlist = _ivf_lists(options["nlist"], num)
        if nlist is None:
            warnings.warn(
                f"an IVF index needs at least {IVF_POINTS_PER_LIST} training embeddings, got "
                f"{num}: using exact search (as fast at this size).",
                stacklevel=3,
            )
            kind, options = "exact", {}
        else:
            options = {**options, "nlist": nlist}
    if kind == "ivf":
        index = faiss.index_factory(dim, f"IVF{options['nlist']},Flat", faiss.METRIC_L2)
        # The lists only route a query to its candidates: k-means on 64 points per list
        # instead of faiss's 256 trained 5x faster at 300k cases, with the same recall.
        index.cp.max_points_per_centroid = IVF_SAMPLE_PER_LIST
        index.train(vectors)
    elif kind == "hnsw":
        index = faiss.index_factory(dim, f"HNSW{options['m']},Flat", faiss.METRIC_L2)
        index.hnsw.efConstruction = options["ef_construction"]
    else:
        index = faiss.IndexFlatL2(dim)
    set_search_options(index, kind, options)
    index.add(vectors)
    return index, kind, options


def set_search_options(index: faiss.Index, kind: str, options: dict[str, int | None]) -> None:
    """Apply the query-time options (IVF ``nprobe``, HNSW ``ef_search``)."""
    if kind == "ivf":
        faiss.extract_index_ivf(index).nprobe = options["nprobe"]
    elif kind == "hnsw":
        index.hnsw.efSearch = options["ef_search"]


def stored_vectors(index: faiss.Index) -> np.ndarray:
    """The (N, D) float32 vectors held by a flat, IVF-flat or HNSW-flat index, in id order."""
    if isinstance(index, faiss.IndexIVF) and index.direct_map.type == faiss.DirectMap.NoMap:
        index.make_direct_map()  # IVF lists are grouped by centroid; the map finds id i
    return index.reconstruct_n(0, index.ntotal)


def write_index(index: faiss.Index, path: str | os.PathLike) -> Path:
    """Write ``index`` atomically (temporary name, then rename)."""
    return atomic_write_bytes(path, faiss.serialize_index(index))


def read_index(path: str | os.PathLike) -> faiss.Index:
    """Read an index written by ``write_index``, its stored vectors memory-mapped: pages are
    read from disk as searches touch them, and processes share them through the page cache."""
    # IO_FLAG_MMAP_IFC maps the vectors of flat and HNSW indexes and the IVF lists (HNSW's graph
    # links are read into memory); the older IO_FLAG_MMAP maps IVF lists only.
    flags = getattr(faiss, "IO_FLAG_MMAP_IFC", faiss.IO_FLAG_MMAP) | faiss.IO_FLAG_READ_ONLY
    return faiss.read_index(str(path), flags)


# Run in a child process by ``probe_index``: read the index as ``read_index`` does, then search
# with some of its own vectors, which walks the graph links and lists a damaged file breaks.
_PROBE = """
import sys, faiss, numpy as np
flags = getattr(faiss, "IO_FLAG_MMAP_IFC", faiss.IO_FLAG_MMAP) | faiss.IO_FLAG_READ_ONLY
index = faiss.read_index(sys.argv[1], flags)
n = min(index.ntotal, 64)
if n:
    if isinstance(index, faiss.IndexIVF):
        index.make_direct_map()
    index.search(np.ascontiguousarray(index.reconstruct_n(0, n)), min(n, 5))
"""


def probe_index(path: str | os.PathLike, *, timeout: float = 60.0) -> str | None:
    """Read and search the faiss file ``path`` in a child process: None when that works, else
    why not (an error, a crash or a hang of faiss's native reader). The file of a run without
    a manifest is probed this way, so that a damaged one ends the child, not the caller."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE, str(path)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
    except subprocess.TimeoutExpired:
        return f"faiss's reader hung on it for {timeout:.0f} s"
    if done.returncode < 0:
        return f"faiss's reader crashed on it (signal {-done.returncode})"
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        return (
            f"faiss cannot read it ({lines[-1][:200] if lines else 'exit ' + str(done.returncode)})"
        )
    return None


def _ivf_lists(nlist: int | None, num: int) -> int | None:
    """Inverted lists for ``num`` training points: ``nlist``, or 2·√N capped so that every list
    has ``IVF_POINTS_PER_LIST`` points; None when ``num`` is too small for a single list."""
    most = num // IVF_POINTS_PER_LIST
    if nlist is None:
        return min(round(2 * math.sqrt(num)), most) or None
    if nlist > most:
        fix = f"pass nlist <= {most}" if most else "use the exact index"
        raise ConfigError(
            f"IVF option nlist={nlist} needs at least {nlist * IVF_POINTS_PER_LIST} "
            f"training embeddings ({IVF_POINTS_PER_LIST} per list for k-means), got {num}; "
            f"{fix} or leave nlist unset (2·√N lists)."
        )
    return nlist
