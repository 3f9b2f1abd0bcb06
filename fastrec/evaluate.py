"""Label agreement of embeddings: a labelled graph and its embeddings in, figures out.

For each level ``k``: ``share@k``, the mean share of a query's ``k`` nearest
neighbours that carry its label, and ``hit@k``, the share of queries with at
least one such neighbour. Queries are the labelled, non-excluded nodes; each
query's own node is never its neighbour.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np
import torch

from .graph import Graph
from .index import NeighborIndex, as_float32, build_index, search_excluding

logger = logging.getLogger(__name__)


def evaluate(
    graph: Graph,
    embeddings: torch.Tensor | np.ndarray,
    *,
    levels: Sequence[int] = (5, 1),
    test_only: bool = False,
    test_mask: np.ndarray | None = None,
    metric: str = "cosine",
    index: NeighborIndex | None = None,
    batch_size: int = 8192,
) -> dict[str, float]:
    """Measure how often nearest neighbours share the query's label.

    Args:
        graph: the labelled graph.
        embeddings: ``[num_nodes, dim]`` embeddings aligned with positions.
        levels: the ``k`` values to report.
        test_only: query only the nodes in ``test_mask``.
        test_mask: ``[num_nodes]`` bool, the held-out nodes (from training).
        metric: "cosine" or "l2" for the exact index built when ``index`` is
            None.
        index: search this index instead (for example an approximate one);
            neighbours are the nodes it holds.
        batch_size: queries per search call.

    Returns:
        ``{"share@k": ..., "hit@k": ..., for each k, "num_queries": n}``.

    Raises:
        ValueError: no labelled queries, a level below 1, or ``test_only``
            without a ``test_mask`` of one flag per node.
    """
    ks = [int(k) for k in levels]
    if not ks or min(ks) < 1:
        raise ValueError(f"levels must be positive ints (got {list(levels)})")
    queries = _query_positions(graph, test_only, test_mask)
    vectors = as_float32(embeddings, "embeddings")
    if index is None:
        index = build_index(vectors, graph, metric=metric, kind="flat")

    start = time.perf_counter()
    k_max = max(ks)
    same = np.empty((len(queries), k_max), dtype=bool)
    for lo in range(0, len(queries), batch_size):
        batch = queries[lo : lo + batch_size]
        _, neighbors = search_excluding(index, vectors[batch], batch, k_max)
        found = neighbors >= 0
        labels = graph.labels[np.maximum(neighbors, 0)]
        same[lo : lo + len(batch)] = found & (labels == graph.labels[batch, None])

    figures: dict[str, float] = {}
    for k in ks:
        figures[f"share@{k}"] = float(same[:, :k].mean(axis=1).mean())
        figures[f"hit@{k}"] = float(same[:, :k].any(axis=1).mean())
    figures["num_queries"] = len(queries)
    logger.info(
        "evaluated %d queries in %.2f s: %s",
        len(queries),
        time.perf_counter() - start,
        figures,
    )
    return figures


def _query_positions(
    graph: Graph, test_only: bool, test_mask: np.ndarray | None
) -> np.ndarray:
    mask = (graph.labels >= 0) & ~graph.excluded
    if test_only:
        if test_mask is None:
            raise ValueError("test_only=True needs test_mask (got None)")
        test_mask = np.asarray(test_mask)
        if test_mask.dtype != bool or test_mask.shape != (graph.num_nodes,):
            raise ValueError(
                f"test_mask must be bool of shape ({graph.num_nodes},) "
                f"(got {test_mask.dtype} {test_mask.shape})"
            )
        mask &= test_mask
    queries = np.flatnonzero(mask)
    if not len(queries):
        raise ValueError(
            "no queries: evaluation needs labelled, non-excluded nodes"
            + (" in test_mask" if test_only else "")
        )
    return queries
