"""Encoder settings and the GraphSAGE encoder they describe.

``EncoderConfig`` holds every hyper-parameter and round-trips through JSON;
``init_encoder`` turns it and a graph into an ``Encoder``: per-node input
features (a learnable table, given features, or both) and a stack of PyG
``SAGEConv`` layers.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.nn import SAGEConv

from .graph import Graph

AGGREGATIONS = ("mean", "gcn", "max", "lstm")
METRICS = ("cosine", "l2")
INPUTS = ("table", "given", "both")


@dataclass(frozen=True)
class EncoderConfig:
    """Every hyper-parameter of the encoder.

    Attributes:
        embedding_dim: width of the output embeddings.
        hidden_dim: width of the hidden layers (default ``4 * embedding_dim``).
        feature_dim: width of the learnable feature table (default
            ``2 * hidden_dim``).
        num_layers: number of ``SAGEConv`` layers (hops of neighbourhood).
        dropout: dropout between layers while training.
        aggr: "gcn" (mean over the neighbours and the node itself, no separate
            root weight), "mean", "max" or "lstm" (PyG's, with a root weight).
        metric: "cosine" or "l2", the similarity the index and losses use.
        inputs: "table" (a learnable row per node), "given" (the numeric
            features passed to ``init_encoder``) or "both" concatenated; None
            picks "given" when features are passed and "table" otherwise.
    """

    embedding_dim: int = 128
    hidden_dim: int | None = None
    feature_dim: int | None = None
    num_layers: int = 2
    dropout: float = 0.0
    aggr: str = "gcn"
    metric: str = "cosine"
    inputs: str | None = None

    def __post_init__(self) -> None:
        hidden = self.hidden_dim or 4 * self.embedding_dim
        object.__setattr__(self, "hidden_dim", hidden)
        object.__setattr__(self, "feature_dim", self.feature_dim or 2 * hidden)
        for name in ("embedding_dim", "hidden_dim", "feature_dim", "num_layers"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int (got {value!r})")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1) (got {self.dropout!r})")
        _check_choice("aggr", self.aggr, AGGREGATIONS)
        _check_choice("metric", self.metric, METRICS)
        if self.inputs is not None:
            _check_choice("inputs", self.inputs, INPUTS)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> EncoderConfig:
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> EncoderConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"EncoderConfig: unknown fields {unknown}; known are {sorted(known)}"
            )
        return cls(**values)


class Encoder(nn.Module):
    """Input features for every node and a stack of ``SAGEConv`` layers.

    Build it with ``init_encoder``. ``forward`` runs all layers over one
    (sub)graph; ``embed.embed`` runs them layer by layer over the whole graph.

    Attributes:
        config: the resolved ``EncoderConfig`` (``inputs`` is never None).
        table: ``nn.Embedding`` with a learnable row per node, or None.
        given: ``[num_nodes, num_given]`` float32 buffer of given features, or
            None.
        convs: the ``SAGEConv`` layers.
    """

    given: Tensor | None

    def __init__(
        self, config: EncoderConfig, num_nodes: int, given: Tensor | None
    ) -> None:
        super().__init__()
        self.config = config
        self.num_nodes = num_nodes
        self.table = (
            nn.Embedding(num_nodes, int(config.feature_dim or 0))
            if config.inputs in ("table", "both")
            else None
        )
        self.register_buffer("given", given)
        widths = [self.input_dim]
        widths += [int(config.hidden_dim or 0)] * (config.num_layers - 1)
        widths += [config.embedding_dim]
        self.convs = nn.ModuleList(
            _make_conv(a, b, config.aggr)
            for a, b in zip(widths[:-1], widths[1:], strict=True)
        )

    @property
    def input_dim(self) -> int:
        table = self.config.feature_dim or 0 if self.table is not None else 0
        given = self.given.shape[1] if self.given is not None else 0
        return int(table) + int(given)

    def input_features(self, n_id: Tensor | None = None) -> Tensor:
        """Return ``[len(n_id), input_dim]`` input rows (all nodes when None)."""
        parts = []
        if self.table is not None:
            parts.append(self.table.weight if n_id is None else self.table(n_id))
        if self.given is not None:
            parts.append(self.given if n_id is None else self.given[n_id])
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

    def forward(self, n_id: Tensor, edge_index: Tensor) -> Tensor:
        """Run every layer over a subgraph.

        Args:
            n_id: ``[n]`` int64 graph positions of the subgraph's nodes.
            edge_index: ``[2, m]`` int64 local (source, destination) pairs.

        Returns:
            ``[n, embedding_dim]`` outputs for every subgraph node; seeds
            sampled ``num_layers`` hops deep are exact.
        """
        x = self.input_features(n_id)
        edge_index = prepare_edges(edge_index, len(n_id), self.config.aggr)
        for i, conv in enumerate(self.convs):
            x = conv(x, edge_index)
            x = self.between_layers(x, i)
        return x

    def between_layers(self, x: Tensor, layer: int) -> Tensor:
        """The activation and dropout after ``layer`` (none after the last)."""
        if layer == len(self.convs) - 1:
            return x
        x = torch.relu(x)
        return nn.functional.dropout(x, self.config.dropout, self.training)


def init_encoder(
    config: EncoderConfig,
    graph: Graph,
    *,
    features: Tensor | np.ndarray | None = None,
    seed: int | None = None,
) -> Encoder:
    """Build an untrained encoder for ``graph``.

    Args:
        config: the hyper-parameters.
        graph: the graph whose nodes get input features.
        features: ``[num_nodes, d]`` numeric node features, aligned with graph
            positions; used instead of the table (``inputs="given"``) or beside
            it (``inputs="both"``).
        seed: seeds the feature table and the layer weights; the global torch
            generator is left as it was.

    Returns:
        An ``Encoder`` in eval mode whose ``config.inputs`` is resolved.

    Raises:
        ValueError: features of the wrong shape, with NaN or infinity, or
            missing (or unexpected) for ``config.inputs``.
    """
    inputs = config.inputs or ("given" if features is not None else "table")
    if inputs != config.inputs:
        config = dataclasses.replace(config, inputs=inputs)
    given = _check_features(features, graph.num_nodes, inputs)

    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        encoder = Encoder(config, graph.num_nodes, given)
    return encoder.eval()


def prepare_edges(edge_index: Tensor, num_nodes: int, aggr: str) -> Tensor:
    """What each aggregation expects: self loops for "gcn", sorted for "lstm"."""
    if aggr == "gcn":
        loops = torch.arange(num_nodes, device=edge_index.device)
        return torch.cat([edge_index, loops.expand(2, -1)], dim=1)
    if aggr == "lstm":
        order = torch.argsort(edge_index[1], stable=True)
        return edge_index[:, order]
    return edge_index


def _make_conv(in_dim: int, out_dim: int, aggr: str) -> SAGEConv:
    if aggr == "gcn":
        return SAGEConv(in_dim, out_dim, aggr="mean", root_weight=False)
    return SAGEConv(in_dim, out_dim, aggr=aggr)


def _check_features(
    features: Tensor | np.ndarray | None, num_nodes: int, inputs: str
) -> Tensor | None:
    if features is None:
        if inputs != "table":
            raise ValueError(f'inputs="{inputs}" needs node features (got None)')
        return None
    if inputs == "table":
        raise ValueError(
            'features were given but inputs="table" ignores them; '
            'use inputs="given" or "both"'
        )
    given = torch.as_tensor(
        np.asarray(features) if not torch.is_tensor(features) else features
    )
    if given.dim() != 2 or given.shape[0] != num_nodes or given.shape[1] < 1:
        raise ValueError(
            f"features must have shape [num_nodes={num_nodes}, d >= 1] "
            f"(got {list(given.shape)})"
        )
    if not (given.is_floating_point() or given.dtype in (torch.int32, torch.int64)):
        raise ValueError(f"features must be numeric (got {given.dtype})")
    given = given.to(torch.float32)
    if not torch.isfinite(given).all():
        bad = int((~torch.isfinite(given)).any(dim=1).sum())
        raise ValueError(f"features hold NaN or infinity in {bad} rows")
    return given.contiguous()


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)} (got {value!r})")
