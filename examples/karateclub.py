"""Zachary's karate club in two dimensions: untrained and trained GraphSAGE.

Writes ``karate_untrained.png`` (or the path given as the first argument):
each member placed at its untrained 2-D embedding, coloured by faction. Beside
it, ``karate_supervised.gif`` and ``karate_unsupervised.gif`` animate 150
epochs of supervised and unsupervised training from that same start, one frame
per epoch. Run with ``.venv/bin/python examples/karateclub.py``; needs the
``examples`` extra (matplotlib and pillow).
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.animation import FuncAnimation, PillowWriter  # noqa: E402

import fastrec  # noqa: E402

EPOCHS = 150
SEED = 0


def untrained_embeddings(seed: int = SEED) -> tuple[fastrec.Graph, object]:
    graph, encoder = untrained_encoder(seed)
    return graph, fastrec.embed(graph, encoder, progress=False).numpy()


def untrained_encoder(seed: int = SEED) -> tuple[fastrec.Graph, fastrec.Encoder]:
    nodes, src, dst, labels = fastrec.karate_club()
    graph = fastrec.build_graph(nodes, src, dst, labels=labels)
    config = fastrec.EncoderConfig(embedding_dim=2, metric="l2")
    return graph, fastrec.init_encoder(config, graph, seed=seed)


def training_frames(
    graph: fastrec.Graph, encoder: fastrec.Encoder, objective: str
) -> fastrec.History:
    """Train for ``EPOCHS`` epochs, keeping every epoch's embeddings."""
    _, history = fastrec.train(
        graph,
        encoder,
        objective=objective,
        epochs=EPOCHS,
        batch_size=graph.num_nodes,
        lr=0.01,
        negatives=2,
        eval_every=EPOCHS,
        levels=(5,),
        seed=SEED,
        keep_embeddings=True,
        progress=False,
    )
    return history


def draw(axes, graph: fastrec.Graph, points, title: str) -> None:
    axes.clear()
    for code, faction in enumerate(graph.classes):
        members = graph.labels == code
        axes.scatter(points[members, 0], points[members, 1], s=80, label=faction)
    for position, node in enumerate(graph.ids):
        axes.annotate(str(node), points[position], fontsize=7, ha="center", va="center")
    axes.set_title(title)
    axes.legend(loc="upper right")


def plot(graph: fastrec.Graph, points, title: str, path: Path) -> None:
    figure, axes = plt.subplots(figsize=(6, 6))
    draw(axes, graph, points, title)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def animate(
    graph: fastrec.Graph, history: fastrec.History, objective: str, path: Path
) -> None:
    figure, axes = plt.subplots(figsize=(5, 5))
    frames = [e.numpy() for e in history.embeddings]
    losses = [None, *history.losses]

    def update(epoch: int) -> None:
        loss = "" if losses[epoch] is None else f", loss {losses[epoch]:.3f}"
        draw(axes, graph, frames[epoch], f"{objective}, epoch {epoch}{loss}")

    movie = FuncAnimation(figure, update, frames=len(frames))
    movie.save(path, writer=PillowWriter(fps=15), dpi=80)
    plt.close(figure)


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "karate_untrained.png")
    graph, encoder = untrained_encoder()
    points = fastrec.embed(graph, encoder, progress=False).numpy()
    plot(graph, points, "karate club, untrained 2-D GraphSAGE", path)
    print(f"wrote {path}")

    for objective in ("supervised", "unsupervised"):
        history = training_frames(graph, encoder, objective)
        gif = path.with_name(f"karate_{objective}.gif")
        animate(graph, history, objective, gif)
        share = history.records[-1].figures["share@5"]
        print(
            f"wrote {gif}: {EPOCHS} epochs, share@5 {history.initial['share@5']:.2f}"
            f" -> {share:.2f}"
        )


if __name__ == "__main__":
    main()
