"""Zachary's karate club in two dimensions: untrained GraphSAGE embeddings.

Writes ``karate_untrained.png`` (or the path given as the first argument): each
member placed at its 2-D embedding, coloured by faction. Run with
``.venv/bin/python examples/karateclub.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import fastrec  # noqa: E402


def untrained_embeddings(seed: int = 0) -> tuple[fastrec.Graph, object]:
    nodes, src, dst, labels = fastrec.karate_club()
    graph = fastrec.build_graph(nodes, src, dst, labels=labels)
    # Wide hidden layers: random features averaged over many units separate
    # the factions even before training.
    config = fastrec.EncoderConfig(
        embedding_dim=2, hidden_dim=256, feature_dim=512, metric="l2"
    )
    encoder = fastrec.init_encoder(config, graph, seed=seed)
    return graph, fastrec.embed(graph, encoder, progress=False).numpy()


def plot(graph: fastrec.Graph, points, title: str, path: Path) -> None:
    figure, axes = plt.subplots(figsize=(6, 6))
    for code, faction in enumerate(graph.classes):
        members = graph.labels == code
        axes.scatter(points[members, 0], points[members, 1], s=80, label=faction)
    for position, node in enumerate(graph.ids):
        axes.annotate(str(node), points[position], fontsize=7, ha="center", va="center")
    axes.set_title(title)
    axes.legend()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "karate_untrained.png")
    graph, points = untrained_embeddings()
    plot(graph, points, "karate club, untrained 2-D GraphSAGE", path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
