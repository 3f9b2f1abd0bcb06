"""Neighbour sampling throughput: seeds per second through PyG's loaders.

Builds a seeded random graph (1M nodes, 50M edges by default), then times
batches of 1024 seed nodes with fanouts (25, 10) through ``NodeLoader`` driven
by fastrec's ``CSRSampler`` and, when ``torch-sparse`` or ``pyg-lib`` is
importable, through PyG's own ``NeighborLoader`` on the same graph, and
prints both figures side by side.

Run from the repository root:

    .venv/bin/python benchmarks/sampling.py [--batches 30] [--threads 1]
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from collections.abc import Iterable

import numpy as np
import torch

import fastrec
from fastrec.graph import edge_list


def main() -> None:
    args = _arguments()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    graph = random_graph(args.nodes, args.edges, args.seed)
    print(
        f"graph: {graph.num_nodes:,} nodes, {graph.num_edges:,} edges, "
        f"built in {time.perf_counter() - start:.1f} s"
    )
    print(
        f"fanouts {tuple(args.fanouts)}, batch {args.batch_size}, "
        f"{args.batches} batches, {args.threads} torch threads, "
        f"{args.workers} loader workers\n"
    )

    rows = [("fastrec CSRSampler + NodeLoader", _fastrec_rate(graph, args))]
    if _pyg_backend():
        rows.append(("PyG NeighborLoader", _pyg_rate(graph, args)))
    else:
        rows.append(("PyG NeighborLoader", None))

    print("| sampler | seeds / s |")
    print("| --- | ---: |")
    for name, rate in rows:
        figure = (
            "not installed (needs pyg-lib or torch-sparse)"
            if rate is None
            else (f"{rate:,.0f}")
        )
        print(f"| {name} | {figure} |")


def random_graph(num_nodes: int, num_edges: int, seed: int) -> fastrec.Graph:
    """Uniformly random directed edges, generated in int32 to save memory."""
    rng = np.random.default_rng(seed)
    src = rng.integers(0, num_nodes, num_edges, dtype=np.int32)
    dst = rng.integers(0, num_nodes, num_edges, dtype=np.int32)
    return fastrec.build_graph(np.arange(num_nodes), src, dst)


def seeds_per_second(batches: Iterable, num_batches: int) -> float:
    """Seeds per second over ``num_batches`` batches, after one warm-up batch."""
    iterator = iter(batches)
    next(iterator)
    seeds = 0
    start = time.perf_counter()
    for _ in range(num_batches):
        seeds += next(iterator).batch_size
    return seeds / (time.perf_counter() - start)


def _fastrec_rate(graph: fastrec.Graph, args: argparse.Namespace) -> float:
    loader = fastrec.node_loader(
        graph,
        args.fanouts,
        batch_size=args.batch_size,
        shuffle=True,
        seed=args.seed,
        num_workers=args.workers,
    )
    return seeds_per_second(loader, args.batches)


def _pyg_rate(graph: fastrec.Graph, args: argparse.Namespace) -> float:
    from torch_geometric.data import Data
    from torch_geometric.loader import NeighborLoader

    src, dst = edge_list(graph)
    edge_index = torch.from_numpy(np.stack([src, dst]).astype(np.int64))
    data = Data(edge_index=edge_index, num_nodes=graph.num_nodes)
    loader = NeighborLoader(
        data,
        num_neighbors=list(args.fanouts),
        batch_size=args.batch_size,
        shuffle=True,
        num_workers=args.workers,
        is_sorted=True,  # the CSR's edge list is sorted by destination
    )
    return seeds_per_second(loader, args.batches)


def _pyg_backend() -> bool:
    return any(importlib.util.find_spec(m) for m in ("pyg_lib", "torch_sparse"))


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=1_000_000)
    parser.add_argument("--edges", type=int, default=50_000_000)
    parser.add_argument("--fanouts", type=int, nargs="+", default=[25, 10])
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--batches", type=int, default=30, help="timed batches")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--workers", type=int, default=0, help="loader workers")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


if __name__ == "__main__":
    main()
