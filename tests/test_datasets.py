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


@pytest.mark.parametrize("homophily", [0.2, 0.75, 1.0])
def test_synthetic_communities_shape(homophily):
    nodes, src, dst, labels = fastrec.synthetic_communities(
        5000, 200_001, 12, homophily=homophily, degree_spread=1.0, seed=3,
        chunk_size=30_000,
    )
    assert len(nodes) == 5000 and len(src) == len(dst) == 200_001
    assert src.dtype == np.int32 and src.min() >= 0 and src.max() < 5000
    assert sorted(np.unique(labels).tolist()) == list(range(12))
    assert (labels[src] == labels[dst]).mean() == pytest.approx(homophily, abs=0.01)
    # Edges come in reverse pairs, so the graph is symmetric up to the odd one.
    half = len(src) // 2
    np.testing.assert_array_equal(src[:half], dst[100_001 : 100_001 + half])
    sizes = np.bincount(labels)
    assert sizes.max() > 3 * sizes.min()  # skewed class sizes


def test_synthetic_degrees_are_heavy_tailed_and_seeded():
    a = fastrec.synthetic_communities(20_000, 400_000, 5, degree_spread=1.0, seed=1)
    b = fastrec.synthetic_communities(20_000, 400_000, 5, degree_spread=1.0, seed=1)
    flat = fastrec.synthetic_communities(20_000, 400_000, 5, degree_spread=0.0,
                                         seed=1)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    spread = np.bincount(a[2], minlength=20_000)
    even = np.bincount(flat[2], minlength=20_000)
    assert spread.max() > 5 * spread.mean() and even.max() < 2 * even.mean()


def test_synthetic_arguments_are_checked():
    with pytest.raises(ValueError, match="num_classes must be in"):
        fastrec.synthetic_communities(10, 10, 11)
    with pytest.raises(ValueError, match="homophily must be in"):
        fastrec.synthetic_communities(10, 10, 2, homophily=1.5)


def write_reddit_layout(root, num_nodes=50, seed=0):
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    raw = root / "raw"
    raw.mkdir(parents=True)
    rows, cols = rng.integers(0, num_nodes, 300), rng.integers(0, num_nodes, 300)
    adjacency = sp.coo_matrix((np.ones(300), (rows, cols)),
                              shape=(num_nodes, num_nodes))
    sp.save_npz(raw / "reddit_graph.npz", adjacency)
    labels = rng.integers(0, 4, num_nodes)
    np.savez(raw / "reddit_data.npz", feature=rng.normal(size=(num_nodes, 6)),
             label=labels, node_types=rng.integers(1, 4, num_nodes))
    return rows, cols, labels


def test_reddit_reads_pyg_raw_files(tmp_path):
    rows, cols, labels = write_reddit_layout(tmp_path)
    nodes, src, dst, got = fastrec.reddit(tmp_path)
    np.testing.assert_array_equal(nodes, np.arange(50))
    np.testing.assert_array_equal(got, labels)
    assert sorted(zip(src.tolist(), dst.tolist(), strict=True)) == sorted(
        zip(rows.tolist(), cols.tolist(), strict=True)
    )
    assert fastrec.reddit_features(tmp_path).shape == (50, 6)
    graph = fastrec.build_graph(nodes, src, dst, labels=got)
    assert graph.num_edges == 300


def test_reddit_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="reddit_data.npz not found"):
        fastrec.reddit(tmp_path)
    write_reddit_layout(tmp_path)
    (tmp_path / "raw" / "reddit_graph.npz").write_bytes(b"truncated")
    with pytest.raises(ValueError, match="reddit_graph.npz: not a readable"):
        fastrec.reddit(tmp_path)
