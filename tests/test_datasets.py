from __future__ import annotations

import pickle

import numpy as np
import pytest

import fastrec
from fastrec.datasets import symmetrize


def test_karate_club():
    nodes, src, dst, labels = fastrec.karate_club()
    graph = fastrec.build_graph(nodes, src, dst, labels=labels)
    assert (graph.num_nodes, graph.num_edges) == (34, 156)
    assert graph.classes.tolist() == ["Mr. Hi", "Officer"]
    assert labels[0] == "Mr. Hi" and labels[33] == "Officer"


def test_untrained_defaults_place_0_and_33_among_their_faction():
    nodes, src, dst, labels = fastrec.karate_club()
    graph = fastrec.build_graph(nodes, src, dst, labels=labels)
    encoder = fastrec.init_encoder(fastrec.EncoderConfig(), graph, seed=0)
    embeddings = fastrec.embed(graph, encoder, progress=False)
    index = fastrec.build_index(embeddings, graph)
    answers = fastrec.query(graph, embeddings, index, [0, 33], 5, labels=True)
    assert answers[0]["labels"] == ["Mr. Hi"] * 5
    assert answers[33]["labels"] == ["Officer"] * 5


def test_symmetrize_lists_each_direction_once():
    src, dst = symmetrize(np.array([0, 1, 2, 2]), np.array([1, 0, 2, 3]))
    assert sorted(zip(src.tolist(), dst.tolist(), strict=True)) == [
        (0, 1),
        (1, 0),
        (2, 3),
        (3, 2),
    ]


def test_cora(datasets_dir):
    nodes, src, dst, labels = fastrec.planetoid(datasets_dir / "planetoid", "Cora")
    graph = fastrec.build_graph(nodes, src, dst, labels=labels)
    # The figures PyG's Planetoid("Cora") reports.
    assert (graph.num_nodes, graph.num_edges, graph.num_classes) == (2708, 10556, 7)
    assert np.bincount(graph.labels).tolist() == [351, 217, 418, 818, 426, 298, 180]
    features = fastrec.planetoid_features(datasets_dir / "planetoid", "Cora")
    assert features.shape == (2708, 1433) and set(np.unique(features)) == {0.0, 1.0}


def test_cora_untrained_share_at_10(datasets_dir):
    nodes, src, dst, labels = fastrec.planetoid(datasets_dir / "planetoid", "Cora")
    graph = fastrec.build_graph(nodes, src, dst, labels=labels)
    encoder = fastrec.init_encoder(fastrec.EncoderConfig(), graph, seed=0)
    embeddings = fastrec.embed(graph, encoder, progress=False)
    figures = fastrec.evaluate(graph, embeddings, levels=(10,))
    assert figures["share@10"] >= 0.60, figures


def test_facebook(datasets_dir):
    nodes, src, dst, labels = fastrec.musae(datasets_dir / "facebook")
    graph = fastrec.build_graph(nodes, src, dst, labels=labels)
    # 171,002 rows less 179 self loops, both directions.
    assert (graph.num_nodes, graph.num_edges, graph.num_classes) == (
        22470,
        2 * 170823,
        4,
    )


def test_musae_names_a_missing_column(tmp_path):
    (tmp_path / "edges.csv").write_text("a,b\n0,1\n")
    (tmp_path / "target.csv").write_text("id,target\n0,1\n1,0\n")
    with pytest.raises(ValueError, match=r"missing columns \['id_1', 'id_2'\]"):
        fastrec.musae(tmp_path)


class Boom:
    def __reduce__(self):
        return (print, ("code ran",))


def test_planetoid_reader_refuses_pickled_code(tmp_path):
    raw = tmp_path / "Evil" / "raw"
    raw.mkdir(parents=True)
    for part in ("allx", "ally", "tx", "ty", "graph"):
        (raw / f"ind.evil.{part}").write_bytes(pickle.dumps(Boom()))
    (raw / "ind.evil.test.index").write_text("0\n")
    with pytest.raises(ValueError, match="refusing to load builtins.print"):
        fastrec.planetoid(tmp_path, "Evil")
