"""Reddit end to end on this machine: raw id arrays to the first API answer.

Runs the original FastRec's Reddit recipe (untrained GraphSAGE, embedding 128,
feature 512, hidden 256, gcn, cosine) on the real files when ``--root`` holds
PyG's raw Reddit files, otherwise on a Reddit-shaped synthetic stand-in
(232,965 nodes, 114,615,892 directed edges, 41 classes). Prints one table of
stage wall times and peak RSS, the evaluation figures and the index's recall,
and writes the same as JSON.

    .venv/bin/python benchmarks/reddit.py                      # synthetic
    .venv/bin/python benchmarks/reddit.py --eval-sample 0      # every query
    .venv/bin/python benchmarks/reddit.py --root data/Reddit   # real files
    .venv/bin/python benchmarks/reddit.py --nodes 1000000 --edges 100000000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np

import fastrec
from fastrec.index import search_excluding

REDDIT_NODES, REDDIT_EDGES, REDDIT_CLASSES = 232_965, 114_615_892, 41


def main() -> None:
    args = parse_args()
    report: dict = {"stages": {}, "args": vars(args)}
    stages = report["stages"]

    with stage(stages, "load data"):
        nodes, src, dst, labels, source = load_data(args)
    report["data"] = source

    with stage(stages, "graph build"):
        graph = fastrec.build_graph(nodes, src, dst, labels=labels)
    del nodes, src, dst, labels

    config = fastrec.EncoderConfig(
        embedding_dim=128, feature_dim=512, hidden_dim=256, aggr="gcn", metric="cosine"
    )
    with stage(stages, "embed"):
        encoder = fastrec.init_encoder(config, graph, seed=args.seed)
        embeddings = fastrec.embed(graph, encoder, device=args.device, progress=False)

    with stage(stages, "index build"):
        index = fastrec.build_index(
            embeddings,
            graph,
            metric=config.metric,
            kind=args.index,
            device=index_device(args),
        )

    with stage(stages, "evaluate"):
        report["evaluation"] = evaluate(graph, embeddings, config, args)

    if args.index != "flat":
        report["recall@10"] = recall_at_10(graph, embeddings, index, args.seed)

    with tempfile.TemporaryDirectory() as folder:
        bundle_dir = Path(folder) / "bundle"
        with stage(stages, "save"):
            fastrec.save(
                bundle_dir,
                graph=graph,
                encoder=encoder,
                config=config,
                embeddings=embeddings,
                index=index,
            )
        with stage(stages, "server start to first answer"):
            server_rss = serve_first_answer(bundle_dir, graph.ids[0])
        stages["server start to first answer"]["server_peak_rss_gb"] = server_rss

    counted = [s for name, s in stages.items() if name != "load data"]
    report["total_s"] = sum(s["seconds"] for s in counted)
    report["peak_rss_gb"] = max(s["peak_rss_gb"] for s in stages.values())
    report["graph"] = {
        "nodes": graph.num_nodes,
        "edges": graph.num_edges,
        "classes": graph.num_classes,
    }
    print_table(report)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"\nwrote {args.out}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="folder with raw/reddit_*.npz")
    parser.add_argument("--nodes", type=int, default=REDDIT_NODES)
    parser.add_argument("--edges", type=int, default=REDDIT_EDGES)
    parser.add_argument("--classes", type=int, default=REDDIT_CLASSES)
    parser.add_argument("--homophily", type=float, default=0.75)
    parser.add_argument("--device", default="cpu", help='"cpu" or "cuda"')
    parser.add_argument("--index", default="ivf", choices=fastrec.index.KINDS)
    parser.add_argument(
        "--eval-sample",
        type=int,
        default=20_000,
        help="queries evaluated, drawn at random, each against every indexed node "
        "by exact search (0: all; on 2 cores that takes ~150 s for Reddit)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="reddit_benchmark.json")
    return parser.parse_args()


def load_data(args: argparse.Namespace):
    root = Path(args.root) if args.root else None
    if root is not None and (root / "raw" / "reddit_graph.npz").is_file():
        return (*fastrec.reddit(root), f"Reddit files in {root}")
    nodes, src, dst, labels = fastrec.synthetic_communities(
        args.nodes,
        args.edges,
        args.classes,
        homophily=args.homophily,
        degree_spread=1.0,
        seed=args.seed,
    )
    return (
        nodes,
        src,
        dst,
        labels,
        (
            f"synthetic: {args.nodes} nodes, {args.edges} edges, {args.classes} "
            f"classes, homophily {args.homophily}"
        ),
    )


def index_device(args: argparse.Namespace) -> str:
    return args.device if args.index != "hnsw" else "cpu"


def evaluate(graph, embeddings, config, args) -> dict:
    mask = None
    if args.eval_sample:
        rng = np.random.default_rng(args.seed)
        mask = np.zeros(graph.num_nodes, dtype=bool)
        mask[rng.choice(graph.num_nodes, args.eval_sample, replace=False)] = True
    figures = fastrec.evaluate(
        graph,
        embeddings,
        levels=(10, 5),
        metric=config.metric,
        test_only=mask is not None,
        test_mask=mask,
    )
    figures["queries"] = (
        "all labelled nodes"
        if mask is None
        else (f"a random sample of {args.eval_sample}")
    )
    return figures


def recall_at_10(graph, embeddings, index, seed: int, sample: int = 5000) -> float:
    """Share of the exact 10 nearest neighbours the index finds, on a sample."""
    exact = fastrec.build_index(embeddings, graph, metric=index.metric, kind="flat")
    rows = index.positions
    queries = np.random.default_rng(seed).choice(
        rows, min(sample, len(rows)), replace=False
    )
    vectors = embeddings[queries]
    _, want = search_excluding(exact, vectors, queries, 10)
    _, got = search_excluding(index, vectors, queries, 10)
    hits = [len(set(a) & set(b)) for a, b in zip(got, want, strict=True)]
    return float(np.mean(hits) / 10)


def serve_first_answer(bundle_dir: Path, node_id) -> float:
    """Start ``fastrec serve``, wait for one answer, stop it; its peak RSS (GB)."""
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fastrec.cli",
            "serve",
            str(bundle_dir),
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}/knn/{node_id}?k=10"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise RuntimeError(server.stderr.read().decode()[-2000:])
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(url, timeout=5) as answer:
                    json.load(answer)
                    return peak_rss_gb(server.pid)
            time.sleep(0.05)
        raise TimeoutError("the server gave no answer within 120 s")
    finally:
        server.terminate()
        server.wait(30)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def stage(stages: dict, name: str) -> Iterator[None]:
    reset_peak_rss()
    start = time.perf_counter()
    yield
    stages[name] = {
        "seconds": round(time.perf_counter() - start, 2),
        "peak_rss_gb": round(peak_rss_gb(os.getpid()), 2),
    }
    print(
        f"{name:32s} {stages[name]['seconds']:8.2f} s "
        f"{stages[name]['peak_rss_gb']:7.2f} GB",
        flush=True,
    )


def reset_peak_rss() -> None:
    """Linux: writing 5 to clear_refs resets the peak RSS (VmHWM) to now."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_rss_gb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / 1e9
    return float("nan")


def print_table(report: dict) -> None:
    print(f"\n{report['data']}")
    print(f"{'stage':32s} {'wall s':>8s} {'peak RSS GB':>12s}")
    for name, row in report["stages"].items():
        print(f"{name:32s} {row['seconds']:8.2f} {row['peak_rss_gb']:12.2f}")
    print(
        f"{'total (without load data)':32s} {report['total_s']:8.2f} "
        f"{report['peak_rss_gb']:12.2f}"
    )
    figures = report["evaluation"]
    print(
        "evaluation ("
        + figures["queries"]
        + ", exact search): "
        + ", ".join(f"{k} {v:.4f}" for k, v in figures.items() if "@" in k)
    )
    if "recall@10" in report:
        print(f"index recall@10 against exact search: {report['recall@10']:.4f}")


if __name__ == "__main__":
    main()
