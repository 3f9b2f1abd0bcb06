"""The ``fastrec`` command: ``fastrec demo`` and friends.

Each sub-command parses its arguments, calls the library's functions and
prints their results; nothing here is imported by the library.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from . import __version__
from .datasets import karate_club
from .embed import embed
from .evaluate import evaluate
from .graph import build_graph
from .index import build_index
from .model import EncoderConfig, init_encoder
from .recommend import query

Handler = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``fastrec`` command; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    handler: Handler = args.handler
    return handler(args)


def deploy(argv: Sequence[str] | None = None) -> int:
    """``fastrec-deploy DIR``: the original's name for ``fastrec serve DIR``."""
    print("fastrec-deploy: serving lands with the bundle and API work; not yet.",
          file=sys.stderr)
    return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastrec",
        description="Graph embeddings, a similarity index and a recommender API.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log INFO")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo", help="karate club: embed, index and recommend, untrained"
    )
    demo.add_argument(
        "--dim", type=int, default=EncoderConfig.embedding_dim,
        help="embedding dimension (default %(default)s)",
    )
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("-k", type=int, default=5, help="neighbours per node")
    demo.set_defaults(handler=_demo)
    return parser


def _demo(args: argparse.Namespace) -> int:
    nodes, src, dst, labels = karate_club()
    graph = build_graph(nodes, src, dst, labels=labels)
    config = EncoderConfig(embedding_dim=args.dim)
    encoder = init_encoder(config, graph, seed=args.seed)
    embeddings = embed(graph, encoder, progress=False)
    index = build_index(embeddings, graph, metric=config.metric)

    print(f"karate club: {graph.num_nodes} members, {graph.num_edges} directed "
          f"edges, factions {graph.classes.tolist()}")
    print(f"untrained GraphSAGE ({config.aggr}, {config.num_layers} layers, "
          f"dim {config.embedding_dim}, {config.metric})\n")
    answers = query(graph, embeddings, index, [0, 33], args.k, labels=True)
    for node, answer in answers.items():
        print(f"node {node} ({labels[node]}): nearest {args.k}")
        for rows in zip(*answer.values(), strict=True):
            neighbor, distance, label = rows
            print(f"  {neighbor:>3}  distance {distance:.4f}  {label}")
    figures = evaluate(graph, embeddings, levels=(5, 1), metric=config.metric)
    print("\nevaluation over all members:", _format(figures))
    return 0


def _format(figures: dict[str, Any]) -> str:
    return json.dumps({k: round(v, 4) for k, v in figures.items()})


if __name__ == "__main__":
    raise SystemExit(main())
