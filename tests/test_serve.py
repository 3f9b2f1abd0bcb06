"""``fastrec serve`` as a real subprocess on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import fastrec

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="stops the server with SIGINT"
)


@pytest.fixture(scope="module")
def karate(tmp_path_factory):
    nodes, src, dst, labels = fastrec.karate_club()
    graph = fastrec.build_graph(nodes, src, dst, labels=labels)
    encoder = fastrec.init_encoder(
        fastrec.EncoderConfig(embedding_dim=16), graph, seed=0
    )
    embeddings = fastrec.embed(graph, encoder, progress=False)
    index = fastrec.build_index(embeddings, graph, kind="hnsw")
    path = tmp_path_factory.mktemp("karate") / "bundle"
    fastrec.save(path, graph=graph, encoder=encoder, embeddings=embeddings, index=index)
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def command(name: str) -> list[str]:
    """The installed console script, or the module when it is not installed."""
    script = Path(sys.executable).with_name(name)
    if script.exists():
        return [str(script)]
    module = "fastrec.cli" if name == "fastrec" else None
    if module is None:
        pytest.skip(f"the {name} console script is not installed")
    return [sys.executable, "-m", module]


def start(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    # A session of its own, so that a failing test can kill the workers too.
    return subprocess.Popen(
        args,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def wait_until_up(server: subprocess.Popen, url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the server exited early:\n{server.stdout.read()}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    pytest.fail(f"the server did not answer within {timeout} s")


def stop(server: subprocess.Popen) -> str:
    """Interrupt the server as Ctrl-C would; it must exit cleanly."""
    server.send_signal(signal.SIGINT)
    try:
        output, _ = server.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.communicate()
        raise
    assert server.returncode == 0, output
    return output


def test_fastrec_serve_answers_over_http(karate):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start(
        [
            *command("fastrec"),
            "serve",
            str(karate),
            "--port",
            str(port),
            "--api-key-env",
            "TEST_FASTREC_KEY",
        ],
        env={"TEST_FASTREC_KEY": "k3y"},
    )
    try:
        wait_until_up(server, url)
        key = {"X-API-Key": "k3y"}
        assert httpx.get(f"{url}/knn/33").status_code == 401
        one = httpx.get(f"{url}/knn/33?k=3&labels=true", headers=key)
        many = httpx.post(f"{url}/knn/", json={"ids": [0, 33]}, headers=key)
        missing = httpx.get(f"{url}/knn/34", headers=key)
        summary = httpx.get(f"{url}/", headers=key).json()
    finally:
        output = stop(server)

    bundle = fastrec.load(karate)
    want = fastrec.query(bundle.graph, bundle.embeddings, bundle.index, [0, 33], 5)
    assert one.status_code == 200 and one.json()["33"]["labels"] == ["Officer"] * 3
    assert many.json() == {str(k): v for k, v in want.items()}
    assert missing.status_code == 404 and missing.json()["ids"] == [34]
    assert (summary["nodes"], summary["index"]) == (34, "hnsw")
    assert "Uvicorn running on" in output


def test_two_workers_both_answer_from_one_bundle(karate):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start(
        [
            *command("fastrec"),
            "serve",
            str(karate),
            "--port",
            str(port),
            "--workers",
            "2",
        ]
    )
    try:
        wait_until_up(server, url)
        pids, bundles = set(), set()
        deadline = time.monotonic() + 60
        while len(pids) < 2 and time.monotonic() < deadline:
            with httpx.Client() as client:  # a new connection each time
                health = client.get(f"{url}/health").json()
                answer = client.get(f"{url}/knn/0?k=2")
            pids.add(health["pid"])
            bundles.add(health["bundle"])
            assert answer.status_code == 200
        maps = {pid: _read_maps(pid) for pid in pids}
    finally:
        stop(server)

    bundle = fastrec.load(karate)
    assert len(pids) == 2, "only one worker answered"
    assert server.pid not in pids
    assert bundles == {bundle.version}
    index_file = str(karate / bundle.version / "index.faiss")
    for pid, text in maps.items():  # both map the one file: no copy of their own
        assert text is None or index_file in text, pid


def _read_maps(pid: int) -> str | None:
    maps = Path(f"/proc/{pid}/maps")
    return maps.read_text() if maps.exists() else None
