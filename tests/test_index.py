from __future__ import annotations

import faiss
import numpy as np
import pytest

import fastrec
from fastrec.index import default_nlist, default_nprobe, search, search_excluding
from tests.conftest import gpu


def clustered(num: int = 2000, dim: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(20, dim)) * 3
    return (centres[rng.integers(0, 20, num)] + rng.normal(size=(num, dim))).astype(
        np.float32
    )


def brute_force(vectors, queries, metric, k):
    if metric == "cosine":
        a = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
        distances = 1 - q @ a.T
    else:
        distances = ((queries[:, None, :] - vectors[None]) ** 2).sum(-1)
    order = np.argsort(distances, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(distances, order, axis=1), order


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_flat_search_matches_brute_force(metric):
    vectors = clustered(500)
    index = fastrec.build_index(vectors, metric=metric, kind="flat")
    distances, positions = search(index, vectors[:50], 10)
    want_d, want_p = brute_force(vectors, vectors[:50], metric, 10)

    np.testing.assert_allclose(distances, want_d, rtol=1e-4, atol=1e-4)
    assert (positions == want_p).mean() > 0.99  # ties may swap
    assert (np.diff(distances, axis=1) >= -1e-6).all()


@pytest.mark.parametrize("metric", ["cosine", "l2"])
@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_kinds_recall_flat_results(kind, metric):
    vectors = clustered(3000)
    flat = fastrec.build_index(vectors, metric=metric, kind="flat")
    approx = fastrec.build_index(vectors, metric=metric, kind=kind)
    _, want = search(flat, vectors[:200], 10)
    _, got = search(approx, vectors[:200], 10)
    recall = np.mean(
        [len(set(a) & set(b)) / 10 for a, b in zip(got, want, strict=True)]
    )
    assert recall > 0.9, recall


def test_excluded_nodes_are_never_returned():
    vectors = clustered(300)
    excluded = np.zeros(300, dtype=bool)
    excluded[::3] = True
    graph = fastrec.build_graph(np.arange(300), [], [], excluded=excluded)
    index = fastrec.build_index(vectors, graph)
    _, positions = search(index, vectors, 20)

    assert index.num_rows == 200
    assert not excluded[positions].any()


def test_fewer_rows_than_k_pads():
    index = fastrec.build_index(clustered(3), kind="flat")
    distances, positions = search(index, clustered(2, seed=1), 5)
    assert (positions[:, 3:] == -1).all() and np.isinf(distances[:, 3:]).all()
    assert (positions[:, :3] >= 0).all()


def test_search_excluding_drops_self_wherever_it_ranks():
    vectors = np.repeat(clustered(10), 2, axis=0)  # every vector twice
    index = fastrec.build_index(vectors, kind="flat")
    _, positions = search_excluding(index, vectors, np.arange(20), 3)
    assert (positions != np.arange(20)[:, None]).all()
    twin = np.arange(20) ^ 1
    assert (positions[:, 0] == twin).all()


def test_default_ivf_lists_fit_the_size():
    assert default_nlist(100) == 2
    assert default_nlist(232_965) == int(2 * np.sqrt(232_965))
    assert default_nprobe(965) == 30 and default_nprobe(100) == 8
    assert default_nprobe(5) == 5
    index = fastrec.build_index(clustered(2000), kind="ivf")
    ivf = faiss.extract_index_ivf(index.index)
    assert ivf.nlist == default_nlist(2000) and ivf.nprobe == default_nprobe(ivf.nlist)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"metric": "dot"}, r"metric must be one of \['cosine', 'l2'\]"),
        ({"kind": "lsh"}, r"kind must be one of \['flat', 'ivf', 'hnsw'\]"),
        ({"kind": "ivf", "nlist": 10_000}, r"nlist must be in \[1, 2000\]"),
        ({"device": "tpu"}, 'device must be "cpu" or "cuda'),
    ],
)
def test_bad_index_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        fastrec.build_index(clustered(2000), **kwargs)


def test_bad_vectors_and_k():
    with pytest.raises(ValueError, match="NaN or infinity"):
        fastrec.build_index(np.full((4, 2), np.nan))
    with pytest.raises(ValueError, match=r"shape \[n, dim\]"):
        fastrec.build_index(np.zeros(5))
    index = fastrec.build_index(clustered(10))
    with pytest.raises(ValueError, match="k must be a positive int"):
        search(index, clustered(1), 0)
    with pytest.raises(ValueError, match="queries have dimension 3, the index 16"):
        search(index, np.zeros((1, 3)), 1)
    graph = fastrec.build_graph(np.arange(5), [], [])
    with pytest.raises(ValueError, match="10 rows but the graph has 5 nodes"):
        fastrec.build_index(clustered(10), graph)


@pytest.mark.skipif(
    hasattr(faiss, "get_num_gpus") and faiss.get_num_gpus() > 0,
    reason="this faiss has a GPU",
)
def test_asking_for_a_gpu_without_one_is_a_clear_error():
    with pytest.raises(RuntimeError, match="needs GPU faiss"):
        fastrec.build_index(clustered(100), device="cuda")


@gpu
@pytest.mark.skipif(
    not hasattr(faiss, "get_num_gpus") or faiss.get_num_gpus() == 0,
    reason="needs GPU faiss",
)
@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_gpu_index_agrees_with_cpu(kind):
    vectors = clustered(3000)
    cpu = fastrec.build_index(vectors, kind=kind)
    gpu_index = fastrec.build_index(vectors, kind=kind, device="cuda")
    _, a = search(cpu, vectors[:100], 10)
    _, b = search(gpu_index, vectors[:100], 10)
    assert (a == b).mean() > 0.9


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_write_and_read_round_trip(kind, tmp_path):
    vectors = clustered(2000)
    index = fastrec.build_index(vectors, kind=kind)
    fastrec.write_index(index, tmp_path / "index.faiss")
    loaded = fastrec.read_index(
        tmp_path / "index.faiss", index.positions, index.metric, index.kind, mmap=False
    )
    a = search(index, vectors[:20], 5)
    b = search(loaded, vectors[:20], 5)
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_allclose(a[0], b[0])
