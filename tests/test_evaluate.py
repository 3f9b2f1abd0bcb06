from __future__ import annotations

import numpy as np
import pytest

import fastrec


def brute_force_figures(embeddings, labels, excluded, k):
    """Loop over queries, rank every other non-excluded node by cosine distance."""
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    shares, hits = [], []
    for q in range(len(labels)):
        if labels[q] is None or excluded[q]:
            continue
        candidates = [v for v in range(len(labels)) if v != q and not excluded[v]]
        distance = {v: 1 - unit[q] @ unit[v] for v in candidates}
        nearest = sorted(candidates, key=lambda v: (distance[v], v))[:k]
        same = [labels[v] == labels[q] for v in nearest]
        shares.append(sum(same) / k)
        hits.append(any(same))
    return np.mean(shares), np.mean(hits), len(shares)


@pytest.mark.parametrize("seed", range(3))
def test_evaluate_agrees_with_brute_force(seed):
    rng = np.random.default_rng(seed)
    num = 120
    embeddings = rng.normal(size=(num, 6)).astype(np.float32)
    labels = list(rng.choice(["a", "b", "c"], num))
    for i in rng.choice(num, 15, replace=False):
        labels[i] = None
    excluded = rng.random(num) < 0.1
    graph = fastrec.build_graph(
        np.arange(num), [], [], labels=labels, excluded=excluded
    )

    figures = fastrec.evaluate(graph, embeddings, levels=(5, 1))

    for k in (5, 1):
        share, hit, count = brute_force_figures(embeddings, labels, excluded, k)
        assert figures[f"share@{k}"] == pytest.approx(share, abs=1e-9)
        assert figures[f"hit@{k}"] == pytest.approx(hit, abs=1e-9)
        assert figures["num_queries"] == count


def test_the_query_is_excluded_by_identity_not_rank():
    # Each node has an identical twin with the other label, so faiss may rank
    # the twin before the query itself; the twin must still count.
    embeddings = np.repeat(np.eye(4, dtype=np.float32), 2, axis=0)
    graph = fastrec.build_graph(np.arange(8), [], [], labels=["x", "y"] * 4)
    figures = fastrec.evaluate(graph, embeddings, levels=(1,))
    assert figures["share@1"] == 0.0 and figures["hit@1"] == 0.0


def test_test_only_restricts_the_queries():
    embeddings = np.eye(6, dtype=np.float32)
    graph = fastrec.build_graph(np.arange(6), [], [], labels=[0, 0, 0, 1, 1, 1])
    mask = np.array([True, True, False, False, False, False])
    figures = fastrec.evaluate(
        graph, embeddings, levels=(2,), test_only=True, test_mask=mask
    )
    assert figures["num_queries"] == 2


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"levels": (0,)}, "levels must be positive ints"),
        ({"test_only": True}, "needs test_mask"),
        ({"test_only": True, "test_mask": np.ones(3)}, "test_mask must be bool"),
    ],
)
def test_bad_evaluation_arguments(kwargs, message):
    graph = fastrec.build_graph(np.arange(4), [], [], labels=[0, 1, 0, 1])
    with pytest.raises(ValueError, match=message):
        fastrec.evaluate(graph, np.eye(4), **kwargs)


def test_no_labelled_queries_is_an_error():
    graph = fastrec.build_graph(np.arange(4), [], [])
    with pytest.raises(ValueError, match="needs labelled, non-excluded nodes"):
        fastrec.evaluate(graph, np.eye(4))
