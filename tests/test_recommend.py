from __future__ import annotations

import numpy as np
import pytest

import fastrec
from fastrec.errors import UnknownNodeError


def tiny(ids):
    embeddings = np.array(
        [[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [0.7, 0.7]], dtype=np.float32
    )
    graph = fastrec.build_graph(ids, [], [], labels=["p", "p", "q", "q", None])
    return graph, embeddings, fastrec.build_index(embeddings, graph)


@pytest.mark.parametrize(
    "ids", [[0, 1, 2, 3, 4], ["a", "b", "c", "d", "e"], [0, "b", 2, "d", "e"]]
)
def test_query_answers_in_ids_keyed_as_given(ids):
    graph, embeddings, index = tiny(ids)
    answers = fastrec.query(graph, embeddings, index, [ids[0], ids[2]], 2, labels=True)

    assert list(answers) == [ids[0], ids[2]]
    assert answers[ids[0]]["neighbors"] == [ids[1], ids[4]]
    assert answers[ids[2]]["neighbors"] == [ids[3], ids[4]]
    assert answers[ids[0]]["labels"] == ["p", None]
    distances = answers[ids[0]]["distances"]
    assert distances == sorted(distances) and distances[0] == pytest.approx(
        1 - 0.9 / np.hypot(0.9, 0.1), abs=1e-6
    )
    assert [type(i) for i in answers[ids[0]]["neighbors"]] == [
        type(ids[1]),
        type(ids[4]),
    ]


def test_exclude_self_off_returns_the_query_first():
    graph, embeddings, index = tiny([0, 1, 2, 3, 4])
    answers = fastrec.query(graph, embeddings, index, [0], 2, exclude_self=False)
    assert answers[0]["neighbors"] == [0, 1]
    assert "labels" not in answers[0]


def test_numpy_query_ids_become_plain_keys():
    graph, embeddings, index = tiny([0, 1, 2, 3, 4])
    answers = fastrec.query(graph, embeddings, index, np.array([3]), 1)
    assert list(answers) == [3] and type(next(iter(answers))) is int


def test_unknown_query_ids_and_bad_k():
    graph, embeddings, index = tiny(["a", "b", "c", "d", "e"])
    with pytest.raises(UnknownNodeError, match=r"\['zz'\]"):
        fastrec.query(graph, embeddings, index, ["a", "zz"], 2)
    with pytest.raises(ValueError, match="k must be a positive int"):
        fastrec.query(graph, embeddings, index, ["a"], 0)


def test_unseen_nodes_use_the_mean_of_their_neighbours():
    graph, embeddings, index = tiny(["a", "b", "c", "d", "e"])
    answers = fastrec.query_unseen(
        graph, embeddings, index, ["new1", "new2"], [["a", "b"], ["c"]], 2
    )
    assert answers["new1"]["neighbors"] == ["a", "b"]  # (0.95, 0.05) is nearer a
    assert answers["new2"]["neighbors"][0] == "c"
    mean = fastrec.embed_unseen(graph, embeddings, [["a", "c"]])
    np.testing.assert_allclose(mean, [[0.5, 0.5]])


def test_unseen_errors():
    graph, embeddings, index = tiny(["a", "b", "c", "d", "e"])
    with pytest.raises(ValueError, match="match in length"):
        fastrec.query_unseen(graph, embeddings, index, ["x"], [["a"], ["b"]], 1)
    with pytest.raises(ValueError, match=r"neighbors\[0\] is empty"):
        fastrec.query_unseen(graph, embeddings, index, ["x"], [[]], 1)
    with pytest.raises(UnknownNodeError, match=r"\['q'\]"):
        fastrec.query_unseen(graph, embeddings, index, ["x"], [["a", "q"]], 1)
