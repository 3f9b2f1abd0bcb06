"""The ``fastrec`` command: ``demo``, ``build``, ``train``, ``evaluate``, ``serve``.

Each sub-command parses its arguments, calls the library's functions and
prints their results; nothing here is imported by the library. To add one,
write ``_add_<name>(commands)``, which registers a sub-parser whose ``handler``
default is the function to run, and list it in ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import __version__
from .api import DEFAULT_MAX_BATCH, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_K, serve
from .bundle import load, save
from .datasets import (
    karate_club,
    musae,
    planetoid,
    planetoid_features,
    reddit,
    reddit_features,
    synthetic_communities,
)
from .embed import embed
from .errors import FastrecError
from .evaluate import evaluate
from .graph import Graph, build_graph
from .index import KINDS, build_index
from .model import AGGREGATIONS, METRICS, EncoderConfig, init_encoder
from .recommend import query
from .train import train

Handler = Callable[[argparse.Namespace], int]
Commands = Any  # argparse's private _SubParsersAction

DEMO_URL_QUERY = "/knn/33?k=5&labels=true"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``fastrec`` command; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="fastrec",
        description="Graph embeddings, a similarity index and a recommender API.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    _add_verbose(parser)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(commands)
    return _run(parser, argv)


def deploy(argv: Sequence[str] | None = None) -> int:
    """``fastrec-deploy DIR``: the original's name for ``fastrec serve DIR``."""
    parser = argparse.ArgumentParser(
        prog="fastrec-deploy", description="Serve a saved bundle (as fastrec serve)."
    )
    _add_verbose(parser)
    _add_serve_arguments(parser)
    parser.set_defaults(handler=_serve)
    return _run(parser, argv)


def _run(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    handler: Handler = args.handler
    try:
        return handler(args)
    except (FastrecError, ValueError, OSError) as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 1


def _add_verbose(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-v", "--verbose", action="store_true", help="log INFO")


def _add_demo(commands: Commands) -> None:
    demo = commands.add_parser(
        "demo",
        help="karate club: embed, index, recommend (untrained), then serve the API",
    )
    demo.add_argument(
        "--dim",
        type=int,
        default=EncoderConfig.embedding_dim,
        help="embedding dimension (default %(default)s)",
    )
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("-k", type=int, default=5, help="neighbours per node")
    demo.add_argument(
        "--bundle",
        type=Path,
        help="save the bundle here and keep it (default: a temporary directory)",
    )
    demo.add_argument(
        "--no-serve", action="store_true", help="stop after printing; start no API"
    )
    demo.add_argument("--host", default="127.0.0.1", help="(default %(default)s)")
    demo.add_argument("--port", type=int, default=8000, help="(default %(default)s)")
    demo.set_defaults(handler=_demo)


def _add_build(commands: Commands) -> None:
    build = commands.add_parser(
        "build",
        help="build a bundle: graph, untrained encoder, embeddings, index",
        description="Read a graph, embed it with an untrained encoder, index the "
        "embeddings and save all of it to DIR (train it with `fastrec train`).",
    )
    build.add_argument("dir", type=Path, metavar="DIR", help="the bundle directory")
    source = build.add_mutually_exclusive_group(required=True)
    source.add_argument("--karate", action="store_true", help="Zachary's karate club")
    source.add_argument(
        "--musae",
        type=Path,
        metavar="FOLDER",
        help="a MUSAE folder (edges.csv, target.csv)",
    )
    source.add_argument(
        "--planetoid",
        nargs=2,
        metavar=("ROOT", "NAME"),
        help="PyG's raw Planetoid files, with their features",
    )
    source.add_argument(
        "--reddit",
        type=Path,
        metavar="ROOT",
        help="PyG's raw Reddit files, with their features",
    )
    source.add_argument(
        "--synthetic",
        nargs=3,
        type=int,
        metavar=("NODES", "EDGES", "CLASSES"),
        help="a seeded community graph",
    )
    source.add_argument(
        "--edges",
        type=Path,
        metavar="CSV",
        help="an edge list: the first two columns are source and "
        "destination ids (a header row is expected)",
    )
    build.add_argument(
        "--nodes",
        type=Path,
        metavar="CSV",
        help="with --edges: node ids in the first column and, "
        "optionally, a 'label' column",
    )
    build.add_argument(
        "--undirected",
        action="store_true",
        help="with --edges: add every edge reversed",
    )
    build.add_argument(
        "--no-features",
        action="store_true",
        help="ignore a dataset's node features; learn a table",
    )
    _add_encoder_arguments(build)
    build.set_defaults(handler=_build)


def _add_encoder_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dim",
        type=int,
        default=EncoderConfig.embedding_dim,
        help="embedding dimension (default %(default)s)",
    )
    parser.add_argument(
        "--layers",
        type=int,
        default=EncoderConfig.num_layers,
        help="SAGEConv layers (default %(default)s)",
    )
    parser.add_argument("--aggr", choices=AGGREGATIONS, default=EncoderConfig.aggr)
    parser.add_argument("--metric", choices=METRICS, default=EncoderConfig.metric)
    parser.add_argument(
        "--kind", choices=KINDS, default="flat", help="index kind (default %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=0)


def _add_evaluate(commands: Commands) -> None:
    parser = commands.add_parser(
        "evaluate", help="label agreement of a bundle's nearest neighbours"
    )
    parser.add_argument("dir", type=Path, metavar="DIR", help="the bundle directory")
    parser.add_argument(
        "--levels",
        type=int,
        nargs="+",
        default=[10, 5, 1],
        metavar="K",
        help="neighbour counts (default 10 5 1)",
    )
    parser.add_argument(
        "--use-index",
        action="store_true",
        help="search the bundle's index instead of an exact one",
    )
    parser.set_defaults(handler=_evaluate)


def _add_serve(commands: Commands) -> None:
    parser = commands.add_parser(
        "serve", help="serve a bundle's recommender API (fastrec-deploy is the same)"
    )
    _add_serve_arguments(parser)
    parser.set_defaults(handler=_serve)


def _add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", type=Path, metavar="DIR", help="the bundle directory")
    parser.add_argument("--host", default="127.0.0.1", help="(default %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="(default %(default)s)")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes; they share the mapped bundle",
    )
    parser.add_argument(
        "--api-key-env",
        metavar="NAME",
        help="require the API key held by the variable NAME",
    )
    parser.add_argument(
        "--max-k", type=int, default=DEFAULT_MAX_K, help="(default %(default)s)"
    )
    parser.add_argument(
        "--max-batch",
        type=int,
        default=DEFAULT_MAX_BATCH,
        help="ids per request (default %(default)s)",
    )
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=DEFAULT_MAX_BODY_BYTES,
        help="(default %(default)s)",
    )
    parser.add_argument(
        "--no-verify",
        action="store_true",
        help="skip the SHA-256 check of the bundle's files",
    )
    parser.add_argument("--access-log", action="store_true", help="log each request")


def _add_train(commands: Commands) -> None:
    parser = commands.add_parser(
        "train",
        help="train a bundle's encoder, then re-embed, re-index and save it",
        description="Load the bundle in DIR, train its encoder (supervised with "
        "its labels, or unsupervised by link prediction), embed and index again, "
        "and replace the bundle atomically.",
    )
    parser.add_argument("dir", type=Path, metavar="DIR", help="the bundle directory")
    parser.add_argument(
        "--objective", choices=("supervised", "unsupervised"), default="supervised"
    )
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument(
        "--fanouts",
        type=int,
        nargs="+",
        default=None,
        metavar="N",
        help="neighbours per hop, one per layer, -1 for all (default 10 each)",
    )
    parser.add_argument("--negatives", type=int, default=5)
    parser.add_argument(
        "--train-share",
        type=float,
        default=1.0,
        help="share of labelled nodes trained on; the rest are evaluated",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(handler=_train)


COMMANDS: tuple[Callable[[Commands], None], ...] = (
    _add_demo,
    _add_build,
    _add_train,
    _add_evaluate,
    _add_serve,
)


def _demo(args: argparse.Namespace) -> int:
    nodes, src, dst, labels = karate_club()
    graph = build_graph(nodes, src, dst, labels=labels)
    config = EncoderConfig(embedding_dim=args.dim)
    encoder = init_encoder(config, graph, seed=args.seed)
    embeddings = embed(graph, encoder, progress=False)
    index = build_index(embeddings, graph, metric=config.metric)

    print(
        f"karate club: {graph.num_nodes} members, {graph.num_edges} directed "
        f"edges, factions {graph.classes.tolist()}"
    )
    print(
        f"untrained GraphSAGE ({config.aggr}, {config.num_layers} layers, "
        f"dim {config.embedding_dim}, {config.metric})\n"
    )
    answers = query(graph, embeddings, index, [0, 33], args.k, labels=True)
    for node, answer in answers.items():
        print(f"node {node} ({labels[node]}): nearest {args.k}")
        for rows in zip(*answer.values(), strict=True):
            neighbor, distance, label = rows
            print(f"  {neighbor:>3}  distance {distance:.4f}  {label}")
    figures = evaluate(graph, embeddings, levels=(5, 1), metric=config.metric)
    print("\nevaluation over all members:", _format(figures))

    if args.bundle is not None or not args.no_serve:
        parts = {"graph": graph, "encoder": encoder, "embeddings": embeddings}
        _save_and_serve(args, **parts, index=index)
    return 0


def _save_and_serve(args: argparse.Namespace, **parts: Any) -> None:
    """The demo's end: save the bundle, then serve it unless ``--no-serve``."""
    with _bundle_directory(args.bundle) as directory:
        save(directory, **parts)
        again = f"; serve it again with `fastrec serve {directory}`"
        print(f"\nsaved the bundle to {directory}{again if args.bundle else ''}")
        if args.no_serve:
            return
        url = f"http://{args.host}:{args.port}"
        print(
            f"serving the API on {url} (Ctrl-C to stop); try\n"
            f"  curl -s '{url}{DEMO_URL_QUERY}'",
            flush=True,
        )
        serve(directory, host=args.host, port=args.port)


@contextlib.contextmanager
def _bundle_directory(path: Path | None) -> Iterator[Path]:
    """``path``, or a temporary directory removed afterwards."""
    if path is not None:
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="fastrec-karate-") as temporary:
        yield Path(temporary) / "bundle"


def _build(args: argparse.Namespace) -> int:
    graph, features = _read_source(args)
    config = EncoderConfig(
        embedding_dim=args.dim,
        num_layers=args.layers,
        aggr=args.aggr,
        metric=args.metric,
    )
    encoder = init_encoder(config, graph, features=features, seed=args.seed)
    embeddings = embed(graph, encoder, progress=args.verbose)
    index = build_index(
        embeddings, graph, metric=args.metric, kind=args.kind, seed=args.seed
    )
    path = save(
        args.dir, graph=graph, encoder=encoder, embeddings=embeddings, index=index
    )
    print(
        f"saved {graph!r}, {args.kind} index of {index.num_rows} rows, "
        f"dim {index.dim}, to {path}"
    )
    return 0


def _read_source(args: argparse.Namespace) -> tuple[Graph, np.ndarray | None]:
    """The graph a ``build`` asks for, and its node features (None for none)."""
    if args.edges is None and (args.nodes is not None or args.undirected):
        raise ValueError("--nodes and --undirected go with --edges")
    features = None
    if args.edges is not None:
        return _read_csv_graph(args.edges, args.nodes, args.undirected), None
    if args.karate:
        nodes, src, dst, labels = karate_club()
    elif args.musae is not None:
        nodes, src, dst, labels = musae(args.musae)
    elif args.planetoid is not None:
        nodes, src, dst, labels = planetoid(*args.planetoid)
        features = planetoid_features(*args.planetoid)
    elif args.reddit is not None:
        nodes, src, dst, labels = reddit(args.reddit)
        features = reddit_features(args.reddit)
    else:
        num_nodes, num_edges, num_classes = args.synthetic
        nodes, src, dst, labels = synthetic_communities(
            num_nodes, num_edges, num_classes, seed=args.seed
        )
    graph = build_graph(nodes, src, dst, labels=labels)
    return graph, None if args.no_features else features


def _read_csv_graph(edges: Path, nodes: Path | None, undirected: bool) -> Graph:
    table = pd.read_csv(edges)
    if table.shape[1] < 2:
        raise ValueError(f"{edges}: needs two columns, source and destination ids")
    src, dst = table.iloc[:, 0].to_numpy(), table.iloc[:, 1].to_numpy()
    if nodes is None:
        ids = pd.unique(np.concatenate([src.astype(object), dst.astype(object)]))
        return build_graph(ids, src, dst, undirected=undirected)
    node_table = pd.read_csv(nodes)
    labels = (
        node_table["label"].to_numpy(dtype=object) if "label" in node_table else None
    )
    return build_graph(
        node_table.iloc[:, 0].to_numpy(), src, dst, labels=labels, undirected=undirected
    )


def _train(args: argparse.Namespace) -> int:
    bundle = load(args.dir)
    fanouts = args.fanouts or [10] * bundle.config.num_layers
    encoder, history = train(
        bundle.graph,
        bundle.encoder,
        objective=args.objective,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        fanouts=fanouts,
        negatives=args.negatives,
        train_share=args.train_share,
        levels=(10, 5, 1),
        eval_every=args.epochs,
        seed=args.seed,
        progress=args.verbose,
    )
    embeddings = embed(bundle.graph, encoder, progress=args.verbose)
    index = build_index(
        embeddings,
        bundle.graph,
        metric=bundle.index.metric,
        kind=bundle.index.kind,
        seed=args.seed,
    )
    save(
        args.dir,
        graph=bundle.graph,
        encoder=encoder,
        embeddings=embeddings,
        index=index,
    )
    for record in history.records:
        print(f"epoch {record.epoch}: loss {record.loss:.4f}")
    if history.initial:
        print("before:", _format(history.initial))
    if history.records and history.records[-1].figures:
        print("after: ", _format(history.records[-1].figures))
    print(f"saved the trained bundle to {args.dir}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    bundle = load(args.dir)
    figures = evaluate(
        bundle.graph,
        bundle.embeddings,
        levels=args.levels,
        metric=bundle.index.metric,
        index=bundle.index if args.use_index else None,
    )
    print(_format(figures))
    return 0


def _serve(args: argparse.Namespace) -> int:
    serve(
        args.dir,
        api_key_env=args.api_key_env,
        max_k=args.max_k,
        max_batch=args.max_batch,
        max_body_bytes=args.max_body_bytes,
        verify=not args.no_verify,
        host=args.host,
        port=args.port,
        workers=args.workers,
        access_log=args.access_log,
    )
    return 0


def _format(figures: Mapping[str, Any]) -> str:
    return json.dumps({k: round(v, 4) for k, v in figures.items()})


if __name__ == "__main__":
    raise SystemExit(main())
