"""Inference: fastrec's layer-wise ``embed`` against a plain PyG forward.

The plain forward runs every ``SAGEConv`` on the whole ``edge_index``, as a
PyG user would; PyG then builds one feature row per edge. Both run the Reddit
recipe's widths (512 -> 256 -> 128, gcn) on Reddit-shaped synthetic graphs of
growing edge counts; the plain forward runs in a child process under a memory
limit, so the size at which it no longer fits shows as "does not fit". The
script also prints the gather rate of fastrec's aggregation against this
machine's memory copy bandwidth.

    .venv/bin/python benchmarks/inference.py --sizes 1e6,2e6,4e6,8e6,16e6
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import tempfile
import time

import numpy as np
import torch

import fastrec

NODES, CLASSES = 232_965, 41
CONFIG = fastrec.EncoderConfig(embedding_dim=128, feature_dim=512, hidden_dim=256)


def plain_forward(folder: str, memory_limit: int, queue) -> None:
    """Child process: load the graph and encoder, run PyG's forward, save it."""
    from torch_geometric.utils import add_self_loops

    resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    try:
        edge_index = torch.from_numpy(np.load(f"{folder}/edge_index.npy"))
        encoder = torch.load(f"{folder}/encoder.pt", weights_only=False)
        start = time.perf_counter()
        with torch.inference_mode():
            edges, _ = add_self_loops(edge_index, num_nodes=NODES)
            x = encoder.input_features()
            for i, conv in enumerate(encoder.convs):
                x = conv(x, edges)
                x = x.relu() if i < len(encoder.convs) - 1 else x
        seconds = time.perf_counter() - start
        np.save(f"{folder}/plain.npy", x.numpy())
        queue.put(("ok", seconds))
    except (MemoryError, RuntimeError) as error:
        queue.put(("does not fit", str(error)[:80]))


def copy_bandwidth(size: int = 1 << 30, repeats: int = 5) -> float:
    """Bytes moved per second (read + write) by a large numpy copy, best of n."""
    a = np.ones(size // 4, dtype=np.float32)
    b = np.empty_like(a)
    best = min(timed(np.copyto, b, a) for _ in range(repeats))
    return 2 * a.nbytes / best


def timed(function, *args) -> float:
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def embed_quietly(graph: fastrec.Graph, encoder) -> torch.Tensor:
    return fastrec.embed(graph, encoder, progress=False)


def gather_rate(graph: fastrec.Graph, seconds: float) -> float:
    """Feature bytes read per second: each edge reads its source's row once per
    layer, in the narrower width of the layer (project-first)."""
    widths = [
        min(CONFIG.feature_dim, CONFIG.hidden_dim),
        min(CONFIG.hidden_dim, CONFIG.embedding_dim),
    ]
    return graph.num_edges * sum(widths) * 4 / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e6,2e6,4e6,8e6,16e6")
    parser.add_argument(
        "--memory-gb",
        type=float,
        default=18.0,
        help="memory limit of the plain forward's process",
    )
    args = parser.parse_args()
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    context = multiprocessing.get_context("spawn")

    bandwidth = copy_bandwidth()
    print(f"memory copy bandwidth: {bandwidth / 1e9:.1f} GB/s (read + write)")
    print(
        f"{'edges':>12s} {'fastrec s':>10s} {'gather GB/s':>12s} "
        f"{'plain PyG s':>12s} {'speed-up':>9s} {'max abs diff':>13s}"
    )
    for num_edges in sizes:
        nodes, src, dst, labels = fastrec.synthetic_communities(
            NODES, num_edges, CLASSES, seed=0
        )
        graph = fastrec.build_graph(nodes, src, dst, labels=labels)
        encoder = fastrec.init_encoder(CONFIG, graph, seed=0)
        fast_s = min(timed(embed_quietly, graph, encoder) for _ in range(2))
        ours = fastrec.embed(graph, encoder, progress=False)

        with tempfile.TemporaryDirectory() as folder:
            src_pos, dst_pos = fastrec.graph.edge_list(graph)
            np.save(
                f"{folder}/edge_index.npy",
                np.stack([src_pos, dst_pos]).astype(np.int64),
            )
            torch.save(encoder, f"{folder}/encoder.pt")
            queue = context.Queue()
            child = context.Process(
                target=plain_forward, args=(folder, int(args.memory_gb * 2**30), queue)
            )
            child.start()
            child.join()
            status, value = (
                queue.get()
                if not queue.empty()
                else ("does not fit", f"exit {child.exitcode}")
            )
            diff = float("nan")
            if status == "ok":
                plain = np.load(f"{folder}/plain.npy")
                diff = float(np.abs(plain - ours.numpy()).max())
        plain_s = f"{value:12.2f}" if status == "ok" else f"{status:>12s}"
        ratio = f"{value / fast_s:8.1f}x" if status == "ok" else f"{'':>9s}"
        print(
            f"{num_edges:12,d} {fast_s:10.2f} "
            f"{gather_rate(graph, fast_s) / 1e9:12.1f} {plain_s} {ratio} "
            f"{diff:13.2e}",
            flush=True,
        )


if __name__ == "__main__":
    main()
