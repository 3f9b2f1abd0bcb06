from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

import fastrec
from fastrec.model import EncoderConfig, init_encoder
from fastrec.sampling import link_loader, node_loader
from fastrec.train import EpochRecord, _sparse_table, _Step, forward_batch, train
from tests.conftest import gpu

AGGREGATIONS = ["gcn", "mean", "max", "lstm"]
OBJECTIVES = ["supervised", "unsupervised"]


def communities(
    num_nodes: int = 120, num_classes: int = 3, seed: int = 0, *, split: bool = False
) -> fastrec.Graph:
    """A seeded planted-partition graph: most edges stay inside a class.

    With ``split`` the second half of the nodes forms its own component.
    """
    rng = np.random.default_rng(seed)
    labels = np.arange(num_nodes) % num_classes
    src = rng.integers(0, num_nodes, 6 * num_nodes)
    same = rng.random(len(src)) < 0.85
    shift = rng.integers(1, num_classes, len(src))
    dst_class = np.where(same, labels[src], (labels[src] + shift) % num_classes)
    dst = rng.integers(0, num_nodes // num_classes, len(src)) * num_classes + dst_class
    if split:
        half = num_nodes // 2
        keep = (src < half) == (dst < half)
        src, dst = src[keep], dst[keep]
    keep = src != dst
    src, dst = fastrec.datasets.symmetrize(src[keep], dst[keep])
    return fastrec.build_graph(np.arange(num_nodes), src, dst, labels=labels)


def small_config(**kwargs) -> EncoderConfig:
    return EncoderConfig(embedding_dim=8, hidden_dim=16, feature_dim=16, **kwargs)


def quick(graph, encoder, **kwargs):
    settings = dict(epochs=2, batch_size=32, lr=0.01, fanouts=(4, 4), progress=False)
    settings.update(kwargs)
    return train(graph, encoder, **settings)


def state(encoder) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in encoder.state_dict().items()}


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_train_returns_a_new_encoder_and_leaves_the_input_alone(objective):
    graph = communities()
    encoder = init_encoder(small_config(), graph, seed=0)
    before = state(encoder)
    trained, history = quick(graph, encoder, objective=objective, seed=0)

    assert trained is not encoder
    after = state(encoder)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not encoder.training and not trained.training
    assert not trained.table.sparse  # the training-time switch is undone
    changed = state(trained)
    assert not torch.equal(changed["table.weight"], before["table.weight"])
    assert history.objective == objective


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_seeded_training_is_reproducible(objective):
    graph = communities()
    encoder = init_encoder(small_config(dropout=0.3), graph, seed=0)
    first, history = quick(graph, encoder, objective=objective, seed=4, negatives=2)
    again, repeat = quick(graph, encoder, objective=objective, seed=4, negatives=2)
    other, _ = quick(graph, encoder, objective=objective, seed=5, negatives=2)

    assert history.losses == repeat.losses
    a, b, c = state(first), state(again), state(other)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_global_generator_is_left_alone():
    graph = communities()
    encoder = init_encoder(small_config(), graph, seed=0)
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    quick(graph, encoder, seed=1)
    assert torch.equal(torch.rand(3), expected)


def test_history_holds_plain_records():
    graph = communities()
    encoder = init_encoder(small_config(), graph, seed=0)
    calls: list[tuple[int, bool]] = []

    def callback(record, model):
        calls.append((record.epoch, model is not encoder))

    _, history = quick(
        graph,
        encoder,
        epochs=5,
        eval_every=2,
        levels=(3,),
        keep_embeddings=True,
        callback=callback,
        seed=0,
    )
    records = history.records
    assert [r.epoch for r in records] == [1, 2, 3, 4, 5]
    assert all(isinstance(r, EpochRecord) for r in records)
    assert [r.figures is not None for r in records] == [False, True, False, True, True]
    assert set(records[1].figures) == {"share@3", "hit@3", "num_queries"}
    assert history.figure("share@3")[0] is None
    assert history.initial is not None and "share@3" in history.initial
    elapsed = [r.elapsed for r in records]
    assert elapsed == sorted(elapsed) and elapsed[0] > 0
    assert len(history.embeddings) == 6
    assert history.embeddings[0].shape == (graph.num_nodes, 8)
    assert calls == [(epoch, True) for epoch in range(1, 6)]
    with pytest.raises(dataclasses.FrozenInstanceError):
        records[0].loss = 0.0  # type: ignore[misc]


def test_train_share_splits_by_seed_and_evaluates_the_test_side():
    graph = communities()
    encoder = init_encoder(small_config(), graph, seed=0)
    _, history = quick(graph, encoder, train_share=0.25, seed=3, epochs=1)
    train_mask, test_mask = history.train_mask, history.test_mask
    assert train_mask.sum() == 30 and test_mask.sum() == 90
    assert not (train_mask & test_mask).any()
    assert history.records[0].figures["num_queries"] == 90

    _, same = quick(graph, encoder, train_share=0.25, seed=3, epochs=1)
    _, other = quick(graph, encoder, train_share=0.25, seed=8, epochs=1)
    assert (same.train_mask == train_mask).all()
    assert (other.train_mask != train_mask).any()

    _, everything = quick(graph, encoder, epochs=1)
    assert everything.train_mask.all() and everything.test_mask.all()


def test_unlabelled_graph_trains_unsupervised_without_figures():
    graph = fastrec.set_labels(communities(), None)
    encoder = init_encoder(small_config(), graph, seed=0)
    _, history = quick(graph, encoder, objective="unsupervised", seed=0)
    assert history.initial is None
    assert all(r.figures is None for r in history.records)


def test_given_features_train_without_a_table():
    graph = communities()
    features = np.random.default_rng(0).normal(size=(graph.num_nodes, 5))
    encoder = init_encoder(small_config(), graph, features=features, seed=0)
    trained, history = quick(graph, encoder, seed=0)
    assert trained.table is None
    assert torch.equal(trained.given, encoder.given)
    assert np.isfinite(history.losses).all()


@pytest.mark.parametrize("aggr", AGGREGATIONS)
def test_forward_batch_matches_the_full_subgraph_forward(aggr):
    graph = communities()
    encoder = init_encoder(small_config(aggr=aggr), graph, seed=0)
    nodes = next(iter(node_loader(graph, (3, 5), batch_size=20, seed=0)))
    links = next(iter(link_loader(graph, (3, 5), batch_size=10, negatives=2, seed=0)))
    with torch.no_grad():
        for batch in (nodes, links):
            seeds = batch.num_sampled_nodes[0]
            expected = encoder(batch.n_id, batch.edge_index)[:seeds]
            got = forward_batch(encoder, batch)
            torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_a_step_updates_only_the_rows_of_its_batch():
    graph = communities(split=True)
    half = graph.num_nodes // 2
    encoder = init_encoder(small_config(), graph, seed=0)
    model = copy.deepcopy(encoder)
    step = _Step(graph, model, "supervised", torch.device("cpu"), 0.05, None, None, 0.5)
    first = next(iter(node_loader(graph, (3, 3), torch.arange(0, 10), batch_size=10)))
    second = next(
        iter(node_loader(graph, (3, 3), torch.arange(half, half + 10), batch_size=10))
    )
    assert first.n_id.max() < half <= second.n_id.min()  # two components

    with _sparse_table(model):
        model.train()
        step(first)
        assert model.table.weight.grad.is_sparse
        after_first = model.table.weight.detach().clone()
        step(second)
    after_second = model.table.weight.detach()

    initial = encoder.table.weight.detach()
    untouched = np.setdiff1d(np.arange(graph.num_nodes), first.n_id.numpy())
    assert torch.equal(after_first[untouched], initial[untouched])
    assert not torch.equal(after_first[first.n_id], initial[first.n_id])
    # Adam's momentum would keep moving the first batch's rows; SparseAdam not.
    assert torch.equal(after_second[:half], after_first[:half])
    assert not torch.equal(after_second[second.n_id], after_first[second.n_id])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(objective="semi"), "objective must be one of"),
        (dict(epochs=0), "epochs must be a positive int"),
        (dict(batch_size=0), "batch_size must be a positive int"),
        (dict(lr=0.0), "lr must be positive"),
        (dict(train_share=1.5), r"train_share must be in \(0, 1\]"),
        (dict(fanouts=(3,)), "one hop per layer"),
        (dict(eval_every=-1), "eval_every must be 0 or more"),
    ],
)
def test_bad_arguments(kwargs, message):
    graph = communities()
    encoder = init_encoder(small_config(), graph, seed=0)
    with pytest.raises(ValueError, match=message):
        quick(graph, encoder, **kwargs)


def test_supervised_needs_labels():
    graph = fastrec.set_labels(communities(), None)
    encoder = init_encoder(small_config(), graph, seed=0)
    with pytest.raises(ValueError, match="needs labelled"):
        quick(graph, encoder)


def test_encoder_of_another_graph_is_refused():
    encoder = init_encoder(small_config(), communities(90), seed=0)
    with pytest.raises(ValueError, match="built for 90 nodes"):
        quick(communities(), encoder)


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_train_on_cuda(objective):
    graph = communities()
    encoder = init_encoder(small_config(), graph, seed=0)
    trained, history = quick(graph, encoder, objective=objective, device="cuda", seed=0)
    assert all(p.device.type == "cpu" for p in trained.parameters())
    assert np.isfinite(history.losses).all()
    assert history.records[-1].figures is not None


CORA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "planetoid"


@pytest.mark.slow
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_objectives_improve_cora(objective):
    if not (CORA / "Cora").is_dir():
        pytest.skip(f"no Cora at {CORA}")
    nodes, src, dst, labels = fastrec.planetoid(CORA, "Cora")
    graph = fastrec.build_graph(nodes, src, dst, labels=labels)
    encoder = init_encoder(EncoderConfig(embedding_dim=32), graph, seed=0)
    _, history = train(
        graph,
        encoder,
        objective=objective,
        epochs=4,
        batch_size=512,
        lr=0.01,
        negatives=5,
        fanouts=(10, 10),
        train_share=0.5,
        levels=(10,),
        eval_every=4,
        seed=0,
        progress=False,
    )
    assert history.losses[-1] < history.losses[0]
    assert history.records[-1].figures["share@10"] > history.initial["share@10"] + 0.05
