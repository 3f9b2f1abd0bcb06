from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import fastrec
from fastrec.errors import UnknownNodeError
from fastrec.graph import (
    _csr_by_sort,
    _lookup,
    csr_by_destination,
    edge_list,
    node_positions,
)


def dense_in_adjacency(graph: fastrec.Graph) -> np.ndarray:
    """counts[v, u]: number of edges u -> v, read off the CSR the slow way."""
    counts = np.zeros((graph.num_nodes, graph.num_nodes), dtype=np.int64)
    for v in range(graph.num_nodes):
        for u in graph.indices[graph.indptr[v] : graph.indptr[v + 1]]:
            counts[v, u] += 1
    return counts


def edge_counts(num_nodes, src, dst) -> np.ndarray:
    counts = np.zeros((num_nodes, num_nodes), dtype=np.int64)
    for u, v in zip(src, dst, strict=True):
        counts[v, u] += 1
    return counts


@pytest.mark.parametrize("seed", range(3))
def test_csr_holds_every_edge_once_per_occurrence(seed):
    rng = np.random.default_rng(seed)
    src, dst = rng.integers(0, 40, 500), rng.integers(0, 40, 500)
    graph = fastrec.build_graph(np.arange(40), src, dst)

    assert graph.indptr.dtype == np.int64 and graph.indices.dtype == np.int32
    assert graph.indptr[0] == 0 and graph.indptr[-1] == 500
    np.testing.assert_array_equal(dense_in_adjacency(graph), edge_counts(40, src, dst))


def test_counting_sort_matches_stable_sort_reference():
    rng = np.random.default_rng(1)
    src = rng.integers(0, 1000, 20000).astype(np.int32)
    dst = rng.integers(0, 1000, 20000).astype(np.int32)
    fast = csr_by_destination(1000, src, dst)
    slow = _csr_by_sort(1000, src, dst)
    np.testing.assert_array_equal(fast[0], slow[0])
    np.testing.assert_array_equal(fast[1], slow[1])  # same order within a node


@pytest.mark.parametrize(
    "nodes",
    [
        [10, 20, 30, 40],
        ["a", "b", "c", "d"],
        [1, "1", "x", 7],
        np.array([5, 3, 1_000_000_000_000, -2]),
    ],
    ids=["ints", "strings", "mixed", "sparse-ints"],
)
def test_ids_are_kept_as_given(nodes):
    nodes = list(nodes)
    graph = fastrec.build_graph(nodes, [nodes[0], nodes[2]], [nodes[1], nodes[3]])

    assert graph.ids.tolist() == [n.item() if hasattr(n, "item") else n for n in nodes]
    assert [type(i) for i in graph.ids.tolist()] == [
        type(n.item() if hasattr(n, "item") else n) for n in nodes
    ]
    src, dst = edge_list(graph)
    assert sorted(zip(src.tolist(), dst.tolist(), strict=True)) == [(0, 1), (2, 3)]


def test_mixed_ids_keep_int_and_string_apart():
    graph = fastrec.build_graph([1, "1"], [1], ["1"])
    np.testing.assert_array_equal(node_positions(graph, ["1", 1]), [1, 0])
    assert graph.indices.tolist() == [0] and graph.indptr.tolist() == [0, 0, 1]


def test_dense_and_hashed_lookup_agree():
    import pandas as pd

    rng = np.random.default_rng(0)
    ids = rng.permutation(5000).astype(np.int64) * 3 + 7
    values = rng.integers(-10, 16000, 2000)
    dense = _lookup(pd.Index(ids), values)
    hashed = pd.Index(ids).get_indexer(values)
    np.testing.assert_array_equal(dense, hashed)


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.uint32, np.int64])
def test_endpoint_arrays_of_any_integer_dtype(dtype):
    nodes = np.array([-3, 5, 40000, 7])
    src = np.array([5, 7, 7], dtype=dtype)
    dst = np.array([7, 5, 5], dtype=dtype)
    graph = fastrec.build_graph(nodes, src, dst)
    assert graph.indptr.tolist() == [0, 0, 2, 2, 3]
    with pytest.raises(UnknownNodeError, match=r"\[6\]"):
        fastrec.build_graph(nodes, src, np.array([7, 6, 5], dtype=dtype))


def test_undirected_adds_reverse_edges_but_keeps_self_loops_single():
    graph = fastrec.build_graph([0, 1, 2], [0, 1], [1, 1], undirected=True)
    np.testing.assert_array_equal(
        dense_in_adjacency(graph), edge_counts(3, [0, 1, 1], [1, 1, 0])
    )


def test_self_loops_gives_each_node_exactly_one():
    graph = fastrec.build_graph([0, 1, 2], [0, 0, 1], [0, 1, 2], self_loops=True)
    counts = dense_in_adjacency(graph)
    np.testing.assert_array_equal(np.diag(counts), [1, 1, 1])
    assert counts.sum() == 5  # 0->1, 1->2 and three loops


def test_duplicate_nodes_are_an_error_naming_them():
    with pytest.raises(ValueError, match=r"2 ids occur more than once: \['a', 3\]"):
        fastrec.build_graph(["a", "b", "a", 3, 3], [], [])


def test_skip_duplicates_keeps_the_first_with_its_label():
    graph = fastrec.build_graph(
        ["a", "b", "a"], ["a"], ["b"], labels=["x", "y", "z"], skip_duplicates=True
    )
    assert graph.ids.tolist() == ["a", "b"]
    assert fastrec.graph.decode_labels(graph, np.arange(2)) == ["x", "y"]


def test_unknown_edge_endpoints_are_named():
    with pytest.raises(UnknownNodeError, match=r"2 unknown edge endpoints: \['q', 9\]"):
        fastrec.build_graph(["a", "b"], ["a", "q"], [9, "b"])


def test_many_unknown_endpoints_name_the_first_few():
    with pytest.raises(UnknownNodeError, match=r"and 95 more") as caught:
        fastrec.build_graph([0], np.arange(1, 101), np.zeros(100, dtype=int))
    assert len(caught.value.ids) == 100


def test_mismatched_edge_arrays():
    with pytest.raises(ValueError, match="got 2 sources and 1 destinations"):
        fastrec.build_graph([0, 1], [0, 1], [1])


def test_labels_of_any_type_with_unknowns():
    graph = fastrec.build_graph(
        [0, 1, 2, 3, 4], [], [], labels=["cat", None, "dog", float("nan"), "cat"]
    )
    assert graph.classes.tolist() == ["cat", "dog"]
    assert graph.labels.tolist() == [0, -1, 1, -1, 0]
    ints = fastrec.build_graph([0, 1, 2], [], [], labels=[7, 3, 7])
    assert ints.classes.tolist() == [3, 7] and ints.classes.dtype == np.int64


def test_labels_of_the_wrong_length():
    with pytest.raises(ValueError, match=r"one label per node \(3\), got 2"):
        fastrec.build_graph([0, 1, 2], [], [], labels=[1, 2])


def test_excluded_flags_are_checked():
    with pytest.raises(ValueError, match="expected booleans"):
        fastrec.build_graph([0, 1], [], [], excluded=["yes", "no"])
    graph = fastrec.build_graph([0, 1], [], [], excluded=[0, 1])
    assert graph.excluded.tolist() == [False, True]


def test_graph_is_frozen():
    graph = fastrec.build_graph([0, 1], [0], [1])
    with pytest.raises(dataclasses.FrozenInstanceError):
        graph.ids = np.array([5, 6])  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        graph.indices[0] = 1


def test_add_nodes_returns_a_new_graph():
    graph = fastrec.build_graph(["a", "b"], ["a"], ["b"], labels=["x", "y"])
    bigger = fastrec.add_nodes(graph, ["c", 4], labels=["z", "x"], excluded=[1, 0])

    assert graph.num_nodes == 2 and bigger.num_nodes == 4
    assert bigger.ids.tolist() == ["a", "b", "c", 4]
    assert fastrec.graph.decode_labels(bigger, np.arange(4)) == ["x", "y", "z", "x"]
    assert bigger.excluded.tolist() == [False, False, True, False]
    assert bigger.indptr.tolist() == [0, 0, 1, 1, 1]
    with pytest.raises(ValueError, match=r"already in the graph: \['a'\]"):
        fastrec.add_nodes(graph, ["a"])


def test_add_edges_returns_a_new_graph():
    graph = fastrec.build_graph(["a", "b", "c"], ["a"], ["b"])
    more = fastrec.add_edges(graph, ["c"], ["b"], undirected=True)

    assert graph.num_edges == 1 and more.num_edges == 3
    src, dst = edge_list(more)
    assert sorted(zip(src.tolist(), dst.tolist(), strict=True)) == [
        (0, 1),
        (1, 2),
        (2, 1),
    ]
    with pytest.raises(UnknownNodeError, match="'zz'"):
        fastrec.add_edges(graph, ["zz"], ["a"])


def test_set_labels_by_mapping_and_by_sequence():
    graph = fastrec.build_graph([1, 2, 3], [], [], labels=["p", None, "q"])
    updated = fastrec.set_labels(graph, {2: "q", 3: None})
    assert fastrec.graph.decode_labels(updated, np.arange(3)) == ["p", "q", None]
    assert fastrec.graph.decode_labels(graph, np.arange(3)) == ["p", None, "q"]
    replaced = fastrec.set_labels(graph, [5, 5, 6])
    assert replaced.labels.tolist() == [0, 0, 1]
    with pytest.raises(UnknownNodeError):
        fastrec.set_labels(graph, {99: "p"})


def test_set_excluded_by_mapping():
    graph = fastrec.build_graph(["a", "b"], [], [])
    flagged = fastrec.set_excluded(graph, {"b": True})
    assert flagged.excluded.tolist() == [False, True]
    assert graph.excluded.tolist() == [False, False]


def test_node_positions_names_unknown_ids():
    graph = fastrec.build_graph(["a", "b"], [], [])
    np.testing.assert_array_equal(node_positions(graph, ["b", "a"]), [1, 0])
    with pytest.raises(UnknownNodeError, match=r"\['c'\]"):
        node_positions(graph, ["a", "c"])


def test_string_id_sequences_are_not_mistaken_for_ids():
    with pytest.raises(TypeError, match="expected a sequence of ids"):
        fastrec.build_graph("abc", [], [])


def test_arrow_string_lookup_agrees_with_hashing():
    import pandas as pd

    from fastrec.graph import _arrow_lookup

    rng = np.random.default_rng(0)
    ids = np.array([f"n{i}" for i in rng.permutation(3000)], dtype=object)
    values = np.array([f"n{i}" for i in rng.integers(-50, 3050, 9000)], dtype=object)
    index = pd.Index(ids)
    np.testing.assert_array_equal(
        _arrow_lookup(index, values), index.get_indexer(values)
    )
    mixed = np.array(["n1", 7], dtype=object)
    assert _arrow_lookup(index, mixed) is None  # not all strings: pandas hashes
