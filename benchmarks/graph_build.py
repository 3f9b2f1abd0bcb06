"""Graph build: fastrec's ``build_graph`` against the original's pandas merges.

The original FastRec mapped edge ids to integer positions by merging each
1M-edge chunk of the edge table with the node table, twice (source, then
destination). This script times that method and ``fastrec.build_graph`` on the
same edges, with int ids and with string ids, in one run.

    .venv/bin/python benchmarks/graph_build.py --edges 10000000
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

import fastrec
from fastrec.graph import csr_by_destination

CHUNK = 1_000_000


def original_method(nodes: np.ndarray, src: np.ndarray, dst: np.ndarray):
    """Chunked merges of the id columns, as the original did, then the CSR."""
    table = pd.DataFrame({"id": nodes, "position": np.arange(len(nodes))})
    src_pos, dst_pos = [], []
    for lo in range(0, len(src), CHUNK):
        edges = pd.DataFrame({"n1": src[lo : lo + CHUNK], "n2": dst[lo : lo + CHUNK]})
        edges = edges.merge(table, left_on="n1", right_on="id", how="left")
        edges = edges.merge(
            table, left_on="n2", right_on="id", how="left", suffixes=("", "2")
        )
        if edges[["position", "position2"]].isna().any().any():
            raise ValueError("unknown edge endpoints")
        src_pos.append(edges["position"].to_numpy())
        dst_pos.append(edges["position2"].to_numpy())
    return csr_by_destination(
        len(nodes), np.concatenate(src_pos), np.concatenate(dst_pos)
    )


def timed(function, *args) -> tuple[float, object]:
    start = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1_000_000)
    parser.add_argument("--edges", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    order = rng.permutation(args.nodes)
    src_pos = rng.integers(0, args.nodes, args.edges)
    dst_pos = rng.integers(0, args.nodes, args.edges)
    int_ids = order.astype(np.int64) * 7 + 11  # not 0..n-1, not sorted
    str_ids = np.array([f"node-{i}" for i in int_ids], dtype=object)

    print(f"{args.nodes:,} nodes, {args.edges:,} edges")
    print(f"{'ids':8s} {'fastrec s':>10s} {'original s':>11s} {'speed-up':>9s}")
    for name, ids in (("int", int_ids), ("string", str_ids)):
        src, dst = ids[src_pos], ids[dst_pos]
        fast, graph = timed(fastrec.build_graph, ids, src, dst)
        slow, (indptr, indices) = timed(original_method, ids, src, dst)
        if not (
            np.array_equal(indptr, graph.indptr)
            and np.array_equal(indices, graph.indices)
        ):
            raise AssertionError("the two methods built different graphs")
        print(f"{name:8s} {fast:10.2f} {slow:11.2f} {slow / fast:8.1f}x")


if __name__ == "__main__":
    main()
