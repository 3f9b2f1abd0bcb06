from __future__ import annotations

import numpy as np
import pytest
import torch

import fastrec
from fastrec.model import EncoderConfig, init_encoder
from tests.conftest import random_graph


def test_defaults_follow_the_original():
    config = EncoderConfig(embedding_dim=16)
    assert (config.hidden_dim, config.feature_dim) == (64, 128)
    assert (config.num_layers, config.aggr, config.metric) == (2, "gcn", "cosine")
    assert config.dropout == 0.0


def test_config_round_trips_through_json():
    config = EncoderConfig(
        embedding_dim=8,
        hidden_dim=20,
        aggr="max",
        metric="l2",
        dropout=0.25,
        num_layers=3,
        inputs="both",
    )
    assert EncoderConfig.from_json(config.to_json()) == config


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"aggr": "sum"}, r"aggr must be one of \['mean', 'gcn', 'max', 'lstm'\]"),
        ({"metric": "dot"}, r"metric must be one of \['cosine', 'l2'\]"),
        ({"embedding_dim": 0}, "embedding_dim must be a positive int"),
        ({"num_layers": 1.5}, "num_layers must be a positive int"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
        ({"inputs": "words"}, "inputs must be one of"),
    ],
)
def test_bad_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EncoderConfig(**kwargs)


def test_unknown_json_fields_are_an_error():
    with pytest.raises(ValueError, match=r"unknown fields \['width'\]"):
        EncoderConfig.from_dict({"width": 3})


def test_layer_widths_and_inputs():
    graph = random_graph(30)
    encoder = init_encoder(EncoderConfig(embedding_dim=4, num_layers=3), graph)
    widths = [(c.in_channels, c.out_channels) for c in encoder.convs]
    assert widths == [(32, 16), (16, 16), (16, 4)]
    assert encoder.config.inputs == "table" and encoder.given is None

    features = np.random.default_rng(0).normal(size=(30, 5))
    given = init_encoder(EncoderConfig(embedding_dim=4), graph, features=features)
    assert given.config.inputs == "given" and given.table is None
    assert given.convs[0].in_channels == 5
    both = init_encoder(
        EncoderConfig(embedding_dim=4, inputs="both"), graph, features=features
    )
    assert both.convs[0].in_channels == 32 + 5
    rows = both.input_features(torch.tensor([3, 1]))
    np.testing.assert_allclose(
        rows[:, 32:].detach().numpy(), features[[3, 1]], rtol=1e-6
    )


@pytest.mark.parametrize(
    "features, message",
    [
        (np.zeros((29, 3)), r"shape \[num_nodes=30, d >= 1\] \(got \[29, 3\]\)"),
        (np.zeros(30), r"\(got \[30\]\)"),
        (np.full((30, 2), np.nan), "NaN or infinity in 30 rows"),
    ],
)
def test_bad_features_are_rejected(features, message):
    with pytest.raises(ValueError, match=message):
        init_encoder(EncoderConfig(), random_graph(30), features=features)


def test_inputs_and_features_must_agree():
    graph = random_graph(30)
    with pytest.raises(ValueError, match="needs node features"):
        init_encoder(EncoderConfig(inputs="given"), graph)
    with pytest.raises(ValueError, match='inputs="table" ignores them'):
        init_encoder(EncoderConfig(inputs="table"), graph, features=np.ones((30, 2)))


def test_seed_gives_the_same_weights_and_leaves_global_rng_alone():
    graph = random_graph(30)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = init_encoder(EncoderConfig(embedding_dim=4), graph, seed=7)
    after = torch.rand(1)
    b = init_encoder(EncoderConfig(embedding_dim=4), graph, seed=7)
    c = init_encoder(EncoderConfig(embedding_dim=4), graph, seed=8)

    assert torch.equal(before, after)
    for (name, x), (_, y) in zip(
        a.state_dict().items(), b.state_dict().items(), strict=True
    ):
        assert torch.equal(x, y), name
    assert not torch.equal(a.table.weight, c.table.weight)


def test_public_names_are_exported():
    for name in fastrec.__all__:
        assert hasattr(fastrec, name), name
