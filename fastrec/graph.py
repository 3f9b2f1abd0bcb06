"""Node ids and edge lists in, a frozen CSR ``Graph`` out.

Positions are internal: ``graph.ids[i]`` is the user's id of node ``i``. The CSR
is over destination nodes, ``indices[indptr[v]:indptr[v + 1]]`` being the
sources of the edges into ``v``, so messages flow source to destination as in
PyG.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import torch

from .errors import UnknownNodeError, format_ids

logger = logging.getLogger(__name__)

IdsLike: TypeAlias = Sequence[Hashable] | np.ndarray | pd.Index | pd.Series
LabelsLike: TypeAlias = Sequence[Any] | np.ndarray | pd.Series | Mapping[Hashable, Any]
ExcludedLike: TypeAlias = Sequence[bool] | np.ndarray | Mapping[Hashable, bool]

# A lookup table indexed by id is used for integer ids whose range is at most
# this many times the number of ids: a gather beats hashing by ~10x.
_DENSE_RANGE_FACTOR = 4
# ... and only for lookups of at least 1/this many ids as the graph holds.
_DENSE_MIN_SHARE = 64


@dataclass(frozen=True, eq=False)
class Graph:
    """A directed graph with user ids, in CSR over destination nodes.

    Attributes:
        ids: ``[num_nodes]`` the user's ids, int64 when all are integers,
            otherwise an object array holding them as given.
        indptr: ``[num_nodes + 1]`` int64 offsets into ``indices``.
        indices: ``[num_edges]`` int32 (int64 past 2**31 nodes) source
            positions, grouped by destination.
        labels: ``[num_nodes]`` int64 codes into ``classes``, -1 for unknown.
        classes: ``[num_classes]`` the original label values.
        excluded: ``[num_nodes]`` bool; excluded nodes shape their neighbours'
            embeddings but are never recommended.
        id_index: the hashed id to position lookup behind ``node_positions``.
    """

    ids: np.ndarray
    indptr: np.ndarray
    indices: np.ndarray
    labels: np.ndarray
    classes: np.ndarray
    excluded: np.ndarray
    id_index: pd.Index = field(repr=False)

    @property
    def num_nodes(self) -> int:
        return len(self.ids)

    @property
    def num_edges(self) -> int:
        return len(self.indices)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __repr__(self) -> str:
        return (
            f"Graph(num_nodes={self.num_nodes}, num_edges={self.num_edges}, "
            f"num_classes={self.num_classes}, "
            f"num_excluded={int(self.excluded.sum())})"
        )


def build_graph(
    nodes: IdsLike,
    src: IdsLike,
    dst: IdsLike,
    *,
    labels: LabelsLike | None = None,
    excluded: ExcludedLike | None = None,
    undirected: bool = False,
    self_loops: bool = False,
    skip_duplicates: bool = False,
) -> Graph:
    """Build a graph from node ids and the ids at both ends of each edge.

    Args:
        nodes: ``[num_nodes]`` unique ids: ints, strings or a mix.
        src: ``[num_edges]`` id of each edge's source.
        dst: ``[num_edges]`` id of each edge's destination.
        labels: one label per node (any hashable; None or NaN for unknown), or
            a mapping from some node ids to their labels.
        excluded: one bool per node, or a mapping from node ids to bools.
        undirected: also add every edge reversed (a self loop stays single).
        self_loops: give every node exactly one self loop, replacing any in the
            edge list. When False, edges are kept as given.
        skip_duplicates: keep the first of repeated node ids (with its label
            and flag) instead of raising.

    Returns:
        The frozen ``Graph``.

    Raises:
        ValueError: duplicate node ids, arrays of different lengths, bad labels
            or flags.
        UnknownNodeError: an edge endpoint is not among ``nodes``.
    """
    start = time.perf_counter()
    ids = _as_id_array(nodes, "nodes")
    keep = _unique_first(ids, skip_duplicates)
    if keep is not None:
        ids = ids[keep]
    index = pd.Index(ids, copy=False)

    src_pos, dst_pos = _edge_positions(index, src, dst)
    indptr, indices = _edges_to_csr(
        len(ids), src_pos, dst_pos, undirected=undirected, self_loops=self_loops
    )
    codes, classes = _encode_labels(_select(labels, keep, len(nodes)), index, None)
    flags = _encode_excluded(_select(excluded, keep, len(nodes)), index, None)

    graph = _freeze(ids, indptr, indices, codes, classes, flags, index)
    logger.info("built %r in %.2f s", graph, time.perf_counter() - start)
    return graph


def node_positions(graph: Graph, ids: IdsLike) -> np.ndarray:
    """Map node ids to graph positions.

    Args:
        graph: the graph.
        ids: ``[n]`` node ids.

    Returns:
        ``[n]`` int64 positions.

    Raises:
        UnknownNodeError: naming the ids that are not in the graph.
    """
    values = _as_id_array(ids, "ids")
    positions = _lookup(graph.id_index, values)
    missing = positions < 0
    if missing.any():
        raise UnknownNodeError(pd.unique(values[missing]).tolist())
    return positions.astype(np.int64, copy=False)


def add_nodes(
    graph: Graph,
    nodes: IdsLike,
    *,
    labels: Sequence[Any] | np.ndarray | None = None,
    excluded: Sequence[bool] | np.ndarray | None = None,
) -> Graph:
    """Return a new graph with ``nodes`` appended, without edges.

    Raises:
        ValueError: a new id repeats or is already in the graph, or ``labels``
            or ``excluded`` do not match ``nodes`` in length.
    """
    new_ids = _as_id_array(nodes, "nodes")
    _unique_first(new_ids, skip_duplicates=False)
    clash = _lookup(graph.id_index, new_ids) >= 0
    if clash.any():
        raise ValueError(
            f"nodes: {int(clash.sum())} ids are already in the graph: "
            f"{format_ids(new_ids[clash])}; add only new ids"
        )
    ids = _concat_ids(graph.ids, new_ids)
    index = pd.Index(ids, copy=False)

    num_new = len(new_ids)
    new_labels = [None] * num_new if labels is None else _aligned(labels, new_ids)
    codes, classes = _encode_labels(
        np.concatenate([_decode_labels(graph), _as_object(new_labels)]), index, None
    )
    new_flags = np.zeros(num_new, bool)
    if excluded is not None:
        new_flags = _as_flags(_aligned(excluded, new_ids), "excluded")
    flags = np.concatenate([graph.excluded, new_flags])

    indptr = np.concatenate([graph.indptr, np.full(num_new, graph.indptr[-1])])
    return _freeze(ids, indptr, graph.indices, codes, classes, flags, index)


def add_edges(
    graph: Graph, src: IdsLike, dst: IdsLike, *, undirected: bool = False
) -> Graph:
    """Return a new graph with the edges ``src[i] -> dst[i]`` added.

    Raises:
        UnknownNodeError: an endpoint is not in the graph (add it first with
            ``add_nodes``).
    """
    new_src, new_dst = _edge_positions(graph.id_index, src, dst)
    old_src, old_dst = edge_list(graph)
    new_src, new_dst = _with_reverse(new_src, new_dst, undirected)
    indptr, indices = _edges_to_csr(
        graph.num_nodes,
        np.concatenate([old_src.astype(new_src.dtype, copy=False), new_src]),
        np.concatenate([old_dst.astype(new_dst.dtype, copy=False), new_dst]),
    )
    return _freeze(
        graph.ids,
        indptr,
        indices,
        graph.labels,
        graph.classes,
        graph.excluded,
        graph.id_index,
    )


def set_labels(graph: Graph, labels: LabelsLike | None) -> Graph:
    """Return a new graph with other labels.

    Args:
        graph: the graph.
        labels: one label per node (None/NaN for unknown) replacing all, a
            mapping from some ids to new labels (the rest keep theirs), or None
            to clear every label.
    """
    current = _decode_labels(graph) if isinstance(labels, Mapping) else None
    codes, classes = _encode_labels(labels, graph.id_index, current)
    return _freeze(
        graph.ids,
        graph.indptr,
        graph.indices,
        codes,
        classes,
        graph.excluded,
        graph.id_index,
    )


def set_excluded(graph: Graph, excluded: ExcludedLike | None) -> Graph:
    """Return a new graph with other exclusion flags.

    Args:
        graph: the graph.
        excluded: one bool per node replacing all, a mapping from some ids to
            new flags (the rest keep theirs), or None to exclude nothing.
    """
    flags = _encode_excluded(excluded, graph.id_index, graph.excluded)
    return _freeze(
        graph.ids,
        graph.indptr,
        graph.indices,
        graph.labels,
        graph.classes,
        flags,
        graph.id_index,
    )


def edge_list(graph: Graph) -> tuple[np.ndarray, np.ndarray]:
    """Return the ``(src, dst)`` positions of every edge, in CSR order."""
    degrees = np.diff(graph.indptr)
    dst = np.repeat(np.arange(graph.num_nodes, dtype=graph.indices.dtype), degrees)
    return graph.indices, dst


def csr_tensors(graph: Graph) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(indptr, indices)`` as torch tensors sharing the graph's memory."""
    with warnings.catch_warnings():
        # The arrays are frozen; torch warns that it cannot mark them read-only.
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(graph.indptr), torch.from_numpy(graph.indices)


def in_degrees(graph: Graph) -> np.ndarray:
    """Return ``[num_nodes]`` int64 in-degrees."""
    return np.diff(graph.indptr)


def decode_labels(graph: Graph, positions: np.ndarray) -> list[Any]:
    """Return the original label values at ``positions`` (None for unknown)."""
    codes = graph.labels[positions]
    values = graph.classes[np.maximum(codes, 0)] if graph.num_classes else codes
    return [_plain(v) if c >= 0 else None for v, c in zip(values, codes, strict=True)]


def _freeze(
    ids: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    labels: np.ndarray,
    classes: np.ndarray,
    excluded: np.ndarray,
    index: pd.Index,
) -> Graph:
    for array in (ids, indptr, indices, labels, classes, excluded):
        array.setflags(write=False)
    return Graph(ids, indptr, indices, labels, classes, excluded, index)


def _as_id_array(values: Any, name: str) -> np.ndarray:
    """Ids as int64 when all are integers, else an object array of them as given."""
    if hasattr(values, "detach"):  # a torch tensor
        values = values.detach().cpu().numpy()
    if isinstance(values, (pd.Index, pd.Series)):
        values = values.to_numpy()
    if isinstance(values, np.ndarray) and values.dtype.kind in "iu":
        return np.array(values.reshape(-1), dtype=np.int64)
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise TypeError(
            f"{name}: expected a sequence of ids (got {type(values).__name__})"
        )
    index = pd.Index(list(values) if not isinstance(values, np.ndarray) else values)
    if index.dtype.kind in "iu":
        return index.to_numpy(dtype=np.int64)
    if index.dtype.kind == "b":
        raise TypeError(f"{name}: ids must be ints or strings (got booleans)")
    array = index.to_numpy(dtype=object)
    if pd.isna(array).any():
        raise ValueError(f"{name}: ids must not be None or NaN")
    return array


def _as_endpoints(values: Any, name: str) -> np.ndarray:
    """Edge endpoints: integer arrays kept in their own dtype (no int64 copy),
    object arrays as they are (an id that is not a node fails the lookup)."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "iuO":
        if values.dtype.itemsize < 8 or values.dtype.kind in "iO":
            return values.reshape(-1)
    return _as_id_array(values, name)


def _concat_ids(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.dtype == np.int64 and b.dtype == np.int64:
        return np.concatenate([a, b])
    return np.concatenate([a.astype(object), b.astype(object)])


def _unique_first(ids: np.ndarray, skip_duplicates: bool) -> np.ndarray | None:
    """Positions of the first occurrence of each id, or None when all are unique."""
    duplicated = pd.Index(ids, copy=False).duplicated(keep="first")
    if not duplicated.any():
        return None
    if not skip_duplicates:
        repeated = pd.unique(ids[duplicated])
        raise ValueError(
            f"nodes: {len(repeated)} ids occur more than once: "
            f"{format_ids(repeated)}; pass skip_duplicates=True to keep the first"
        )
    logger.info("skipped %d duplicate node ids", int(duplicated.sum()))
    return np.flatnonzero(~duplicated)


def _select(values: Any, keep: np.ndarray | None, num_given: int) -> Any:
    """The entries of per-node ``values`` at the kept (first-occurrence) nodes."""
    if values is None or keep is None or isinstance(values, Mapping):
        return values
    if len(values) != num_given:
        return values  # the length check downstream names the mismatch
    return _as_object(values)[keep]


def _lookup(index: pd.Index, values: np.ndarray) -> np.ndarray:
    """Positions of ``values`` in ``index``, -1 where absent (int32 when it fits)."""
    # The table costs O(len(index)) per call; a few ids are cheaper hashed.
    big = len(values) * _DENSE_MIN_SHARE >= len(index)
    if index.dtype == np.int64 and values.dtype.kind in "iu" and len(index) and big:
        lo, hi = int(index.min()), int(index.max())
        if hi - lo < _DENSE_RANGE_FACTOR * len(index) + 1024:
            return _dense_lookup(index.to_numpy(), lo, hi, values)
    if big and values.dtype == object and index.dtype.kind not in "iuf":
        positions = _arrow_lookup(index, values)
        if positions is not None:
            return positions
    return index.get_indexer(values)


def _arrow_lookup(index: pd.Index, values: np.ndarray) -> np.ndarray | None:
    """String ids hashed by Arrow (3x pandas' object table); None if not all str."""
    try:
        keys = pa.array(index.to_numpy(dtype=object), type=pa.string())
        wanted = pa.array(values, type=pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    if keys.null_count or wanted.null_count:
        return None
    found = pc.index_in(wanted, value_set=keys).fill_null(-1)
    return found.to_numpy(zero_copy_only=False).astype(np.int64)


def _dense_lookup(ids: np.ndarray, lo: int, hi: int, values: np.ndarray) -> np.ndarray:
    limits = np.iinfo(values.dtype)
    if lo < limits.min or hi > limits.max:  # id arithmetic must not overflow
        values = values.astype(np.int64)
    dtype = np.int32 if len(ids) < 2**31 else np.int64
    table = np.full(hi - lo + 1, -1, dtype=dtype)
    table[ids - lo] = np.arange(len(ids), dtype=dtype)
    if not len(values) or (values.min() >= lo and values.max() <= hi):
        return table[values - lo] if lo else table[values]
    inside = (values >= lo) & (values <= hi)
    positions = np.full(len(values), -1, dtype=dtype)
    positions[inside] = table[values[inside] - lo]
    return positions


def _edge_positions(
    index: pd.Index, src: IdsLike, dst: IdsLike
) -> tuple[np.ndarray, np.ndarray]:
    src_ids = _as_endpoints(src, "src")
    dst_ids = _as_endpoints(dst, "dst")
    if len(src_ids) != len(dst_ids):
        raise ValueError(
            f"src and dst must have one entry per edge (got {len(src_ids)} "
            f"sources and {len(dst_ids)} destinations)"
        )
    src_pos = _lookup(index, src_ids)
    dst_pos = _lookup(index, dst_ids)
    if len(src_pos) and min(src_pos.min(), dst_pos.min()) < 0:
        unknown = np.concatenate([src_ids[src_pos < 0], dst_ids[dst_pos < 0]])
        raise UnknownNodeError(pd.unique(unknown).tolist(), what="edge endpoints")
    dtype = np.int32 if len(index) < 2**31 else np.int64
    return src_pos.astype(dtype, copy=False), dst_pos.astype(dtype, copy=False)


def _with_reverse(
    src: np.ndarray, dst: np.ndarray, undirected: bool
) -> tuple[np.ndarray, np.ndarray]:
    if not undirected:
        return src, dst
    loop = src == dst
    back_src, back_dst = (dst, src) if not loop.any() else (dst[~loop], src[~loop])
    return np.concatenate([src, back_src]), np.concatenate([dst, back_dst])


def _edges_to_csr(
    num_nodes: int,
    src: np.ndarray,
    dst: np.ndarray,
    *,
    undirected: bool = False,
    self_loops: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    src, dst = _with_reverse(src, dst, undirected)
    if self_loops:
        keep = src != dst
        loops = np.arange(num_nodes, dtype=src.dtype)
        src = np.concatenate([src[keep], loops])
        dst = np.concatenate([dst[keep], loops])
    return csr_by_destination(num_nodes, src, dst)


def csr_by_destination(
    num_nodes: int, src: np.ndarray, dst: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Counting-sort edges by destination, keeping the given order within each.

    Args:
        num_nodes: number of nodes.
        src: ``[num_edges]`` source positions.
        dst: ``[num_edges]`` destination positions.

    Returns:
        ``(indptr, indices)``: int64 ``[num_nodes + 1]`` offsets and
        ``[num_edges]`` sources, int32 when positions fit.
    """
    num_edges = len(src)
    small = num_nodes < 2**31 and num_edges < 2**31
    dtype = np.int32 if small else np.int64
    src = np.ascontiguousarray(src, dtype=dtype)
    dst = np.ascontiguousarray(dst, dtype=dtype)
    try:
        from scipy.sparse import _sparsetools
    except ImportError:  # pragma: no cover - scipy moved its private helpers
        return _csr_by_sort(num_nodes, src, dst)

    indptr = np.zeros(num_nodes + 1, dtype=dtype)
    indices = np.empty(num_edges, dtype=dtype)
    marks = np.ones(num_edges, dtype=np.int8)
    # coo_tocsr is scipy's O(E) counting sort; the int8 data column is ignored.
    _sparsetools.coo_tocsr(
        num_nodes, num_nodes, num_edges, dst, src, marks, indptr, indices, marks
    )
    return indptr.astype(np.int64), indices


def _csr_by_sort(
    num_nodes: int, src: np.ndarray, dst: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The obvious CSR: a stable sort by destination (the reference in tests)."""
    order = np.argsort(dst, kind="stable")
    indptr = np.zeros(num_nodes + 1, dtype=np.int64)
    np.cumsum(np.bincount(dst, minlength=num_nodes), out=indptr[1:])
    return indptr, src[order]


def _as_object(values: Any) -> np.ndarray:
    if isinstance(values, pd.Series):
        values = values.to_numpy()
    if isinstance(values, np.ndarray):
        return values.astype(object)
    array = np.empty(len(values), dtype=object)
    array[:] = list(values)
    return array


def _aligned(values: Any, ids: np.ndarray) -> Any:
    if isinstance(values, Mapping) or len(values) != len(ids):
        raise ValueError(
            f"expected one value per node ({len(ids)}), got "
            f"{'a mapping' if isinstance(values, Mapping) else len(values)}"
        )
    return values


def _mapping_positions(values: Mapping[Hashable, Any], index: pd.Index) -> np.ndarray:
    keys = _as_id_array(list(values.keys()), "ids")
    positions = _lookup(index, keys)
    if (positions < 0).any():
        raise UnknownNodeError(keys[positions < 0].tolist())
    return positions


def _encode_labels(
    labels: LabelsLike | None, index: pd.Index, current: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Label values to int64 codes (-1 unknown) and the sorted class values."""
    num_nodes = len(index)
    if labels is None:
        return np.full(num_nodes, -1, dtype=np.int64), np.array([], dtype=np.int64)
    if isinstance(labels, Mapping):
        merged = current if current is not None else np.full(num_nodes, None, object)
        merged = merged.copy()
        merged[_mapping_positions(labels, index)] = _as_object(list(labels.values()))
        labels = merged
    if len(labels) != num_nodes:
        raise ValueError(
            f"labels: expected one label per node ({num_nodes}), got {len(labels)}"
        )
    values = _as_object(labels) if not isinstance(labels, np.ndarray) else labels
    if isinstance(values, np.ndarray) and values.dtype.kind == "f":
        values = values.astype(object)
    try:
        codes, classes = pd.factorize(values, sort=True, use_na_sentinel=True)
    except TypeError:  # mixed label types cannot be sorted
        codes, classes = pd.factorize(values, sort=False, use_na_sentinel=True)
    classes = np.asarray(classes)
    if classes.dtype.kind not in "iub":
        classes = classes.astype(object)
        if all(isinstance(c, (int, np.integer)) for c in classes):
            classes = classes.astype(np.int64)
    return codes.astype(np.int64), classes


def _decode_labels(graph: Graph) -> np.ndarray:
    """The raw label per node, None for unknown, as an object array."""
    raw = np.full(graph.num_nodes, None, dtype=object)
    known = graph.labels >= 0
    raw[known] = graph.classes.astype(object)[graph.labels[known]]
    return raw


def _as_flags(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype == bool:
        return array.copy()
    if array.dtype.kind in "iu" and np.isin(array, (0, 1)).all():
        return array.astype(bool)
    raise ValueError(f"{name}: expected booleans (got dtype {array.dtype})")


def _encode_excluded(
    excluded: ExcludedLike | None, index: pd.Index, current: np.ndarray | None
) -> np.ndarray:
    num_nodes = len(index)
    if excluded is None:
        return np.zeros(num_nodes, dtype=bool)
    if isinstance(excluded, Mapping):
        merged = current if current is not None else np.zeros(num_nodes, bool)
        merged = merged.copy()
        merged[_mapping_positions(excluded, index)] = _as_flags(
            list(excluded.values()), "excluded"
        )
        excluded = merged
    if len(excluded) != num_nodes:
        raise ValueError(
            f"excluded: expected one flag per node ({num_nodes}), got {len(excluded)}"
        )
    return _as_flags(excluded, "excluded")


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
