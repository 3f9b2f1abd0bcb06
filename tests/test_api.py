from __future__ import annotations

import asyncio
import threading
import time

import httpx2
import pytest
from starlette.testclient import TestClient

import fastrec
import fastrec.api


def build_bundle(path, ids):
    labels = ["a" if i % 2 else "b" for i in range(len(ids))]
    src = [ids[i] for i in range(len(ids) - 1)]
    dst = [ids[i + 1] for i in range(len(ids) - 1)]
    graph = fastrec.build_graph(ids, src, dst, labels=labels, undirected=True)
    encoder = fastrec.init_encoder(
        fastrec.EncoderConfig(embedding_dim=16), graph, seed=0
    )
    embeddings = fastrec.embed(graph, encoder, progress=False)
    index = fastrec.build_index(embeddings, graph)
    fastrec.save(path, graph=graph, encoder=encoder, embeddings=embeddings, index=index)
    return fastrec.load(path)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return build_bundle(tmp_path_factory.mktemp("int") / "b", list(range(40)))


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    ids = [i if i % 2 else f"n{i}" for i in range(40)] + ["7"]
    return build_bundle(tmp_path_factory.mktemp("mixed") / "b", ids)


@pytest.fixture
def client(bundle):
    app = fastrec.create_app(bundle, max_k=20, max_batch=8, max_body_bytes=2000)
    with TestClient(app) as client:
        yield client


def expected(bundle, ids, k=5, labels=False):
    answers = fastrec.query(
        bundle.graph, bundle.embeddings, bundle.index, ids, k, labels=labels
    )
    return {str(key): value for key, value in answers.items()}


def assert_error(response, status, *words):
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) >= {"error", "detail"}
    for word in words:
        assert word in body["detail"], body
    return body


@pytest.mark.parametrize("path", ["/", "/health", "/health/"])
def test_summary_and_health(client, bundle, path):
    body = client.get(path).json()
    if path == "/":
        assert body["nodes"] == 40 and body["edges"] == bundle.graph.num_edges
        assert (body["dimension"], body["metric"], body["index"]) == (
            16,
            "cosine",
            "flat",
        )
        assert body["version"] == fastrec.__version__
        assert body["limits"] == {"max_k": 20, "max_batch": 8, "max_body_bytes": 2000}
    else:
        assert body["status"] == "ok" and isinstance(body["pid"], int)


@pytest.mark.parametrize("slash", ["", "/"])
def test_knn_of_one_node(client, bundle, slash):
    response = client.get(f"/knn/33{slash}?k=3&labels=true")

    assert response.status_code == 200
    assert response.json() == expected(bundle, [33], 3, labels=True)
    assert client.get(f"/knn/33{slash}").json() == expected(bundle, [33])


@pytest.mark.parametrize("slash", ["", "/"])
def test_knn_of_many_nodes(client, bundle, slash):
    response = client.post(f"/knn{slash}?k=4", json={"ids": [0, 5, 39]})

    assert response.json() == expected(bundle, [0, 5, 39], 4)
    assert client.post("/knn", json={"ids": []}).json() == {}


@pytest.mark.parametrize("slash", ["", "/"])
def test_knn_of_unseen_nodes(client, bundle, slash):
    body = {"nodes": ["new", 99], "neighbors": [[0, 1, 2], [30]]}
    response = client.post(f"/knn_unseen{slash}?labels=true", json=body)

    want = fastrec.query_unseen(
        bundle.graph,
        bundle.embeddings,
        bundle.index,
        ["new", 99],
        [[0, 1, 2], [30]],
        5,
        labels=True,
    )
    assert response.json() == {str(key): value for key, value in want.items()}


def test_path_ids_match_the_graphs_id_type(mixed):
    with TestClient(fastrec.create_app(mixed)) as client:
        int_node = client.get("/knn/3").json()
        str_node = client.get("/knn/n4").json()
        both = client.get("/knn/7").json()  # the string "7" and the int 7 exist

    assert int_node == expected(mixed, [3])
    assert str_node == expected(mixed, ["n4"])
    assert both == expected(mixed, ["7"])
    assert expected(mixed, [7]) != both


@pytest.mark.parametrize(
    ("request_args", "unknown"),
    [
        (("GET", "/knn/40"), [40]),
        (("GET", "/knn/abc"), ["abc"]),
        (
            ("GET", "/knn/123456789012345678901234567890"),
            [123456789012345678901234567890],
        ),
        (("POST", "/knn", {"ids": [1, "x", 77]}), ["x", 77]),
        (("POST", "/knn_unseen", {"nodes": [1], "neighbors": [[1, 55]]}), [55]),
    ],
)
def test_unknown_ids_are_404_naming_them(client, request_args, unknown):
    method, path, *body = request_args
    response = client.request(method, path, json=body[0] if body else None)

    assert assert_error(response, 404, *map(repr, unknown))["ids"] == unknown


@pytest.mark.parametrize(
    ("query", "status", "words"),
    [
        ("k=x", 400, ["k must be an integer", "'x'"]),
        ("k=1.5", 400, ["k must be an integer"]),
        ("k=0", 422, ["k must be in [1, 20]", "(got 0)"]),
        ("k=21", 422, ["k must be in [1, 20]", "(got 21)"]),
        ("labels=maybe", 400, ["labels must be true or false"]),
    ],
)
def test_bad_query_parameters(client, query, status, words):
    assert_error(client.get(f"/knn/1?{query}"), status, *words)
    assert_error(client.post(f"/knn?{query}", json={"ids": [1]}), status, *words)


@pytest.mark.parametrize(
    ("path", "content", "status", "words"),
    [
        ("/knn", b"{not json", 400, ["valid JSON"]),
        ("/knn", b"\xff\xfe", 400, ["valid JSON"]),
        ("/knn", b"[1, 2]", 422, ["JSON object", "an array"]),
        ("/knn", b'{"id": [1]}', 422, ["'ids' field"]),
        ("/knn", b'{"ids": 1}', 422, ["ids must be a JSON array", "an integer"]),
        ("/knn", b'{"ids": [1.0]}', 422, ["integers or strings", "a number"]),
        ("/knn", b'{"ids": [true]}', 422, ["integers or strings", "a boolean"]),
        ("/knn", b'{"ids": [[1]]}', 422, ["integers or strings", "an array"]),
        ("/knn_unseen", b'{"nodes": [1]}', 422, ["'neighbors' field"]),
        (
            "/knn_unseen",
            b'{"nodes": [1], "neighbors": [[1], [2]]}',
            422,
            ["one list per node", "2 lists for 1 nodes"],
        ),
        (
            "/knn_unseen",
            b'{"nodes": [1], "neighbors": [[]]}',
            422,
            ["neighbors[0] must hold at least one id"],
        ),
        (
            "/knn_unseen",
            b'{"nodes": [1], "neighbors": [1]}',
            422,
            ["neighbors[0] must be a JSON array"],
        ),
        (
            "/knn_unseen",
            b'{"nodes": [null], "neighbors": [[1]]}',
            422,
            ["nodes must hold integers or strings", "null"],
        ),
    ],
)
def test_malformed_bodies(client, path, content, status, words):
    assert_error(client.post(path, content=content), status, *words)


def test_limits_on_batch_and_body(client):
    assert_error(
        client.post("/knn", json={"ids": list(range(9))}),
        413,
        "at most 8 entries",
        "(got 9)",
    )
    body = {"nodes": list(range(9)), "neighbors": [[0]] * 9}
    assert_error(client.post("/knn_unseen", json=body), 413, "at most 8 entries")
    assert_error(
        client.post("/knn", content=b" " * 2001),
        413,
        "at most 2000 bytes",
        "(got 2001)",
    )

    def chunks():  # no Content-Length: the limit holds while streaming
        for _ in range(5):
            yield b" " * 500

    assert_error(client.post("/knn", content=chunks()), 413, "at most 2000 bytes")


def test_unknown_paths_and_methods_are_json(client):
    assert_error(client.get("/nowhere"), 404, "no endpoint GET /nowhere")
    assert_error(client.get("/knn"), 405, "/knn does not answer GET")
    assert_error(client.put("/knn/1"), 405)


@pytest.mark.parametrize("path", ["/", "/knn/1"])
def test_api_key(bundle, path):
    app = fastrec.create_app(bundle, api_key="s3cret")
    with TestClient(app) as client:
        for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer no"}):
            response = client.get(path, headers=headers)
            assert_error(response, 401, "API key")
            assert response.headers["www-authenticate"] == "Bearer"
        assert client.post("/knn", json={"ids": [1]}).status_code == 401
        assert client.get(path, headers={"X-API-Key": "s3cret"}).status_code == 200
        bearer = {"Authorization": "Bearer s3cret"}
        assert client.get(path, headers=bearer).status_code == 200
        assert client.get("/health").status_code == 200
        assert client.get("/openapi.json").status_code == 200


def test_openapi_describes_every_endpoint_and_limit(client):
    schema = client.get("/openapi.json/").json()

    assert schema["openapi"].startswith("3.")
    assert set(schema["paths"]) == {
        "/",
        "/health",
        "/knn/{node_id}",
        "/knn",
        "/knn_unseen",
        "/openapi.json",
    }
    assert schema["x-limits"] == {"max_k": 20, "max_batch": 8, "max_body_bytes": 2000}
    knn = schema["paths"]["/knn"]["post"]
    k = next(p for p in knn["parameters"] if p["name"] == "k")
    assert k["schema"]["maximum"] == 20
    ids = knn["requestBody"]["content"]["application/json"]["schema"]
    assert ids["properties"]["ids"]["maxItems"] == 8
    assert set(knn["responses"]) == {"200", "400", "401", "404", "413", "422"}
    assert "2000 bytes" in schema["info"]["description"]


def test_create_app_checks_its_limits(bundle):
    with pytest.raises(ValueError, match=r"max_k must be a positive int \(got 0\)"):
        fastrec.create_app(bundle, max_k=0)
    with pytest.raises(ValueError, match="api_key must be a non-empty string"):
        fastrec.create_app(bundle, api_key="")


def test_searches_do_not_block_the_event_loop(bundle, monkeypatch):
    """While one search sleeps in its thread, other requests are answered."""
    release = threading.Event()
    real_query = fastrec.api.query

    def slow_query(*args, **kwargs):
        release.wait(10)
        return real_query(*args, **kwargs)

    monkeypatch.setattr(fastrec.api, "query", slow_query)
    transport = httpx2.ASGITransport(app=fastrec.create_app(bundle))

    async def scenario():
        async with httpx2.AsyncClient(transport=transport, base_url="http://t") as c:
            slow = asyncio.ensure_future(c.get("/knn/1"))
            await asyncio.sleep(0.05)
            start = time.perf_counter()
            health = await c.get("/health")
            waited = time.perf_counter() - start
            assert not slow.done()
            release.set()
            return health, waited, await slow

    health, waited, slow = asyncio.run(scenario())
    assert health.status_code == 200 and waited < 5
    assert slow.json() == expected(bundle, [1])


def test_app_from_env_reads_its_settings(bundle, monkeypatch):
    import gc

    monkeypatch.setenv("FASTREC_BUNDLE", str(bundle.path))
    monkeypatch.setenv("FASTREC_API_KEY_ENV", "TEST_KEY")
    monkeypatch.setenv("FASTREC_MAX_K", "3")
    monkeypatch.setenv("TEST_KEY", "abc")
    try:
        app = fastrec.api.app_from_env()
    finally:
        gc.unfreeze()
    with TestClient(app) as client:
        assert client.get("/knn/1").status_code == 401
        key = {"X-API-Key": "abc"}
        assert client.get("/knn/1?k=3", headers=key).json() == expected(bundle, [1], 3)
        assert_error(client.get("/knn/1?k=4", headers=key), 422, "[1, 3]")

    monkeypatch.delenv("TEST_KEY")
    with pytest.raises(ValueError, match=r"\$TEST_KEY must hold the API key"):
        fastrec.api.app_from_env()
    monkeypatch.delenv("FASTREC_BUNDLE")
    with pytest.raises(ValueError, match=r"\$FASTREC_BUNDLE must name a bundle"):
        fastrec.api.app_from_env()


def test_concurrent_requests_share_searches_but_not_errors(bundle, monkeypatch):
    calls = []
    real_query = fastrec.api.query

    def counting_query(graph, embeddings, index, ids, k, **kwargs):
        calls.append(list(ids))
        time.sleep(0.05 if len(calls) == 1 else 0)  # let the others queue up
        return real_query(graph, embeddings, index, ids, k, **kwargs)

    monkeypatch.setattr(fastrec.api, "query", counting_query)
    app = fastrec.create_app(bundle, threads=1)
    paths = [f"/knn/{i}?k={2 + i % 2}" for i in range(12)] + ["/knn/77?k=2"]

    async def scenario():
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://t") as c:
            return await asyncio.gather(*(c.get(path) for path in paths))

    responses = asyncio.run(scenario())
    for i, response in enumerate(responses[:-1]):
        assert response.json() == expected(bundle, [i], 2 + i % 2)
    assert_error(responses[-1], 404, "77")
    searched = sum(len(ids) for ids in calls)
    assert len(calls) < len(paths), calls
    assert searched < 2 * len(paths)  # the batch holding 77 is retried per request


def test_a_server_fault_is_a_json_500(bundle, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(fastrec.api, "query", broken)
    app = fastrec.create_app(bundle)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/knn/1")

    assert_error(response, 500, "the server failed to answer")
    assert "disk on fire" not in response.text
    assert "error answering GET /knn/1" in caplog.text
