from __future__ import annotations

import json

import numpy as np
import pytest

import fastrec
from fastrec import cli


@pytest.fixture
def served(monkeypatch):
    """Replace ``serve`` in the CLI; record each call and what it would serve."""
    calls = []

    def fake_serve(path, **options):
        calls.append({"path": path, "version": fastrec.load(path).version, **options})

    monkeypatch.setattr(cli, "serve", fake_serve)
    return calls


def test_demo_prints_recommendations_and_evaluation(capsys, served):
    assert cli.main(["demo", "--no-serve"]) == 0

    out = capsys.readouterr().out
    assert out.startswith("karate club: 34 members, 156 directed edges")
    assert "node 0 (Mr. Hi): nearest 5" in out
    assert "node 33 (Officer): nearest 5" in out
    assert out.count("distance ") == 10
    figures = json.loads(out.split("evaluation over all members: ")[1])
    assert figures["num_queries"] == 34 and 0 <= figures["share@5"] <= 1
    assert "saved the bundle" not in out and served == []


def test_demo_saves_and_serves_the_karate_bundle(capsys, served):
    assert cli.main(["demo", "--port", "8123"]) == 0

    out = capsys.readouterr().out
    (call,) = served
    assert (call["host"], call["port"]) == ("127.0.0.1", 8123)
    assert "serving the API on http://127.0.0.1:8123 (Ctrl-C to stop)" in out
    assert "curl -s 'http://127.0.0.1:8123/knn/33?k=5&labels=true'" in out
    assert not call["path"].exists(), "the temporary bundle outlived the demo"


def test_demo_keeps_a_bundle_it_was_given(tmp_path, capsys, served):
    assert cli.main(["demo", "--no-serve", "--bundle", str(tmp_path / "k")]) == 0

    bundle = fastrec.load(tmp_path / "k")
    assert bundle.graph.num_nodes == 34 and served == []
    assert f"fastrec serve {tmp_path / 'k'}" in capsys.readouterr().out


def test_build_then_evaluate(tmp_path, capsys):
    path = tmp_path / "karate"
    assert (
        cli.main(["build", str(path), "--karate", "--kind", "hnsw", "--dim", "16"]) == 0
    )
    assert cli.main(["evaluate", str(path), "--levels", "3", "1"]) == 0

    out = capsys.readouterr().out.splitlines()
    assert "hnsw index of 34 rows, dim 16" in out[0]
    assert set(json.loads(out[1])) == {
        "share@3",
        "hit@3",
        "share@1",
        "hit@1",
        "num_queries",
    }
    bundle = fastrec.load(path)
    assert (bundle.index.kind, bundle.config.embedding_dim) == ("hnsw", 16)


def test_build_from_csv_keeps_string_ids_and_labels(tmp_path):
    (tmp_path / "edges.csv").write_text("src,dst\na,b\nb,c\nc,a\n")
    (tmp_path / "nodes.csv").write_text("id,label\na,x\nb,y\nc,\nd,x\n")
    args = [
        "build",
        str(tmp_path / "b"),
        "--edges",
        str(tmp_path / "edges.csv"),
        "--nodes",
        str(tmp_path / "nodes.csv"),
        "--undirected",
        "--dim",
        "8",
    ]
    assert cli.main(args) == 0

    graph = fastrec.load_graph(tmp_path / "b")
    assert graph.ids.tolist() == ["a", "b", "c", "d"]
    assert graph.num_edges == 6
    assert graph.classes.tolist() == ["x", "y"]
    np.testing.assert_array_equal(graph.labels, [0, 1, -1, 0])


def test_errors_are_one_line_and_a_failing_status(tmp_path, capsys):
    assert cli.main(["serve", str(tmp_path)]) == 1
    assert cli.main(["build", str(tmp_path / "x"), "--karate", "--nodes", "n.csv"]) == 1

    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("fastrec: error: ") and "manifest.json: missing" in err[0]
    assert err[1] == "fastrec: error: --nodes and --undirected go with --edges"


@pytest.mark.parametrize("entry", ["serve", "deploy"])
def test_serve_and_deploy_pass_their_options(tmp_path, served, entry):
    fastrec.save(tmp_path / "b", **_karate_parts())
    args = [
        str(tmp_path / "b"),
        "--port",
        "9001",
        "--workers",
        "3",
        "--api-key-env",
        "KEY",
        "--max-k",
        "7",
        "--no-verify",
    ]
    status = cli.main(["serve", *args]) if entry == "serve" else cli.deploy(args)

    assert status == 0
    (call,) = served
    assert call["path"] == tmp_path / "b"
    assert {
        key: call[key]
        for key in ("port", "workers", "api_key_env", "max_k", "verify", "host")
    } == {
        "port": 9001,
        "workers": 3,
        "api_key_env": "KEY",
        "max_k": 7,
        "verify": False,
        "host": "127.0.0.1",
    }


def _karate_parts():
    nodes, src, dst, labels = fastrec.karate_club()
    graph = fastrec.build_graph(nodes, src, dst, labels=labels)
    encoder = fastrec.init_encoder(fastrec.EncoderConfig(embedding_dim=8), graph)
    embeddings = fastrec.embed(graph, encoder, progress=False)
    return {
        "graph": graph,
        "encoder": encoder,
        "embeddings": embeddings,
        "index": fastrec.build_index(embeddings, graph),
    }


def test_every_command_is_registered(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])

    out = capsys.readouterr().out
    for name in ("demo", "build", "train", "evaluate", "serve"):
        assert name in out


def test_train_replaces_the_bundle_with_a_better_encoder(tmp_path, capsys):
    path = tmp_path / "karate"
    assert cli.main(["build", str(path), "--karate", "--dim", "16"]) == 0
    before = fastrec.load(path)
    assert cli.main(["train", str(path), "--epochs", "5", "--batch-size", "16"]) == 0

    out = capsys.readouterr().out
    assert "epoch 5: loss" in out and "saved the trained bundle" in out
    after = fastrec.load(path)
    assert after.manifest["data"] != before.manifest["data"]
    assert not np.allclose(after.embeddings, before.embeddings)
    figures = [
        json.loads(line.split(":", 1)[1])
        for line in out.splitlines()
        if line.startswith(("before:", "after:"))
    ]
    assert figures[1]["share@10"] > figures[0]["share@10"]
