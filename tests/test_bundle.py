from __future__ import annotations

import multiprocessing
import os
import pickle
import random
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import fastrec
from fastrec.bundle import read_manifest
from fastrec.errors import BundleError

ID_KINDS = {
    "int": lambda n: np.arange(100, 100 + n),
    "str": lambda n: [f"node-{i}" for i in range(n)],
    "mixed": lambda n: [i if i % 3 else f"{i}" for i in range(n)],
}


def make_parts(ids="int", kind="flat", num_nodes=400, seed=0, dim=32):
    """A seeded labelled graph with given features, its encoder, embeddings, index."""
    rng = np.random.default_rng(seed)
    nodes = ID_KINDS[ids](num_nodes)
    node_array = np.empty(num_nodes, dtype=object)
    node_array[:] = list(nodes)
    src = node_array[rng.integers(0, num_nodes, 4 * num_nodes)]
    dst = node_array[rng.integers(0, num_nodes, 4 * num_nodes)]
    labels = [["red", 7, None][i % 3] for i in range(num_nodes)]
    excluded = rng.random(num_nodes) < 0.1
    graph = fastrec.build_graph(nodes, src, dst, labels=labels, excluded=excluded)
    config = fastrec.EncoderConfig(embedding_dim=dim, feature_dim=8, inputs="both")
    features = rng.normal(size=(num_nodes, 3)).astype(np.float32)
    encoder = fastrec.init_encoder(config, graph, features=features, seed=seed)
    embeddings = fastrec.embed(graph, encoder, progress=False)
    index = fastrec.build_index(embeddings, graph, kind=kind)
    return {
        "graph": graph,
        "encoder": encoder,
        "embeddings": embeddings,
        "index": index,
    }


def typed(values):
    return [(type(v), v) for v in np.asarray(values, dtype=object).tolist()]


def assert_same_graph(got, want):
    assert got.ids.dtype == want.ids.dtype
    assert typed(got.ids) == typed(want.ids)
    assert typed(got.classes) == typed(want.classes)
    for name in ("indptr", "indices", "labels", "excluded"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name))
        assert getattr(got, name).dtype == getattr(want, name).dtype
    probe = want.ids[:7]
    np.testing.assert_array_equal(
        fastrec.node_positions(got, probe), fastrec.node_positions(want, probe)
    )


@pytest.mark.parametrize("mmap", [True, False])
@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
@pytest.mark.parametrize("ids", ["int", "str", "mixed"])
def test_round_trip_keeps_everything(tmp_path, ids, kind, mmap):
    parts = make_parts(ids, kind)
    path = fastrec.save(tmp_path / "bundle", **parts)
    bundle = fastrec.load(path, mmap=mmap)

    assert_same_graph(bundle.graph, parts["graph"])
    want_state = parts["encoder"].state_dict()
    got_state = bundle.encoder.state_dict()
    assert list(got_state) == list(want_state)
    for name, tensor in want_state.items():
        assert torch.equal(got_state[name], tensor), name
    assert bundle.config == parts["encoder"].config
    np.testing.assert_array_equal(bundle.embeddings, parts["embeddings"].numpy())
    assert (bundle.index.kind, bundle.index.metric) == (kind, "cosine")
    np.testing.assert_array_equal(bundle.index.positions, parts["index"].positions)

    queries = parts["graph"].ids[::9].tolist()
    want = fastrec.query(
        parts["graph"], parts["embeddings"], parts["index"], queries, 6, labels=True
    )
    got = fastrec.query(
        bundle.graph, bundle.embeddings, bundle.index, queries, 6, labels=True
    )
    assert got == want
    with torch.inference_mode():
        again = fastrec.embed(bundle.graph, bundle.encoder, progress=False)
    torch.testing.assert_close(again, parts["embeddings"])


def test_load_graph_reads_only_the_graph(tmp_path, monkeypatch):
    parts = make_parts("mixed")
    path = fastrec.save(tmp_path / "b", **parts)
    monkeypatch.setattr(fastrec.bundle, "read_index", _fail("read_index"))
    monkeypatch.setattr(fastrec.bundle, "_read_tensors", _fail("_read_tensors"))

    assert_same_graph(fastrec.load_graph(path), parts["graph"])


def _fail(name):
    def fail(*args, **kwargs):
        raise AssertionError(f"{name} was called")

    return fail


def test_load_never_unpickles(tmp_path, monkeypatch):
    path = fastrec.save(tmp_path / "b", **make_parts("mixed", "hnsw"))
    for module, name in [
        (pickle, "loads"),
        (pickle, "load"),
        (pickle, "Unpickler"),
        (torch, "load"),
    ]:
        monkeypatch.setattr(module, name, _fail(f"{module.__name__}.{name}"))

    for mmap in (True, False):
        bundle = fastrec.load(path, mmap=mmap)
        fastrec.query(
            bundle.graph, bundle.embeddings, bundle.index, bundle.graph.ids[:3], 2
        )
    fastrec.load_graph(path)


def test_big_parts_are_memory_mapped(tmp_path):
    if not Path("/proc/self/maps").exists():
        pytest.skip("needs /proc/self/maps")
    for kind in ("flat", "ivf", "hnsw"):
        path = fastrec.save(tmp_path / kind, **make_parts("int", kind, 2000, dim=64))
        bundle = fastrec.load(path)
        data = path / bundle.version
        maps = Path("/proc/self/maps").read_text()

        for name in ("embeddings.npy", "index.faiss", "encoder.safetensors"):
            assert str(data / name) in maps, (kind, name)
        assert not bundle.embeddings.flags.writeable
        del bundle


def test_saving_again_replaces_the_bundle(tmp_path):
    first, second = make_parts(seed=1), make_parts(seed=2)
    path = fastrec.save(tmp_path / "b", **first)
    fastrec.save(path, **second)

    bundle = fastrec.load(path)
    np.testing.assert_array_equal(bundle.embeddings, second["embeddings"].numpy())
    assert len(list(path.glob("data-*"))) == 1
    assert bundle.manifest["counts"]["nodes"] == 400
    assert bundle.manifest["fastrec_version"] == fastrec.__version__


def test_save_checks_its_arguments(tmp_path):
    parts = make_parts()
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="path must be a bundle directory"):
        fastrec.save(tmp_path, **parts)
    with pytest.raises(ValueError, match="embeddings must have shape"):
        fastrec.save(tmp_path / "b", **{**parts, "embeddings": parts["embeddings"][1:]})
    other = fastrec.EncoderConfig(embedding_dim=16)
    with pytest.raises(ValueError, match="config must match encoder.config"):
        fastrec.save(tmp_path / "b", **parts, config=other)
    fastrec.save(
        tmp_path / "b",
        **parts,
        config=fastrec.EncoderConfig(embedding_dim=32, feature_dim=8),
    )
    graph = fastrec.build_graph([b"x", b"y"], [], [])
    encoder = fastrec.init_encoder(fastrec.EncoderConfig(embedding_dim=4), graph)
    embeddings = fastrec.embed(graph, encoder, progress=False)
    with pytest.raises(ValueError, match="graph.ids: a bundle keeps ints"):
        fastrec.save(
            tmp_path / "c",
            graph=graph,
            encoder=encoder,
            embeddings=embeddings,
            index=fastrec.build_index(embeddings),
        )


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("bundle") / "b"
    return fastrec.save(path, **make_parts("str", "hnsw"))


def _data_files(path):
    return sorted(read_manifest(path)["files"])


@pytest.mark.parametrize("damage", ["missing", "truncated", "altered"])
def test_a_damaged_file_is_an_error_naming_it(saved, tmp_path, damage):
    import shutil

    for name in _data_files(saved):
        copy = tmp_path / f"{damage}-{name}"
        shutil.copytree(saved, copy)
        file = next(copy.glob("data-*")) / name
        if damage == "missing":
            file.unlink()
        elif damage == "truncated":
            file.write_bytes(file.read_bytes()[:-1])
        else:
            payload = bytearray(file.read_bytes())
            payload[len(payload) // 2] ^= 0x01
            file.write_bytes(bytes(payload))

        with pytest.raises(BundleError, match=name.replace(".", r"\.")):
            fastrec.load(copy)


def test_a_missing_or_foreign_manifest_is_an_error(tmp_path):
    with pytest.raises(BundleError, match="manifest.json: missing"):
        fastrec.load(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        fastrec.load(tmp_path)
    (tmp_path / "manifest.json").write_text(
        '{"format": "fastrec-bundle", "format_version": 99}'
    )
    with pytest.raises(BundleError, match="format version 99"):
        fastrec.load_graph(tmp_path)


# The kill test. Each child saves bundle B over bundle A and is killed with
# SIGKILL just before its n-th file-system call (or, below, at a random moment);
# the directory must then hold A or B, complete.

_FS_CALLS = ("open", "fsync", "replace", "rename", "mkdir", "unlink", "rmdir", "chmod")


def _save_killed_at(path: str, source: str, step: int) -> None:
    parts = _parts_of(fastrec.load(source, mmap=False))
    calls = 0

    def counted(function):
        def call(*args, **kwargs):
            nonlocal calls
            calls += 1
            if calls == step:
                os.kill(os.getpid(), signal.SIGKILL)
            return function(*args, **kwargs)

        return call

    for name in _FS_CALLS:
        setattr(os, name, counted(getattr(os, name)))
    fastrec.save(path, **parts)


def _save_forever(path: str, sources: list[str]) -> None:
    parts = [_parts_of(fastrec.load(source, mmap=False)) for source in sources]
    for i in range(10**6):
        fastrec.save(path, **parts[i % 2])


def _parts_of(bundle):
    return {
        "graph": bundle.graph,
        "encoder": bundle.encoder,
        "embeddings": bundle.embeddings,
        "index": bundle.index,
    }


def _which(path, candidates):
    embeddings = fastrec.load(path).embeddings
    matches = [
        name
        for name, parts in candidates.items()
        if parts["embeddings"].shape == embeddings.shape
        and np.array_equal(parts["embeddings"].numpy(), embeddings)
    ]
    assert len(matches) == 1, "the bundle is neither the old nor the new one"
    return matches[0]


@pytest.fixture(scope="module")
def forkserver():
    if sys.platform != "linux":
        pytest.skip("the kill test uses SIGKILL and the forkserver start method")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["fastrec", __name__])
    return context


def test_killing_a_save_at_every_step_leaves_old_or_new(tmp_path, forkserver):
    old, new = make_parts(seed=1), make_parts(seed=2)
    source = fastrec.save(tmp_path / "new", **new)
    path = tmp_path / "b"
    seen = []
    for step in range(1, 200):
        fastrec.save(path, **old)
        child = forkserver.Process(
            target=_save_killed_at, args=(str(path), str(source), step)
        )
        child.start()
        child.join(60)
        seen.append(_which(path, {"old": old, "new": new}))
        if child.exitcode == 0:
            break
        assert child.exitcode == -signal.SIGKILL
    else:
        pytest.fail("the save never finished")

    assert seen[-1] == "new" and seen[0] == "old"
    assert "new" in seen[:-1], "no kill landed after the swap, during the clean-up"
    assert len(seen) > 20
    assert len(list(path.glob("data-*"))) == 1


def test_killing_a_save_at_random_moments_leaves_old_or_new(tmp_path, forkserver):
    candidates = {
        "a": make_parts(seed=1, num_nodes=4000),
        "b": make_parts(seed=2, num_nodes=4000),
    }
    sources = [str(fastrec.save(tmp_path / n, **p)) for n, p in candidates.items()]
    path = tmp_path / "b"
    fastrec.save(path, **candidates["a"])
    rng = random.Random(0)
    for _ in range(4):
        child = forkserver.Process(target=_save_forever, args=(str(path), sources))
        child.start()
        time.sleep(0.5 + rng.random())
        os.kill(child.pid, signal.SIGKILL)
        child.join(10)
        assert child.exitcode == -signal.SIGKILL
        _which(path, candidates)


def test_load_follows_a_save_that_replaced_the_bundle_meanwhile(tmp_path, monkeypatch):
    first, second = make_parts(seed=1), make_parts(seed=2)
    path = fastrec.save(tmp_path / "b", **first)
    stale = read_manifest(path)
    fastrec.save(path, **second)  # removes the data folder ``stale`` names
    manifests = iter([stale])
    real = fastrec.bundle.read_manifest
    monkeypatch.setattr(
        fastrec.bundle, "read_manifest", lambda p: next(manifests, None) or real(p)
    )

    bundle = fastrec.load(path)
    np.testing.assert_array_equal(bundle.embeddings, second["embeddings"].numpy())
