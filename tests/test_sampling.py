from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from scipy.stats import chi2
from torch_geometric.sampler import (
    EdgeSamplerInput,
    NegativeSampling,
    NodeSamplerInput,
)

import fastrec
from fastrec.graph import csr_tensors, edge_list, in_degrees
from fastrec.model import EncoderConfig, init_encoder
from fastrec.sampling import CSRSampler, link_loader, node_loader, sample_neighbors
from tests.conftest import random_graph


def chi2_bound(dof: int) -> float:
    """The chi-square value a correct sampler exceeds once in 1000 seeds."""
    return float(chi2.ppf(0.999, dof))


def dense_counts(graph: fastrec.Graph) -> np.ndarray:
    """The obvious reference: ``[dst, src]`` edge multiplicities."""
    counts = np.zeros((graph.num_nodes, graph.num_nodes), dtype=np.int64)
    src, dst = edge_list(graph)
    np.add.at(counts, (dst, src), 1)
    return counts


def star(num_leaves: int, *, both_ways: bool = False) -> fastrec.Graph:
    """Node 0 with an in-edge from each of nodes 1..num_leaves."""
    leaves = np.arange(1, num_leaves + 1)
    return fastrec.build_graph(
        np.arange(num_leaves + 1),
        leaves,
        np.zeros(num_leaves, np.int64),
        undirected=both_ways,
    )


def node_input(seeds) -> NodeSamplerInput:
    return NodeSamplerInput(None, torch.as_tensor(seeds, dtype=torch.int64))


def chi_square(observed: np.ndarray, expected: np.ndarray) -> float:
    return float(((observed - expected) ** 2 / expected).sum())


@pytest.mark.parametrize("replace", [False, True])
@pytest.mark.parametrize("fanouts", [(3, 2), (-1, 4), (5, -1, 1)])
def test_sampled_edges_exist_and_counts_respect_fanouts(replace, fanouts):
    graph = random_graph(60, 400, seed=1)
    reference = dense_counts(graph)
    degree = in_degrees(graph)
    sampler = CSRSampler(graph, fanouts, replace=replace, seed=0)
    out = sampler.sample_from_nodes(node_input([0, 3, 7, 11, 58]))

    node, row, col = out.node.numpy(), out.row.numpy(), out.col.numpy()
    src, dst = node[row], node[col]
    assert (reference[dst, src] > 0).all()
    indices = graph.indices[out.edge.numpy()]
    assert (indices == src).all()  # edge holds the CSR positions
    assert (np.searchsorted(graph.indptr, out.edge.numpy(), "right") - 1 == dst).all()
    assert len(np.unique(node)) == len(node)
    assert out.num_sampled_nodes[0] == 5 and sum(out.num_sampled_nodes) == len(node)

    hop_of_edge = np.repeat(np.arange(len(fanouts)), out.num_sampled_edges)
    firsts = np.cumsum([0, *out.num_sampled_nodes])
    for hop, fanout in enumerate(fanouts):
        frontier = np.arange(firsts[hop], firsts[hop + 1])
        counts = np.bincount(col[hop_of_edge == hop], minlength=len(node))[frontier]
        deg = degree[node[frontier]]
        if fanout == -1:
            expected = deg
        elif replace:
            expected = np.where(deg > 0, fanout, 0)
        else:
            expected = np.minimum(deg, fanout)
        assert (counts == expected).all()
        # a hop's destinations are the nodes first reached at the hop before
        assert set(col[hop_of_edge == hop]) <= set(frontier)


def test_full_fanout_returns_exactly_the_in_edges():
    graph = random_graph(40, 200, seed=2)
    indptr, _ = csr_tensors(graph)
    nodes = torch.tensor([4, 0, 33, 20])
    positions, counts = sample_neighbors(indptr, nodes, -1)
    expected = np.concatenate(
        [np.arange(graph.indptr[v], graph.indptr[v + 1]) for v in nodes.tolist()]
    )
    assert positions.tolist() == expected.tolist()
    assert counts.tolist() == in_degrees(graph)[nodes.numpy()].tolist()


@pytest.mark.parametrize("fanout", [3, 9, 70])  # 70 takes the sorting path
def test_without_replacement_never_repeats(fanout):
    graph = star(100)
    indptr, _ = csr_tensors(graph)
    nodes = torch.zeros(300, dtype=torch.int64)  # each copy draws on its own
    gen = torch.Generator().manual_seed(0)
    positions, counts = sample_neighbors(indptr, nodes, fanout, generator=gen)
    assert (counts == fanout).all()
    per_copy = positions.view(300, fanout)
    assert all(len(set(row)) == fanout for row in per_copy.tolist())


@pytest.mark.parametrize(
    ("num_leaves", "fanout", "replace"),
    [(10, 3, False), (10, 3, True), (20, 19, False), (100, 70, False)],
)
def test_frequencies_are_uniform(num_leaves, fanout, replace):
    graph = star(num_leaves)
    indptr, _ = csr_tensors(graph)
    copies = 3000
    gen = torch.Generator().manual_seed(123)
    positions, _ = sample_neighbors(
        indptr,
        torch.zeros(copies, dtype=torch.int64),
        fanout,
        replace=replace,
        generator=gen,
    )
    observed = np.bincount(positions.numpy(), minlength=num_leaves)
    expected = np.full(num_leaves, copies * fanout / num_leaves)
    assert chi_square(observed, expected) < chi2_bound(num_leaves - 1)


def test_subsets_without_replacement_are_uniform():
    # Floyd's algorithm must make every 2-subset of 5 equally likely, not
    # only every element.
    graph = star(5)
    indptr, _ = csr_tensors(graph)
    gen = torch.Generator().manual_seed(7)
    positions, _ = sample_neighbors(
        indptr, torch.zeros(5000, dtype=torch.int64), 2, generator=gen
    )
    pairs = positions.view(-1, 2).sort(dim=1).values.numpy()
    _, observed = np.unique(pairs[:, 0] * 10 + pairs[:, 1], return_counts=True)
    assert len(observed) == 10
    assert chi_square(observed, np.full(10, 500.0)) < chi2_bound(9)


def test_same_seed_gives_the_same_batch():
    graph = random_graph(80, 500, seed=3)
    seeds = node_input([1, 2, 3, 50])

    def draw(seed, epoch=0):
        sampler = CSRSampler(graph, (4, 3), seed=seed)
        sampler.set_epoch(epoch)
        out = sampler.sample_from_nodes(seeds)
        return out.node.tolist(), out.row.tolist(), out.col.tolist()

    assert draw(5) == draw(5)
    assert draw(5) != draw(6)
    assert draw(5, epoch=1) != draw(5, epoch=0)


def test_unseeded_sampler_follows_torch_generator():
    graph = random_graph(80, 500, seed=3)
    sampler = CSRSampler(graph, (4, 3))
    torch.manual_seed(0)
    first = sampler.sample_from_nodes(node_input([1, 2])).node.tolist()
    torch.manual_seed(0)
    assert sampler.sample_from_nodes(node_input([1, 2])).node.tolist() == first


def test_sampler_pickles_and_stays_reproducible():
    graph = random_graph(50, 300, seed=4)
    sampler = CSRSampler(graph, (3, 3), seed=9)
    before = sampler.sample_from_nodes(node_input([0, 1])).node.tolist()
    copy = pickle.loads(pickle.dumps(sampler))
    assert copy.sample_from_nodes(node_input([0, 1])).node.tolist() == before


def test_repeated_seeds_keep_their_slots():
    graph = random_graph(50, 300, seed=4)
    out = CSRSampler(graph, (3,), seed=1).sample_from_nodes(node_input([5, 5, 6]))
    assert out.node[:3].tolist() == [5, 5, 6]
    assert out.num_sampled_nodes[0] == 3


def batches_as_lists(loader) -> list[tuple]:
    return [(b.n_id.tolist(), b.edge_index.tolist(), b.e_id.tolist()) for b in loader]


@pytest.mark.parametrize("num_workers", [0, 2])
def test_node_loader(num_workers):
    graph = random_graph(60, 300, seed=5)
    seeds = torch.arange(0, 60, 2)
    loader = node_loader(
        graph, (3, 2), seeds, batch_size=8, seed=1, num_workers=num_workers
    )
    batches = list(loader)
    assert [b.batch_size for b in batches] == [8, 8, 8, 6]
    assert torch.cat([b.n_id[: b.batch_size] for b in batches]).tolist() == (
        seeds.tolist()
    )
    reference = dense_counts(graph)
    encoder = init_encoder(EncoderConfig(embedding_dim=4), graph, seed=0)
    for batch in batches:
        src, dst = batch.n_id[batch.edge_index]
        assert (reference[dst.numpy(), src.numpy()] > 0).all()
        with torch.no_grad():
            out = encoder(batch.n_id, batch.edge_index)  # feeds SAGEConv as is
        assert out.shape == (batch.num_nodes, 4)

    serial = node_loader(graph, (3, 2), seeds, batch_size=8, seed=1)
    assert batches_as_lists(batches) == batches_as_lists(serial)


def test_node_loader_shuffles_reproducibly():
    graph = random_graph(60, 300, seed=5)

    def order(seed):
        loader = node_loader(graph, (2,), batch_size=16, shuffle=True, seed=seed)
        return torch.cat([b.n_id[: b.batch_size] for b in loader]).tolist()

    assert order(3) == order(3)
    assert sorted(order(3)) == list(range(60))
    assert order(3) != order(4)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_link_loader(num_workers):
    graph = random_graph(60, 300, seed=6, undirected=True)
    src, dst = edge_list(graph)
    loader = link_loader(
        graph, (4, 3), negatives=3, batch_size=32, seed=2, num_workers=num_workers
    )
    batches = list(loader)
    assert sum(len(b.src_index) for b in batches) == graph.num_edges

    reference = dense_counts(graph)
    seen = 0
    for batch in batches:
        n_id = batch.n_id
        size = len(batch.src_index)
        assert n_id[batch.src_index].tolist() == src[seen : seen + size].tolist()
        assert n_id[batch.dst_pos_index].tolist() == dst[seen : seen + size].tolist()
        assert batch.dst_neg_index.shape == (size, 3)
        seeds = batch.num_sampled_nodes[0]
        assert int(batch.dst_neg_index.max()) < seeds
        seen += size

        s, d = n_id[batch.edge_index].numpy()
        assert (reference[d, s] > 0).all()
        targets = set(
            zip(src[seen - size : seen], dst[seen - size : seen], strict=True)
        )
        targets |= {(b, a) for a, b in targets}
        assert not targets & set(zip(s.tolist(), d.tolist(), strict=True))

    serial = link_loader(graph, (4, 3), negatives=3, batch_size=32, seed=2)
    assert batches_as_lists(batches) == batches_as_lists(serial)


def test_link_loader_can_keep_targets():
    graph = star(6, both_ways=True)
    loader = link_loader(graph, (-1,), batch_size=100, exclude_targets=False)
    batch = next(iter(loader))
    assert batch.edge_index.shape[1] > 0
    blind = link_loader(graph, (-1,), batch_size=100)
    # every edge of a star is a target, so nothing is left to read
    assert next(iter(blind)).edge_index.shape[1] == 0


def test_negatives_follow_degree_power():
    graph = random_graph(30, 400, seed=7)
    sampler = CSRSampler(graph, (2,), seed=0)
    pairs = torch.zeros(1, dtype=torch.int64)
    out = sampler.sample_from_edges(
        EdgeSamplerInput(None, pairs, pairs),
        neg_sampling=NegativeSampling("triplet", 20000),
    )
    negatives = out.node[out.metadata[3]].flatten().numpy()
    weights = in_degrees(graph).astype(float) ** 0.75
    expected = 20000 * weights / weights.sum()
    observed = np.bincount(negatives, minlength=graph.num_nodes)
    assert (observed[expected == 0] == 0).all()
    keep = expected > 0
    dof = int(keep.sum()) - 1
    assert chi_square(observed[keep], expected[keep]) < chi2_bound(dof)


def test_binary_negatives_match_pyg_layout():
    graph = random_graph(30, 200, seed=8)
    sampler = CSRSampler(graph, (2,), seed=0)
    row, col = torch.tensor([1, 2, 3]), torch.tensor([4, 5, 6])
    out = sampler.sample_from_edges(
        EdgeSamplerInput(None, row, col), neg_sampling=NegativeSampling("binary", 2)
    )
    _, edge_label_index, edge_label, _ = out.metadata
    assert edge_label_index.shape == (2, 9)
    assert edge_label.tolist() == [1, 1, 1] + [0] * 6
    assert out.node[edge_label_index[:, :3]].tolist() == [[1, 2, 3], [4, 5, 6]]


@pytest.mark.parametrize(
    ("fanouts", "message"),
    [((), "at least one hop"), ((3, 0), "positive or -1"), ((2.5,), "ints")],
)
def test_bad_fanouts(fanouts, message):
    with pytest.raises(ValueError, match=message):
        CSRSampler(random_graph(), fanouts)


def test_bad_backend_and_negatives():
    graph = random_graph()
    with pytest.raises(ValueError, match="backend must be one of"):
        node_loader(graph, (2,), backend="dgl")
    with pytest.raises(ValueError, match="negatives must be a positive int"):
        link_loader(graph, (2,), negatives=0)


def pyg_backend_available() -> bool:
    import torch_geometric.typing as pyg_typing

    return bool(pyg_typing.WITH_PYG_LIB or pyg_typing.WITH_TORCH_SPARSE)


@pytest.mark.skipif(not pyg_backend_available(), reason="needs pyg-lib or torch-sparse")
@pytest.mark.filterwarnings("ignore:Using 'NeighborSampler' without a 'pyg-lib'")
def test_pyg_backend_gives_batches_of_the_same_form():
    graph = random_graph(60, 300, seed=5, undirected=True)
    ours = next(iter(node_loader(graph, (3, 2), batch_size=8)))
    theirs = next(iter(node_loader(graph, (3, 2), batch_size=8, backend="pyg")))
    assert set(ours.keys()) <= set(theirs.keys()) | {"num_sampled_edges"}
    assert theirs.n_id[:8].tolist() == ours.n_id[:8].tolist()
    ours = next(iter(link_loader(graph, (3, 2), batch_size=8, negatives=2)))
    theirs = next(
        iter(link_loader(graph, (3, 2), batch_size=8, negatives=2, backend="pyg"))
    )
    assert theirs.dst_neg_index.shape == ours.dst_neg_index.shape
