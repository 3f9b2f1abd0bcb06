"""Embeddings for every node: a graph and an encoder in, ``[num_nodes, dim]`` out.

Inference runs layer by layer over full neighbourhoods, in batches of
destination nodes. Mean and gcn aggregation are sparse matrix products, done in
the narrower of the layer's two widths; max and lstm gather neighbour rows in
chunks of bounded size. No tensor with one feature row per edge of the graph is
ever built.
"""

from __future__ import annotations

import logging
import time
import warnings

import torch
from torch import Tensor
from torch_geometric.nn import SAGEConv
from tqdm.auto import tqdm

from .graph import Graph, csr_tensors
from .model import Encoder

logger = logging.getLogger(__name__)

# Neighbour rows gathered at once by max and lstm aggregation (rows x width).
GATHER_BUDGET = 1 << 24


def embed(
    graph: Graph,
    encoder: Encoder,
    *,
    batch_size: int = 65536,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> Tensor:
    """Compute the embedding of every node.

    Args:
        graph: the graph the encoder was built for.
        encoder: the encoder; its weights are not changed.
        batch_size: destination nodes per sparse product.
        device: where to compute ("cpu", "cuda", ...).
        progress: show a tqdm bar.

    Returns:
        ``[num_nodes, embedding_dim]`` float32 embeddings on the CPU, aligned
        with graph positions.

    Raises:
        ValueError: the encoder was built for another number of nodes, or
            ``batch_size`` < 1.

    Note:
        lstm aggregation pads every neighbourhood to the largest in-degree, as
        PyG's full-graph forward does, so its memory grows with that degree.
    """
    if encoder.num_nodes != graph.num_nodes:
        raise ValueError(
            f"encoder was built for {encoder.num_nodes} nodes but the graph has "
            f"{graph.num_nodes}; build it with init_encoder(config, graph)"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1 (got {batch_size})")

    start = time.perf_counter()
    device = torch.device(device)
    indptr, indices = (t.to(device) for t in csr_tensors(graph))
    was_training = encoder.training
    encoder.eval()
    num_batches = len(encoder.convs) * -(-graph.num_nodes // batch_size)
    bar = tqdm(total=num_batches, desc="embed", unit="batch", disable=not progress)
    try:
        with torch.inference_mode():
            x = encoder.input_features().to(device)
            for layer, conv in enumerate(encoder.convs):
                x = _layer(
                    conv, encoder.config.aggr, x, indptr, indices, batch_size, bar
                )
                x = encoder.between_layers(x, layer)
    finally:
        bar.close()
        encoder.train(was_training)

    logger.info(
        "embedded %d nodes in %.2f s", graph.num_nodes, time.perf_counter() - start
    )
    return x.float().cpu()


def _layer(
    conv: SAGEConv,
    aggr: str,
    x: Tensor,
    indptr: Tensor,
    indices: Tensor,
    batch_size: int,
    bar: tqdm,
) -> Tensor:
    """One ``SAGEConv`` over every destination node, batch by batch."""
    num_nodes = x.shape[0]
    linear = aggr in ("mean", "gcn")
    # The average commutes with the linear map: project first when it narrows.
    project_first = linear and conv.out_channels < x.shape[1]
    source = x @ conv.lin_l.weight.T if project_first else x
    out = x.new_empty(num_nodes, conv.out_channels)
    pad = int((indptr[1:] - indptr[:-1]).max()) if aggr == "lstm" and num_nodes else 0

    for lo in range(0, num_nodes, batch_size):
        hi = min(lo + batch_size, num_nodes)
        if linear:
            agg = _average(source, indptr, indices, lo, hi, self_too=aggr == "gcn")
        else:
            agg = _gather_reduce(conv, source, indptr, indices, lo, hi, pad)
        if project_first:
            agg = agg + conv.lin_l.bias if conv.lin_l.bias is not None else agg
        else:
            agg = conv.lin_l(agg)
        if conv.root_weight:
            agg = agg + conv.lin_r(x[lo:hi])
        out[lo:hi] = agg
        bar.update()
    return out


def _average(
    x: Tensor, indptr: Tensor, indices: Tensor, lo: int, hi: int, *, self_too: bool
) -> Tensor:
    """Mean of in-neighbour rows (and the node's own row when ``self_too``)."""
    start, end = int(indptr[lo]), int(indptr[hi])
    rows = indptr[lo : hi + 1] - start
    cols = indices[start:end]
    rows = rows.to(cols.dtype)
    values = torch.ones(end - start, dtype=x.dtype, device=x.device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "CSR support is in beta"
        adjacency = torch.sparse_csr_tensor(
            rows, cols, values, size=(hi - lo, x.shape[0]), check_invariants=False
        )
    # ATen's native reduce kernel runs about twice as fast as the MKL product
    # that ``adjacency @ x`` dispatches to (int32 indices, 2 cores).
    total = torch.sparse.mm(adjacency, x, "sum")
    count = (rows[1:] - rows[:-1]).to(x.dtype)
    if self_too:
        total += x[lo:hi]
        count += 1
    return total / count.clamp(min=1).unsqueeze(1)


def _gather_reduce(
    conv: SAGEConv,
    x: Tensor,
    indptr: Tensor,
    indices: Tensor,
    lo: int,
    hi: int,
    pad: int,
) -> Tensor:
    """Max or lstm aggregation, gathering a bounded number of rows at a time."""
    budget = max(1, GATHER_BUDGET // x.shape[1])
    if not pad:
        return _max(x, indptr, indices, lo, hi, budget)
    parts = []
    step = max(1, budget // pad)
    for a in range(lo, hi, step):
        b = min(a + step, hi)
        start, end = int(indptr[a]), int(indptr[b])
        counts = (indptr[a + 1 : b + 1] - indptr[a:b]).long()
        target = torch.repeat_interleave(torch.arange(b - a, device=x.device), counts)
        rows = x[indices[start:end].long()]
        agg = conv.aggr_module(rows, target, dim_size=b - a, max_num_elements=pad)
        parts.append(agg)
    return torch.cat(parts)


def _max(
    x: Tensor, indptr: Tensor, indices: Tensor, lo: int, hi: int, budget: int
) -> Tensor:
    """Element-wise max over in-neighbours (0 without any), ``budget`` edges a step."""
    start, end = int(indptr[lo]), int(indptr[hi])
    ends = indptr[lo + 1 : hi + 1]
    out = x.new_full((hi - lo, x.shape[1]), float("-inf"))
    for a in range(start, end, budget):
        b = min(a + budget, end)
        edges = torch.arange(a, b, device=x.device, dtype=ends.dtype)
        target = torch.searchsorted(ends, edges, right=True)
        rows = x[indices[a:b].long()]
        out.scatter_reduce_(0, target.unsqueeze(1).expand_as(rows), rows, "amax")
    out[ends - indptr[lo:hi] == 0] = 0.0
    return out
