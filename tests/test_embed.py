from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch
from torch_geometric.utils import add_self_loops

import fastrec
from fastrec.graph import edge_list
from fastrec.model import EncoderConfig, init_encoder
from tests.conftest import gpu, random_graph

AGGREGATIONS = ["gcn", "mean", "max", "lstm"]


def plain_pyg_forward(graph: fastrec.Graph, encoder) -> torch.Tensor:
    """The obvious reference: every SAGEConv over the full ``edge_index``."""
    src, dst = edge_list(graph)
    edge_index = torch.from_numpy(np.stack([src, dst]).astype(np.int64))
    aggr = encoder.config.aggr
    if aggr == "gcn":
        edge_index, _ = add_self_loops(edge_index, num_nodes=graph.num_nodes)
    # lstm reads neighbours in order: edge_list is already grouped by
    # destination in CSR order, which is the order inference uses.
    with torch.no_grad():
        x = encoder.input_features()
        for i, conv in enumerate(encoder.convs):
            x = conv(x, edge_index)
            x = x.relu() if i < len(encoder.convs) - 1 else x
    return x


@pytest.mark.parametrize("aggr", AGGREGATIONS)
@pytest.mark.parametrize(
    "widths",
    [dict(embedding_dim=8), dict(embedding_dim=16, hidden_dim=24, feature_dim=6)],
    ids=["narrowing", "widening"],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_layerwise_inference_matches_the_full_graph_forward(aggr, widths, seed):
    graph = random_graph(80, 600, seed=seed)
    config = EncoderConfig(aggr=aggr, num_layers=3, **widths)
    encoder = init_encoder(config, graph, seed=seed)

    out = fastrec.embed(graph, encoder, batch_size=17, progress=False)

    assert out.shape == (80, config.embedding_dim) and out.dtype == torch.float32
    torch.testing.assert_close(
        out, plain_pyg_forward(graph, encoder), rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize("aggr", ["max", "lstm"])
def test_gather_budget_split_gives_the_same_result(aggr, monkeypatch):
    graph = random_graph(50, 800, seed=3)
    encoder = init_encoder(EncoderConfig(embedding_dim=4, aggr=aggr), graph, seed=0)
    whole = fastrec.embed(graph, encoder, progress=False)
    module = importlib.import_module("fastrec.embed")  # the name is the function
    monkeypatch.setattr(module, "GATHER_BUDGET", 40)
    split = fastrec.embed(graph, encoder, progress=False)
    torch.testing.assert_close(split, whole, rtol=1e-5, atol=1e-6)


def test_given_features_flow_through():
    graph = random_graph(40, 200)
    features = np.random.default_rng(0).normal(size=(40, 7))
    encoder = init_encoder(
        EncoderConfig(embedding_dim=4, inputs="both"), graph, features=features, seed=0
    )
    torch.testing.assert_close(
        fastrec.embed(graph, encoder, progress=False),
        plain_pyg_forward(graph, encoder),
        rtol=1e-4,
        atol=1e-5,
    )


def test_embedding_leaves_the_encoder_unchanged_and_in_its_mode():
    graph = random_graph()
    encoder = init_encoder(EncoderConfig(embedding_dim=4, dropout=0.5), graph, seed=0)
    encoder.train()
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    a = fastrec.embed(graph, encoder, progress=False)
    b = fastrec.embed(graph, encoder, progress=False)
    assert encoder.training
    torch.testing.assert_close(a, b)  # dropout is off during inference
    for name, value in encoder.state_dict().items():
        assert torch.equal(value, before[name]), name


def test_encoder_for_another_graph_is_an_error():
    encoder = init_encoder(EncoderConfig(embedding_dim=4), random_graph(30))
    with pytest.raises(ValueError, match="built for 30 nodes but the graph has 60"):
        fastrec.embed(random_graph(60), encoder)
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        fastrec.embed(random_graph(30), encoder, batch_size=0)


@gpu
@pytest.mark.parametrize("aggr", AGGREGATIONS)
def test_gpu_inference_matches_cpu(aggr):
    graph = random_graph(200, 2000)
    encoder = init_encoder(EncoderConfig(embedding_dim=8, aggr=aggr), graph, seed=0)
    cpu = fastrec.embed(graph, encoder, progress=False)
    cuda = fastrec.embed(graph, encoder.to("cuda"), device="cuda", progress=False)
    torch.testing.assert_close(cuda, cpu, rtol=1e-3, atol=1e-4)
