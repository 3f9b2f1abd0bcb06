"""Similarity search over embeddings: the only module that imports faiss.

Embeddings and the graph's exclusion flags in, a frozen ``NeighborIndex`` out;
``search`` answers in graph positions and distances where smaller is closer
(cosine: 1 - cosine similarity; l2: squared Euclidean distance).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import faiss
import numpy as np
import torch

if TYPE_CHECKING:  # index imports nothing from fastrec at run time
    from .graph import Graph

logger = logging.getLogger(__name__)

KINDS = ("flat", "ivf", "hnsw")
METRICS = ("cosine", "l2")


@dataclass(frozen=True, eq=False)
class NeighborIndex:
    """A faiss index over some graph nodes.

    Attributes:
        index: the faiss index; row ``r`` holds node ``positions[r]``.
        positions: ``[num_rows]`` int64 graph positions of the rows.
        metric: "cosine" or "l2".
        kind: "flat", "ivf" or "hnsw".
    """

    index: Any
    positions: np.ndarray
    metric: str
    kind: str

    @property
    def dim(self) -> int:
        return int(self.index.d)

    @property
    def num_rows(self) -> int:
        return int(self.index.ntotal)


def build_index(
    embeddings: torch.Tensor | np.ndarray,
    graph: Graph | None = None,
    *,
    metric: str = "cosine",
    kind: str = "flat",
    nlist: int | None = None,
    nprobe: int | None = None,
    hnsw_m: int = 32,
    ef_construction: int = 80,
    ef_search: int = 64,
    device: str = "cpu",
    seed: int = 0,
) -> NeighborIndex:
    """Index the embeddings of the graph's non-excluded nodes.

    Args:
        embeddings: ``[num_nodes, dim]`` float embeddings aligned with graph
            positions.
        graph: gives the exclusion flags; None indexes every row.
        metric: "cosine" (inner product of normalised vectors) or "l2".
        kind: "flat" (exact), "ivf" (inverted lists) or "hnsw" (graph).
        nlist: IVF lists; default about ``2 * sqrt(rows)``, keeping at least 39
            training points per list.
        nprobe: IVF lists visited per query; default ``nlist // 32``, at
            least 8 (all lists when there are fewer).
        hnsw_m: HNSW links per node.
        ef_construction: HNSW build-time breadth.
        ef_search: HNSW query-time breadth.
        device: "cpu", or "cuda" / "cuda:N" for GPU faiss (flat and ivf).
        seed: seeds the IVF training sample and k-means.

    Returns:
        The ``NeighborIndex``.

    Raises:
        ValueError: an unknown metric or kind, or embeddings of the wrong shape,
            with NaN, or not matching the graph.
        RuntimeError: a GPU was asked for and faiss has none.
    """
    _check_choice("metric", metric, METRICS)
    _check_choice("kind", kind, KINDS)
    vectors = as_float32(embeddings, "embeddings")
    positions = np.arange(len(vectors), dtype=np.int64)
    if graph is not None:
        if len(vectors) != graph.num_nodes:
            raise ValueError(
                f"embeddings have {len(vectors)} rows but the graph has "
                f"{graph.num_nodes} nodes"
            )
        positions = np.flatnonzero(~graph.excluded).astype(np.int64)
        vectors = vectors[positions] if len(positions) < len(vectors) else vectors
    if metric == "cosine":
        vectors = normalized(vectors)

    start = time.perf_counter()
    index = _new_index(
        kind,
        vectors.shape[1],
        len(vectors),
        metric,
        nlist,
        hnsw_m,
        ef_construction,
        seed,
    )
    index = _to_device(index, device, kind)
    if not index.is_trained:
        index.train(_training_sample(vectors, index, seed))
    index.add(vectors)
    _set_search_breadth(index, kind, nprobe, ef_search)
    logger.info(
        "built %s %s index of %d rows in %.2f s",
        kind,
        metric,
        len(vectors),
        time.perf_counter() - start,
    )
    return NeighborIndex(index, positions, metric, kind)


def search(
    index: NeighborIndex, queries: torch.Tensor | np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Find the ``k`` nearest indexed nodes of each query vector.

    Args:
        index: the index.
        queries: ``[n, dim]`` query vectors (normalised here for cosine).
        k: neighbours per query, at least 1.

    Returns:
        ``(distances, positions)``, both ``[n, k]``: float32 distances,
        smaller is closer, and int64 graph positions; -1 and ``inf`` pad rows
        when fewer than ``k`` nodes are indexed.
    """
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive int (got {k!r})")
    vectors = as_float32(queries, "queries")
    if vectors.shape[1] != index.dim:
        raise ValueError(
            f"queries have dimension {vectors.shape[1]}, the index {index.dim}"
        )
    if index.metric == "cosine":
        vectors = normalized(vectors)

    D, I = index.index.search(vectors, int(k))  # noqa: E741 - faiss's names
    found = I >= 0
    positions = np.where(found, index.positions[np.maximum(I, 0)], -1)
    distances = np.where(found, 1.0 - D if index.metric == "cosine" else D, np.inf)
    return distances.astype(np.float32), positions.astype(np.int64)


def limit_search_threads(num_threads: int) -> None:
    """Cap the OpenMP threads of faiss searches started from the calling thread.

    Note:
        OpenMP keeps this setting per thread: a server that searches from a
        pool of threads calls this in each of them.
    """
    faiss.omp_set_num_threads(int(num_threads))


def search_excluding(
    index: NeighborIndex,
    queries: torch.Tensor | np.ndarray,
    query_positions: np.ndarray,
    k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Like ``search``, but each query's own node never counts as a neighbour.

    The query is recognised by its position, wherever it ranks (ties and
    duplicate vectors can put another node first).

    Args:
        index: the index.
        queries: ``[n, dim]`` query vectors.
        query_positions: ``[n]`` graph position of each query's node.
        k: neighbours per query.

    Returns:
        ``(distances, positions)``, both ``[n, k]``, as ``search`` gives them.
    """
    distances, positions = search(index, queries, k + 1)
    others = positions != np.asarray(query_positions).reshape(-1, 1)
    # A stable sort of "is self" moves the query's own hit to the end.
    order = np.argsort(~others, axis=1, kind="stable")[:, :k]
    return (
        np.take_along_axis(distances, order, axis=1),
        np.take_along_axis(positions, order, axis=1),
    )


def write_index(index: NeighborIndex, path: str | Path) -> None:
    """Write the faiss index to ``path`` in faiss's own format (CPU copy)."""
    cpu = index.index
    if hasattr(faiss, "index_gpu_to_cpu") and _is_gpu(cpu):
        cpu = faiss.index_gpu_to_cpu(cpu)
    faiss.write_index(cpu, str(path))


def read_index(
    path: str | Path, positions: np.ndarray, metric: str, kind: str, *, mmap: bool
) -> NeighborIndex:
    """Read a faiss index written by ``write_index``.

    Args:
        path: the file.
        positions: graph positions of its rows.
        metric: its metric.
        kind: its kind.
        mmap: map the file's vectors (and HNSW links, IVF lists) instead of
            reading them, where faiss can: processes that read one file share
            its pages. A mapped index is read-only.

    Note:
        faiss's ``IO_FLAG_MMAP`` maps only IVF lists; flat codes and HNSW
        storage need ``IO_FLAG_MMAP_IFC`` (faiss 1.10+), which maps all three.
    """
    flags = _mmap_flags() if mmap else 0
    try:
        index = faiss.read_index(str(path), flags)
    except RuntimeError:
        if not mmap:
            raise
        index = faiss.read_index(str(path))  # this index type cannot be mapped
    if index.ntotal != len(positions):
        raise ValueError(
            f"{path}: index holds {index.ntotal} rows, expected {len(positions)}"
        )
    return NeighborIndex(index, np.asarray(positions, dtype=np.int64), metric, kind)


def _mmap_flags() -> int:
    mapped = getattr(faiss, "IO_FLAG_MMAP_IFC", faiss.IO_FLAG_MMAP)
    return int(mapped) | faiss.IO_FLAG_READ_ONLY


def as_float32(values: torch.Tensor | np.ndarray, name: str) -> np.ndarray:
    """A C-contiguous float32 ``[n, dim]`` numpy array, or a ValueError."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    array = np.ascontiguousarray(values, dtype=np.float32)
    if array.ndim != 2 or array.shape[1] < 1:
        raise ValueError(f"{name} must have shape [n, dim] (got {list(array.shape)})")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} hold NaN or infinity")
    return array


def normalized(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, np.float32(1e-12))


def _new_index(
    kind: str,
    dim: int,
    num_rows: int,
    metric: str,
    nlist: int | None,
    hnsw_m: int,
    ef_construction: int,
    seed: int,
) -> Any:
    faiss_metric = faiss.METRIC_INNER_PRODUCT if metric == "cosine" else faiss.METRIC_L2
    index: Any
    if kind == "flat":
        return faiss.IndexFlat(dim, faiss_metric)
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss_metric)
        index.hnsw.efConstruction = ef_construction
        return index
    nlist = nlist or default_nlist(num_rows)
    if nlist < 1 or nlist > max(num_rows, 1):
        raise ValueError(f"nlist must be in [1, {num_rows}] (got {nlist})")
    quantizer = faiss.IndexFlat(dim, faiss_metric)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss_metric)
    index.cp.seed = seed
    # Ten k-means rounds on 64 points a list: ample for assigning lists, and
    # about 10x cheaper to train than faiss's defaults (25 rounds, 256 a list).
    index.cp.niter = 10
    return index


def default_nlist(num_rows: int) -> int:
    """About ``2 * sqrt(rows)`` lists, with at least 39 training rows each.

    On 232,965 Reddit-shaped embeddings, 965 lists with 30 probes build in
    about 6 s and recall 0.99 of the exact 10 nearest neighbours.
    """
    return max(1, min(int(2 * math.sqrt(num_rows)), num_rows // 39))


def default_nprobe(nlist: int) -> int:
    """A 32nd of the lists, at least 8 (all of them when there are fewer)."""
    return min(nlist, max(8, nlist // 32))


def _training_sample(vectors: np.ndarray, index: Any, seed: int) -> np.ndarray:
    nlist = faiss.extract_index_ivf(index).nlist if _is_ivf(index) else 1
    size = min(len(vectors), 64 * nlist)
    if size == len(vectors):
        return vectors
    rows = np.random.default_rng(seed).choice(len(vectors), size, replace=False)
    return vectors[np.sort(rows)]


def _set_search_breadth(
    index: Any, kind: str, nprobe: int | None, ef_search: int
) -> None:
    if kind == "ivf":
        ivf = faiss.extract_index_ivf(index)
        ivf.nprobe = nprobe or default_nprobe(ivf.nlist)
    elif kind == "hnsw":
        index.hnsw.efSearch = ef_search


def _to_device(index: Any, device: str, kind: str) -> Any:
    if device == "cpu":
        return index
    if not device.startswith("cuda"):
        raise ValueError(f'device must be "cpu" or "cuda[:N]" (got {device!r})')
    num_gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    if num_gpus == 0:
        raise RuntimeError(
            "device='cuda' needs GPU faiss, but this faiss has no GPU support or "
            "sees no GPU; install fastrec[gpu] (faiss-gpu) or use device='cpu'"
        )
    if kind == "hnsw":
        raise ValueError('faiss has no GPU HNSW; use kind="flat" or "ivf" on GPU')
    gpu = int(device.split(":")[1]) if ":" in device else 0
    resources = faiss.StandardGpuResources()
    moved: Any = faiss.index_cpu_to_gpu(resources, gpu, index)
    moved.resources = resources  # the GPU index must not outlive them
    return moved


def _is_gpu(index: Any) -> bool:
    return "Gpu" in type(index).__name__


def _is_ivf(index: Any) -> bool:
    try:
        faiss.extract_index_ivf(index)
    except (RuntimeError, AttributeError):
        return False
    return True


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)} (got {value!r})")
