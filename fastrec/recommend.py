"""Id-level queries: node ids (or an unseen node's neighbours) in, similar ids out.

Answers have the shape ``{query_id: {"neighbors": [...], "distances": [...]}}``
(plus ``"labels"`` on request), distances ascending, smaller being closer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .graph import Graph, IdsLike, decode_labels, node_positions
from .index import NeighborIndex, as_float32, search, search_excluding


def query(
    graph: Graph,
    embeddings: torch.Tensor | np.ndarray,
    index: NeighborIndex,
    nodes: IdsLike,
    k: int,
    *,
    labels: bool = False,
    exclude_self: bool = True,
) -> dict[Any, dict[str, list[Any]]]:
    """Find the ``k`` most similar nodes to each of ``nodes``.

    Args:
        graph: the graph.
        embeddings: ``[num_nodes, dim]`` embeddings aligned with positions.
        index: the index to search.
        nodes: the query ids.
        k: neighbours per query, at least 1.
        labels: also return each neighbour's label (None if unknown).
        exclude_self: never return a query as its own neighbour.

    Returns:
        ``{id: {"neighbors": ids, "distances": floats[, "labels": values]}}``
        keyed by the query ids as given; fewer than ``k`` entries only when
        the index holds fewer nodes.

    Raises:
        UnknownNodeError: naming the query ids not in the graph.
        ValueError: ``k`` < 1.
    """
    _check_k(k)
    positions = node_positions(graph, nodes)
    # Rows first: checking the whole table would cost more than the search.
    vectors = as_float32(embeddings[positions], "embeddings")
    if exclude_self:
        distances, neighbors = search_excluding(index, vectors, positions, k)
    else:
        distances, neighbors = search(index, vectors, k)
    return _answers(graph, _keys(nodes), distances, neighbors, labels)


def query_unseen(
    graph: Graph,
    embeddings: torch.Tensor | np.ndarray,
    index: NeighborIndex,
    nodes: Sequence[Any],
    neighbors: Sequence[IdsLike],
    k: int,
    *,
    labels: bool = False,
) -> dict[Any, dict[str, list[Any]]]:
    """Recommend for nodes outside the graph, known by their neighbours in it.

    Each new node is embedded as the mean of its neighbours' embeddings.

    Args:
        graph: the graph.
        embeddings: ``[num_nodes, dim]`` embeddings aligned with positions.
        index: the index to search.
        nodes: ids for the new nodes (keys of the answer; need not be unique
            to the graph).
        neighbors: for each new node, the ids of its neighbours in the graph.
        k: neighbours per query, at least 1.
        labels: also return each neighbour's label.

    Returns:
        The same shape as ``query``, keyed by ``nodes``.

    Raises:
        UnknownNodeError: a neighbour id is not in the graph.
        ValueError: ``nodes`` and ``neighbors`` differ in length, a node has no
            neighbours, or ``k`` < 1.
    """
    _check_k(k)
    if len(nodes) != len(neighbors):
        raise ValueError(
            f"nodes and neighbors must match in length (got {len(nodes)} and "
            f"{len(neighbors)})"
        )
    vectors = embed_unseen(graph, embeddings, neighbors)
    distances, found = search(index, vectors, k)
    return _answers(graph, _keys(nodes), distances, found, labels)


def embed_unseen(
    graph: Graph, embeddings: torch.Tensor | np.ndarray, neighbors: Sequence[IdsLike]
) -> np.ndarray:
    """Return ``[len(neighbors), dim]``: the mean embedding of each id list."""
    sizes = np.array([len(ids) for ids in neighbors], dtype=np.int64)
    if (sizes == 0).any():
        first = int(np.flatnonzero(sizes == 0)[0])
        raise ValueError(f"neighbors[{first}] is empty; give at least one neighbour")
    flat = [i for ids in neighbors for i in ids]
    positions = node_positions(graph, flat)
    rows = as_float32(embeddings[positions], "embeddings")
    owner = np.repeat(np.arange(len(sizes)), sizes)
    sums = np.zeros((len(sizes), rows.shape[1]), dtype=np.float64)
    np.add.at(sums, owner, rows)
    return (sums / sizes[:, None]).astype(np.float32)


def _answers(
    graph: Graph,
    keys: list[Any],
    distances: np.ndarray,
    neighbors: np.ndarray,
    labels: bool,
) -> dict[Any, dict[str, list[Any]]]:
    answers: dict[Any, dict[str, list[Any]]] = {}
    for key, row_d, row_n in zip(keys, distances, neighbors, strict=True):
        found = row_n >= 0
        answer: dict[str, list[Any]] = {
            "neighbors": graph.ids[row_n[found]].tolist(),
            "distances": row_d[found].tolist(),
        }
        if labels:
            answer["labels"] = decode_labels(graph, row_n[found])
        answers[key] = answer
    return answers


def _keys(nodes: Any) -> list[Any]:
    if hasattr(nodes, "tolist"):
        return list(nodes.tolist())
    return [n.item() if isinstance(n, np.generic) else n for n in nodes]


def _check_k(k: Any) -> None:
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive int (got {k!r})")
