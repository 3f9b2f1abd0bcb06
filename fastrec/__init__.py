"""fastrec: GraphSAGE node embeddings, a faiss similarity index, a small recommender.

Every step is a function over plain data: build a ``Graph``, make an
``Encoder``, ``embed``, ``build_index``, then ``query`` or ``evaluate``.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .api import create_app, serve
from .bundle import Bundle, load, load_graph, save
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
from .errors import BundleError, FastrecError, UnknownNodeError
from .evaluate import evaluate
from .graph import (
    Graph,
    add_edges,
    add_nodes,
    build_graph,
    node_positions,
    set_excluded,
    set_labels,
)
from .index import NeighborIndex, build_index, read_index, search, write_index
from .losses import link_loss, pairwise_loss
from .model import Encoder, EncoderConfig, init_encoder
from .recommend import embed_unseen, query, query_unseen
from .sampling import CSRSampler, link_loader, node_loader
from .train import EpochRecord, History, train

__all__ = [
    "Bundle",
    "BundleError",
    "CSRSampler",
    "Encoder",
    "EncoderConfig",
    "EpochRecord",
    "FastrecError",
    "Graph",
    "History",
    "NeighborIndex",
    "UnknownNodeError",
    "__version__",
    "add_edges",
    "add_nodes",
    "build_graph",
    "build_index",
    "create_app",
    "embed",
    "embed_unseen",
    "evaluate",
    "init_encoder",
    "karate_club",
    "link_loader",
    "link_loss",
    "load",
    "load_graph",
    "musae",
    "node_loader",
    "node_positions",
    "pairwise_loss",
    "planetoid",
    "planetoid_features",
    "query",
    "query_unseen",
    "reddit",
    "reddit_features",
    "read_index",
    "save",
    "search",
    "serve",
    "set_excluded",
    "set_labels",
    "synthetic_communities",
    "train",
    "write_index",
]
