"""Neighbour sampling over fastrec's CSR graph, inside PyG's loaders.

Seed nodes (or seed edges) in, a PyG ``SamplerOutput`` out: the sampled nodes,
hop by hop, and the local (source, destination) pairs of the sampled edges.
``CSRSampler`` implements PyG's ``BaseSampler`` in vectorised PyTorch, so
``NodeLoader`` and ``LinkLoader`` drive it without ``pyg-lib`` or
``torch-sparse``; ``node_loader`` and ``link_loader`` build those loaders.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.loader import LinkLoader, NodeLoader
from torch_geometric.sampler import (
    BaseSampler,
    EdgeSamplerInput,
    NegativeSampling,
    NodeSamplerInput,
    SamplerOutput,
)

from .graph import Graph, csr_tensors, edge_list, in_degrees

logger = logging.getLogger(__name__)

BACKENDS = ("fastrec", "pyg")

# Fanouts up to this size draw without replacement by Floyd's algorithm, whose
# cost grows with fanout squared; larger ones sort random keys per neighbourhood.
_FLOYD_MAX_FANOUT = 64

# Marks a position with no local id in the sampler's scratch table.
_EMPTY = 2**31 - 1


class CSRSampler(BaseSampler):
    """Uniform neighbour sampling, hop by hop, over a graph's CSR.

    Each hop samples up to ``fanouts[h]`` in-edges of every node first reached
    at the previous hop (``-1`` takes them all), so messages flow from the
    sampled sources to the seeds as in PyG's ``NeighborSampler``. The output
    lists the seeds first, then each hop's new nodes; edges come hop by hop
    with ``num_sampled_nodes`` and ``num_sampled_edges`` per hop, and ``edge``
    holds their CSR positions.

    For link batches, negative nodes are drawn with probability proportional
    to in-degree ** ``negative_power`` unless the ``NegativeSampling`` carries
    its own weights, and (with ``exclude_targets``) the positive target edges
    are removed, in both directions, from the sampled neighbourhoods.

    The sampler is picklable and keeps no state between batches except
    ``epoch``. With a ``seed``, a batch's sample is a function of the seed,
    the epoch and the batch's input ids alone: the same with any number of
    loader workers and in any order. Call ``set_epoch`` to draw fresh
    neighbourhoods for the same batches. Without a seed it draws from torch's
    global generator, as PyG's samplers do.

    Args:
        graph: the graph to sample from.
        fanouts: neighbours per node at each hop, ``-1`` for all.
        replace: sample with replacement (a neighbour may repeat).
        seed: makes batches reproducible; None uses torch's global generator.
        negative_power: exponent of the in-degree in negative sampling.
        exclude_targets: remove positive target edges from link batches.

    Raises:
        ValueError: an empty ``fanouts``, a fanout below -1 or equal to 0, or
            a negative ``negative_power``.

    Note:
        Relabelling uses a scratch map from position to local id
        (``[num_nodes]`` int32, one per process), emptied after every batch;
        one sampler object serves one thread at a time. Temporal sampling is
        not supported.
    """

    def __init__(
        self,
        graph: Graph,
        fanouts: Sequence[int],
        *,
        replace: bool = False,
        seed: int | None = None,
        negative_power: float = 0.75,
        exclude_targets: bool = True,
    ) -> None:
        self.fanouts = check_fanouts(fanouts)
        if not negative_power >= 0:
            raise ValueError(
                f"negative_power must be 0 or more (got {negative_power!r})"
            )
        self.replace = bool(replace)
        self.seed = seed
        self.epoch = 0
        self.exclude_targets = bool(exclude_targets)
        self.num_nodes = graph.num_nodes
        self.indptr, self.indices = csr_tensors(graph)
        self.negative_cdf = _degree_cdf(in_degrees(graph), negative_power)
        self._table: Tensor | None = None

    def set_epoch(self, epoch: int) -> None:
        """Change the random draws of every batch (for a new training epoch)."""
        self.epoch = int(epoch)

    def sample_from_nodes(
        self, index: NodeSamplerInput, **kwargs: Any
    ) -> SamplerOutput:
        """Sample the neighbourhoods of a batch of seed nodes.

        Args:
            index: the batch; ``index.node`` holds ``[batch_size]`` seed
                positions, which come first, in order, in the output's
                ``node``.

        Returns:
            The ``SamplerOutput``; ``metadata`` is ``(input_id, time)`` as in
            PyG.

        Raises:
            ValueError: seed times were given.
        """
        if index.time is not None:
            raise ValueError("input_time: temporal sampling is not supported")
        seeds = index.node.to(torch.int64)
        generator = self._generator(index.input_id, seeds)
        out = self.sample(seeds, generator=generator)
        out.metadata = (index.input_id, index.time)
        return out

    def sample_from_edges(
        self,
        index: EdgeSamplerInput,
        neg_sampling: NegativeSampling | None = None,
    ) -> SamplerOutput:
        """Sample the neighbourhoods of a batch of seed edges and negatives.

        The seeds are the unique endpoints of the positive edges and of the
        negatives; ``metadata`` maps the edges onto them exactly as PyG's
        ``NeighborSampler`` does: ``(input_id, edge_label_index, edge_label,
        None)`` for binary negatives or none, and ``(input_id, src_index,
        dst_pos_index, dst_neg_index, None)`` for triplets.

        Args:
            index: the batch; ``index.row`` and ``index.col`` hold the
                ``[num_pos]`` source and destination positions.
            neg_sampling: PyG's negative sampling configuration, or None.

        Returns:
            The ``SamplerOutput`` over the unique seed nodes.

        Raises:
            ValueError: edge times were given.
        """
        if index.time is not None:
            raise ValueError("edge_label_time: temporal sampling is not supported")
        src, dst = index.row.to(torch.int64), index.col.to(torch.int64)
        generator = self._generator(index.input_id, torch.cat([src, dst]))
        label = index.label
        num_pos = src.numel()

        triplet = neg_sampling is not None and neg_sampling.is_triplet()
        if neg_sampling is not None:
            num_neg = math.ceil(num_pos * neg_sampling.amount)
            dst_neg = self._negatives(num_neg, neg_sampling.dst_weight, generator)
            if triplet:
                seeds = torch.cat([src, dst, dst_neg])
            else:
                src_neg = self._negatives(num_neg, neg_sampling.src_weight, generator)
                seeds = torch.cat([src, src_neg, dst, dst_neg])
                label = _binary_labels(label, num_pos, num_neg)
        else:
            seeds = torch.cat([src, dst])

        unique, inverse = torch.unique(seeds, return_inverse=True)
        targets = (src, dst) if self.exclude_targets else None
        out = self.sample(unique, targets=targets, generator=generator)
        if triplet:
            dst_neg_index = inverse[2 * num_pos :].view(num_pos, -1).squeeze(-1)
            out.metadata = (
                index.input_id,
                inverse[:num_pos],
                inverse[num_pos : 2 * num_pos],
                dst_neg_index,
                None,
            )
        else:
            out.metadata = (index.input_id, inverse.view(2, -1), label, None)
        return out

    def sample(
        self,
        seeds: Tensor,
        *,
        targets: tuple[Tensor, Tensor] | None = None,
        generator: torch.Generator | None = None,
    ) -> SamplerOutput:
        """Sample ``len(self.fanouts)`` hops around ``seeds``.

        Args:
            seeds: ``[num_seeds]`` int64 positions; they become local nodes
                ``0 .. num_seeds - 1`` in order.
            targets: ``([m], [m])`` source and destination positions of edges
                to remove, in both directions, from every hop.
            generator: the random source; None uses torch's global one.

        Returns:
            ``SamplerOutput`` with ``node`` (int64 positions), ``row`` and
            ``col`` (int64 local sources and destinations), ``edge`` (int64 CSR
            positions), ``num_sampled_nodes`` (per hop, seeds first) and
            ``num_sampled_edges`` (per hop).
        """
        table = self._local_table()
        nodes: list[Tensor] = []
        try:
            return self._expand(seeds, nodes, table, targets, generator)
        finally:  # leave the scratch table empty for the next batch
            if nodes:
                table[torch.cat(nodes)] = _EMPTY

    def _expand(
        self,
        seeds: Tensor,
        nodes: list[Tensor],
        table: Tensor,
        targets: tuple[Tensor, Tensor] | None,
        generator: torch.Generator | None,
    ) -> SamplerOutput:
        target_keys = None if targets is None else self._edge_keys(*targets)
        nodes.append(seeds)
        # The first copy of a repeated seed owns its node.
        order = torch.arange(seeds.numel(), dtype=table.dtype)
        table.scatter_reduce_(0, seeds, order, reduce="amin")
        rows, cols, edges = [], [], []
        num_nodes, num_edges = [seeds.numel()], []
        known = seeds
        frontier, first = seeds, 0

        for fanout in self.fanouts:
            positions, counts = sample_neighbors(
                self.indptr, frontier, fanout, replace=self.replace, generator=generator
            )
            src = self.indices[positions].to(torch.int64)
            dst = torch.arange(first, first + frontier.numel())
            dst = dst.repeat_interleave(counts, output_size=src.numel())
            if target_keys is not None:
                keep = ~torch.isin(src * self.num_nodes + known[dst], target_keys)
                src, dst, positions = src[keep], dst[keep], positions[keep]
            new = _relabel(table, src, known.numel())
            nodes.append(new)
            rows.append(table[src].to(torch.int64))
            cols.append(dst)
            edges.append(positions)
            num_nodes.append(new.numel())
            num_edges.append(src.numel())
            first = known.numel()
            known = torch.cat([known, new])
            frontier = new

        return SamplerOutput(
            node=known,
            row=torch.cat(rows) if rows else seeds.new_empty(0),
            col=torch.cat(cols) if cols else seeds.new_empty(0),
            edge=torch.cat(edges) if edges else seeds.new_empty(0),
            num_sampled_nodes=num_nodes,
            num_sampled_edges=num_edges,
        )

    def _local_table(self) -> Tensor:
        """A ``[num_nodes]`` scratch map from position to local id, kept empty."""
        if self._table is None:
            dtype = torch.int32 if self.num_nodes < _EMPTY else torch.int64
            self._table = torch.full((self.num_nodes,), _EMPTY, dtype=dtype)
        return self._table

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_table"] = None  # each process builds its own scratch table
        return state

    def _edge_keys(self, src: Tensor, dst: Tensor) -> Tensor:
        """One int64 per directed edge, for both directions of each pair."""
        src, dst = src.to(torch.int64), dst.to(torch.int64)
        return torch.cat([src * self.num_nodes + dst, dst * self.num_nodes + src])

    def _negatives(
        self, num: int, weight: Tensor | None, generator: torch.Generator | None
    ) -> Tensor:
        if weight is not None:
            return torch.multinomial(
                weight.double(), num, replacement=True, generator=generator
            )
        draws = torch.rand(num, dtype=torch.float64, generator=generator)
        positions = torch.searchsorted(self.negative_cdf, draws, right=True)
        return positions.clamp_(max=self.num_nodes - 1)

    def _generator(
        self, input_id: Tensor | None, fallback: Tensor
    ) -> torch.Generator | None:
        """A generator keyed by (seed, epoch, the batch's input ids)."""
        if self.seed is None:
            return None
        key = input_id if input_id is not None else fallback
        digest = hashlib.blake2b(digest_size=8)
        digest.update(np.array([self.seed, self.epoch], dtype=np.int64).tobytes())
        digest.update(key.to(torch.int64).contiguous().numpy().tobytes())
        value = int.from_bytes(digest.digest(), "little") & (2**63 - 1)
        return torch.Generator().manual_seed(value)


def sample_neighbors(
    indptr: Tensor,
    nodes: Tensor,
    fanout: int,
    *,
    replace: bool = False,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Sample in-edges of each node uniformly: one hop, vectorised.

    Args:
        indptr: ``[num_nodes + 1]`` int64 CSR offsets over destinations.
        nodes: ``[n]`` int64 destination positions.
        fanout: edges per node; ``-1`` takes all. Without replacement a node
            with fewer in-edges gives all of them; with replacement every node
            with at least one in-edge gives exactly ``fanout``.
        replace: draw with replacement.
        generator: the random source; None uses torch's global one.

    Returns:
        ``(positions, counts)``: ``[sum(counts)]`` int64 CSR positions of the
        sampled edges (``indices[positions]`` are their sources), grouped by
        node in the order of ``nodes``, and ``[n]`` int64 edges per node.
    """
    start = indptr[nodes]
    degree = indptr[nodes + 1] - start
    if fanout < 0:
        counts = degree
    elif replace:
        counts = torch.where(degree > 0, fanout, 0)
    else:
        counts = degree.clamp(max=fanout)

    total = int(counts.sum())
    segment = torch.cumsum(counts, 0) - counts
    offsets = torch.arange(total) - segment.repeat_interleave(counts, output_size=total)
    if fanout >= 0 and replace:
        spans = degree.repeat_interleave(counts, output_size=total)
        draws = torch.rand(total, dtype=torch.float64, generator=generator)
        offsets = (draws * spans).to(torch.int64).clamp_(max=spans - 1)
    elif fanout >= 0:
        crowded = torch.nonzero(degree > fanout).flatten()
        if crowded.numel():
            picks = _choose(degree[crowded], fanout, generator)
            slots = segment[crowded, None] + torch.arange(fanout)
            offsets[slots.flatten()] = picks.flatten()

    return start.repeat_interleave(counts, output_size=total) + offsets, counts


def node_loader(
    graph: Graph,
    fanouts: Sequence[int],
    input_nodes: Tensor | np.ndarray | None = None,
    *,
    batch_size: int = 512,
    shuffle: bool = False,
    replace: bool = False,
    seed: int | None = None,
    num_workers: int = 0,
    backend: str = "fastrec",
    **kwargs: Any,
) -> NodeLoader:
    """A PyG ``NodeLoader`` over ``graph``, batches of seed nodes.

    Each batch is a ``Data`` with ``n_id`` (``[n]`` positions, the
    ``batch_size`` seeds first), ``edge_index`` (``[2, m]`` local source and
    destination), ``e_id`` (CSR positions), ``batch_size``, ``input_id``,
    ``num_sampled_nodes`` and ``num_sampled_edges``: ready for
    ``Encoder.forward(batch.n_id, batch.edge_index)``.

    Args:
        graph: the graph.
        fanouts: neighbours per node at each hop, ``-1`` for all.
        input_nodes: ``[k]`` seed positions or ``[num_nodes]`` bool mask;
            None for every node.
        batch_size: seeds per batch.
        shuffle: reshuffle the seeds every epoch.
        replace: sample neighbours with replacement.
        seed: seeds the sampler and, when ``shuffle`` and no ``generator`` is
            given, the order of seeds.
        num_workers: loader worker processes.
        backend: "fastrec" (``CSRSampler``) or "pyg" (PyG's own
            ``NeighborSampler``, which needs ``pyg-lib`` or ``torch-sparse``).
        **kwargs: passed on to ``torch.utils.data.DataLoader``.

    Raises:
        ValueError: bad ``fanouts`` or ``backend``.
    """
    sampler = _make_sampler(graph, fanouts, backend, replace=replace, seed=seed)
    if input_nodes is not None and not torch.is_tensor(input_nodes):
        input_nodes = torch.as_tensor(np.array(input_nodes))
    _default_generator(kwargs, shuffle, seed)
    return NodeLoader(
        _placeholder_data(graph),
        node_sampler=sampler,
        input_nodes=input_nodes,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        **kwargs,
    )


def link_loader(
    graph: Graph,
    fanouts: Sequence[int],
    edges: Tensor | np.ndarray | None = None,
    *,
    negatives: int = 1,
    batch_size: int = 512,
    shuffle: bool = False,
    replace: bool = False,
    seed: int | None = None,
    exclude_targets: bool = True,
    negative_power: float = 0.75,
    num_workers: int = 0,
    backend: str = "fastrec",
    **kwargs: Any,
) -> LinkLoader:
    """A PyG ``LinkLoader`` over ``graph``: positive edges with negatives.

    Negatives are triplet-style: ``negatives`` destinations per positive edge,
    drawn in proportion to in-degree ** ``negative_power``. Each batch is a
    ``Data`` as from ``node_loader`` (its seeds are the unique endpoints)
    plus ``src_index``, ``dst_pos_index`` (``[b]``) and ``dst_neg_index``
    (``[b, negatives]``, or ``[b]`` for one) indexing the seeds.

    Args:
        graph: the graph.
        fanouts: neighbours per node at each hop, ``-1`` for all.
        edges: ``[2, k]`` (source, destination) positions of the positive
            edges; None for every edge of the graph.
        negatives: negative destinations per positive edge.
        batch_size: positive edges per batch.
        shuffle: reshuffle the edges every epoch.
        replace: sample neighbours with replacement.
        seed: seeds the sampler and the order of edges (see ``node_loader``).
        exclude_targets: remove the positive edges, both directions, from the
            sampled neighbourhoods so the encoder cannot read the answer.
        negative_power: exponent of the in-degree in negative sampling.
        num_workers: loader worker processes.
        backend: "fastrec" or "pyg" (see ``node_loader``).
        **kwargs: passed on to ``torch.utils.data.DataLoader``.

    Raises:
        ValueError: bad ``fanouts``, ``backend`` or ``negatives``, or
            ``edges`` not of shape ``[2, k]``.
    """
    if not isinstance(negatives, int) or isinstance(negatives, bool) or negatives < 1:
        raise ValueError(f"negatives must be a positive int (got {negatives!r})")
    edge_label_index = _edge_tensor(graph, edges)
    sampler = _make_sampler(
        graph,
        fanouts,
        backend,
        replace=replace,
        seed=seed,
        exclude_targets=exclude_targets,
        negative_power=negative_power,
    )
    weight = None
    transform = None
    if backend == "pyg":
        weight = _degree_weights(in_degrees(graph), negative_power)
        transform = _drop_targets if exclude_targets else None
    _default_generator(kwargs, shuffle, seed)
    return LinkLoader(
        _placeholder_data(graph),
        link_sampler=sampler,
        edge_label_index=edge_label_index,
        neg_sampling=NegativeSampling("triplet", negatives, dst_weight=weight),
        transform=transform,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        **kwargs,
    )


def check_fanouts(fanouts: Sequence[int]) -> tuple[int, ...]:
    """Return ``fanouts`` as a tuple of ints, or raise naming the bad value."""
    values = tuple(fanouts)
    if not values:
        raise ValueError("fanouts must hold at least one hop (got none)")
    for value in values:
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise ValueError(f"fanouts must be ints (got {values!r})")
        if value == 0 or value < -1:
            raise ValueError(
                f"fanouts must be positive or -1 for all neighbours (got {values!r})"
            )
    return tuple(int(v) for v in values)


def _choose(degree: Tensor, k: int, generator: torch.Generator | None) -> Tensor:
    """``[n, k]`` distinct offsets below each ``degree`` (all > k), uniformly."""
    if k > _FLOYD_MAX_FANOUT:
        return _choose_by_sorting(degree, k, generator)
    # Floyd: for j = d-k .. d-1 draw t in [0, j]; keep t unless taken, else j.
    chosen = torch.empty(degree.numel(), k, dtype=torch.int64)
    for i in range(k):
        bound = degree - k + i
        draws = torch.rand(degree.numel(), dtype=torch.float64, generator=generator)
        pick = (draws * (bound + 1)).to(torch.int64).clamp_(max=bound)
        taken = (chosen[:, :i] == pick[:, None]).any(dim=1)
        chosen[:, i] = torch.where(taken, bound, pick)
    return chosen


def _choose_by_sorting(
    degree: Tensor, k: int, generator: torch.Generator | None
) -> Tensor:
    """Like ``_choose``: the ``k`` offsets with the smallest random keys."""
    total = int(degree.sum())
    row = torch.arange(degree.numel()).repeat_interleave(degree, output_size=total)
    keys = torch.rand(total, dtype=torch.float64, generator=generator) + row
    order = torch.argsort(keys)  # by row, then by key within the row
    segment = torch.cumsum(degree, 0) - degree
    offsets = order - segment.repeat_interleave(degree, output_size=total)
    rank = torch.arange(total) - segment.repeat_interleave(degree, output_size=total)
    return offsets[rank < k].view(-1, k)


def _relabel(table: Tensor, candidates: Tensor, num_known: int) -> Tensor:
    """Give local ids to the candidates not yet in ``table``; return them.

    New nodes are numbered from ``num_known`` in order of first appearance, so
    the work is linear in the number of candidates: no sort.
    """
    unseen = torch.nonzero(table[candidates] == _EMPTY).flatten()
    fresh = candidates[unseen]
    table.scatter_reduce_(0, fresh, unseen.to(table.dtype), reduce="amin")
    new = fresh[table[fresh] == unseen.to(table.dtype)]
    table[new] = torch.arange(num_known, num_known + new.numel(), dtype=table.dtype)
    return new


def _degree_weights(degrees: np.ndarray, power: float) -> Tensor:
    weights = torch.from_numpy(degrees.astype(np.float64)) ** power
    if float(weights.sum()) <= 0:
        return torch.ones_like(weights)
    return weights


def _degree_cdf(degrees: np.ndarray, power: float) -> Tensor:
    """The cumulative distribution of in-degree ** power (uniform if all zero)."""
    cdf = torch.cumsum(_degree_weights(degrees, power), 0)
    return cdf / cdf[-1] if cdf.numel() else cdf


def _binary_labels(label: Tensor | None, num_pos: int, num_neg: int) -> Tensor:
    if label is None:
        label = torch.ones(num_pos)
    return torch.cat([label, label.new_zeros((num_neg, *label.shape[1:]))])


def _placeholder_data(graph: Graph) -> Data:
    """What the loaders need to see: the node count, no features.

    PyG rebuilds each batch's ``edge_index`` from the sampler's output and
    never reads the full one, so an empty placeholder stands in for it.
    """
    return Data(
        num_nodes=graph.num_nodes, edge_index=torch.empty(2, 0, dtype=torch.long)
    )


def _edge_tensor(graph: Graph, edges: Tensor | np.ndarray | None) -> Tensor:
    if edges is None:
        src, dst = edge_list(graph)
        return torch.from_numpy(np.stack([src, dst]).astype(np.int64))
    tensor = torch.as_tensor(np.asarray(edges) if not torch.is_tensor(edges) else edges)
    if tensor.dim() != 2 or tensor.shape[0] != 2:
        raise ValueError(f"edges must have shape [2, k] (got {list(tensor.shape)})")
    return tensor.to(torch.int64)


def _default_generator(kwargs: dict[str, Any], shuffle: bool, seed: int | None) -> None:
    if shuffle and seed is not None and "generator" not in kwargs:
        kwargs["generator"] = torch.Generator().manual_seed(seed)


def _make_sampler(
    graph: Graph,
    fanouts: Sequence[int],
    backend: str,
    *,
    replace: bool,
    seed: int | None,
    exclude_targets: bool = True,
    negative_power: float = 0.75,
) -> BaseSampler:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)} (got {backend!r})")
    if backend == "fastrec":
        return CSRSampler(
            graph,
            fanouts,
            replace=replace,
            seed=seed,
            exclude_targets=exclude_targets,
            negative_power=negative_power,
        )
    return pyg_sampler(graph, fanouts, replace=replace)


def pyg_sampler(graph: Graph, fanouts: Sequence[int], *, replace: bool) -> BaseSampler:
    """PyG's own ``NeighborSampler`` over ``graph`` (needs pyg-lib or torch-sparse).

    Its batches have the form of ``CSRSampler``'s; its random draws come from
    the native library and are not governed by fastrec's seeds.

    Raises:
        ImportError: neither ``pyg-lib`` nor ``torch-sparse`` is installed.
    """
    import torch_geometric.typing as pyg_typing
    from torch_geometric.sampler import NeighborSampler

    if not (pyg_typing.WITH_PYG_LIB or pyg_typing.WITH_TORCH_SPARSE):
        raise ImportError(
            'backend="pyg" needs pyg-lib or torch-sparse; use backend="fastrec"'
        )
    src, dst = edge_list(graph)
    data = Data(
        edge_index=torch.from_numpy(np.stack([src, dst]).astype(np.int64)),
        num_nodes=graph.num_nodes,
    )
    # The CSR's edge list is sorted by destination, the order PyG's CSC wants.
    return NeighborSampler(
        data, list(check_fanouts(fanouts)), replace=replace, is_sorted=True
    )


def _drop_targets(data: Data) -> Data:
    """Remove the positive edges, both directions, from a PyG-sampled batch."""
    n_id, (row, col) = data.n_id, data.edge_index
    num = int(n_id.max()) + 1 if n_id.numel() else 1
    src, dst = n_id[data.src_index], n_id[data.dst_pos_index]
    targets = torch.cat([src * num + dst, dst * num + src])
    keep = ~torch.isin(n_id[row] * num + n_id[col], targets)
    data.edge_index = data.edge_index[:, keep]
    if "e_id" in data:
        data.e_id = data.e_id[keep]
    if data.num_sampled_edges is not None:  # edges come hop by hop
        bounds = np.cumsum([0, *data.num_sampled_edges])
        data.num_sampled_edges = [
            int(keep[a:b].sum()) for a, b in zip(bounds[:-1], bounds[1:], strict=True)
        ]
    return data
