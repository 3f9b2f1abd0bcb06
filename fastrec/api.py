"""The HTTP layer: a loaded ``Bundle`` in, a Starlette app out; and ``serve``.

Answers have the shape of ``recommend.query``, keyed by the query ids. Every
client mistake is a JSON error with a 4xx status. Searches run in worker
threads (faiss releases the GIL), so one process keeps answering while they
run, and requests that arrive together share one search.
"""

from __future__ import annotations

import functools
import gc
import hmac
import json
import logging
import os
import re
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import anyio
import anyio.to_thread
import numpy as np
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import __version__
from .bundle import Bundle, load, read_manifest
from .errors import FastrecError, UnknownNodeError
from .index import limit_search_threads
from .recommend import query, query_unseen

logger = logging.getLogger(__name__)

DEFAULT_K = 5
DEFAULT_MAX_K = 100
DEFAULT_MAX_BATCH = 1000
DEFAULT_MAX_BODY_BYTES = 1 << 20

# The settings ``app_from_env`` reads: how ``serve`` reaches worker processes.
ENV_BUNDLE = "FASTREC_BUNDLE"
ENV_API_KEY_ENV = "FASTREC_API_KEY_ENV"
ENV_MAX_K = "FASTREC_MAX_K"
ENV_MAX_BATCH = "FASTREC_MAX_BATCH"
ENV_MAX_BODY_BYTES = "FASTREC_MAX_BODY_BYTES"
ENV_VERIFY = "FASTREC_VERIFY"

_INTEGER = re.compile(r"-?[0-9]+")
_BOOLEANS = {
    "true": True,
    "1": True,
    "yes": True,
    "false": False,
    "0": False,
    "no": False,
}

Endpoint = Callable[[Request], Awaitable[Response]]


class ClientError(Exception):
    """A mistake of the client, answered with ``status`` and a JSON body."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def create_app(
    bundle: Bundle,
    *,
    api_key: str | None = None,
    max_k: int = DEFAULT_MAX_K,
    max_batch: int = DEFAULT_MAX_BATCH,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    threads: int | None = None,
) -> Starlette:
    """Build the recommender app over a loaded bundle.

    Endpoints (each also with a trailing slash): ``GET /`` (a summary),
    ``GET /health``, ``GET /knn/{node_id}``, ``POST /knn`` (``{"ids": [...]}``),
    ``POST /knn_unseen`` (``{"nodes": [...], "neighbors": [[...], ...]}``) and
    ``GET /openapi.json``. The ``knn`` endpoints take ``?k=5&labels=false``.

    Args:
        bundle: the loaded bundle.
        api_key: when set, every endpoint but ``/health`` and
            ``/openapi.json`` needs ``Authorization: Bearer <key>`` or
            ``X-API-Key: <key>``.
        max_k: the largest ``k`` a client may ask for.
        max_batch: the most ids (or unseen nodes) in one request.
        max_body_bytes: the largest request body.
        threads: searches running at once, each in a worker thread (faiss
            releases the GIL); default the number of CPUs. More requests wait
            their turn without blocking the event loop.

    Returns:
        The Starlette app.

    Raises:
        ValueError: a limit below 1, or an empty ``api_key``.
    """
    limits = {"max_k": max_k, "max_batch": max_batch, "max_body_bytes": max_body_bytes}
    _check_positive({**limits, "threads": 1 if threads is None else threads})
    if api_key is not None and not api_key:
        raise ValueError("api_key must be a non-empty string or None (got '')")

    threads = threads or os.cpu_count() or 1
    handlers = _Handlers(bundle, limits, keyed=api_key is not None, threads=threads)
    guard = _guard(api_key)
    routes = [
        *_routes("/", guard(handlers.summary), ["GET"]),
        *_routes("/health", handlers.health, ["GET"]),
        *_routes("/knn/{node_id}", guard(handlers.knn_one), ["GET"]),
        *_routes("/knn", guard(handlers.knn_many), ["POST"]),
        *_routes("/knn_unseen", guard(handlers.knn_unseen), ["POST"]),
        *_routes("/openapi.json", handlers.openapi, ["GET"]),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            ClientError: _client_error,
            UnknownNodeError: _unknown_node,
            HTTPException: _http_error,
            500: _server_error,
        },
    )
    app.router.redirect_slashes = False
    return app


def app_from_env() -> Starlette:
    """Load the bundle named by ``$FASTREC_BUNDLE`` and build its app.

    The factory behind ``serve`` and ``uvicorn --factory fastrec.api:app_from_env``;
    each worker process calls it. Optional settings: ``FASTREC_API_KEY_ENV``
    (the name of the variable that holds the key), ``FASTREC_MAX_K``,
    ``FASTREC_MAX_BATCH``, ``FASTREC_MAX_BODY_BYTES`` and ``FASTREC_VERIFY``
    ("0" skips the SHA-256 check). It moves every object alive at the end to
    the garbage collector's permanent generation (``gc.freeze``): the server
    process is its caller.

    Raises:
        ValueError: a setting is missing or malformed.
        BundleError: as ``bundle.load``.
    """
    path = os.environ.get(ENV_BUNDLE)
    if not path:
        raise ValueError(f"${ENV_BUNDLE} must name a bundle directory (got nothing)")
    key_env = os.environ.get(ENV_API_KEY_ENV)
    api_key = os.environ.get(key_env) if key_env else None
    if key_env and not api_key:
        raise ValueError(f"${key_env} must hold the API key (got nothing)")
    bundle = load(path, verify=os.environ.get(ENV_VERIFY, "1") != "0")
    app = create_app(
        bundle,
        api_key=api_key,
        max_k=_env_int(ENV_MAX_K, DEFAULT_MAX_K),
        max_batch=_env_int(ENV_MAX_BATCH, DEFAULT_MAX_BATCH),
        max_body_bytes=_env_int(ENV_MAX_BODY_BYTES, DEFAULT_MAX_BODY_BYTES),
    )
    # Torch, pandas and the bundle leave ~400k objects that a full collection
    # would walk (0.2 s, a latency spike) though none of them is garbage.
    gc.freeze()
    return app


def serve(
    path: str | Path,
    *,
    api_key_env: str | None = None,
    max_k: int = DEFAULT_MAX_K,
    max_batch: int = DEFAULT_MAX_BATCH,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    verify: bool = True,
    **uvicorn_options: Any,
) -> None:
    """Serve the bundle at ``path`` with uvicorn until interrupted.

    Every worker process loads the bundle memory-mapped, so they share one copy
    of the embeddings and the index.

    Args:
        path: the bundle directory.
        api_key_env: the name of an environment variable holding the API key;
            None serves without a key.
        max_k: as ``create_app``.
        max_batch: as ``create_app``.
        max_body_bytes: as ``create_app``.
        verify: check the files' SHA-256 in each worker as it loads.
        **uvicorn_options: passed to ``uvicorn.run``: ``host`` (default
            "127.0.0.1"), ``port`` (default 8000), ``workers``, ``log_level``,
            ``access_log`` (default False), ``timeout_worker_healthcheck``
            (default 60 s) and so on.

    Raises:
        BundleError: ``path`` holds no bundle.
        ValueError: ``api_key_env`` names an unset variable, or a limit is
            below 1.
    """
    import uvicorn

    path = Path(path).resolve()
    read_manifest(path)
    _check_positive(
        {"max_k": max_k, "max_batch": max_batch, "max_body_bytes": max_body_bytes}
    )
    if api_key_env and not os.environ.get(api_key_env):
        raise ValueError(
            f"api_key_env must name a set environment variable (got {api_key_env!r}, "
            "which is unset or empty)"
        )
    settings = {
        ENV_BUNDLE: str(path),
        ENV_API_KEY_ENV: api_key_env or "",
        ENV_MAX_K: str(max_k),
        ENV_MAX_BATCH: str(max_batch),
        ENV_MAX_BODY_BYTES: str(max_body_bytes),
        ENV_VERIFY: "1" if verify else "0",
    }
    options = {
        "host": "127.0.0.1",
        "port": 8000,
        "access_log": False,
        # A new worker imports torch before it answers the supervisor's pings;
        # uvicorn's 5 s kills and respawns workers on a busy machine forever.
        "timeout_worker_healthcheck": 60,
        **uvicorn_options,
    }
    with _environment(settings):
        uvicorn.run("fastrec.api:app_from_env", factory=True, **options)


def _check_positive(values: dict[str, Any]) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int (got {value!r})")


class _Handlers:
    """The endpoints over one bundle; ``create_app`` routes to them."""

    def __init__(
        self, bundle: Bundle, limits: dict[str, int], *, keyed: bool, threads: int
    ) -> None:
        self.bundle = bundle
        self.parts = (bundle.graph, bundle.embeddings, bundle.index)
        self.limiter = anyio.CapacityLimiter(threads)
        self.batcher = _Batcher(self.parts, self.limiter, limits["max_batch"])
        self.limits = limits
        self.max_k = limits["max_k"]
        self.max_batch = limits["max_batch"]
        self.max_body_bytes = limits["max_body_bytes"]
        self.int_ids = bundle.graph.ids.dtype.kind in "iu"
        self.schema = openapi_schema(bundle, limits, keyed=keyed)

    async def summary(self, request: Request) -> Response:
        graph, index = self.bundle.graph, self.bundle.index
        return JSONResponse(
            {
                "name": "fastrec",
                "version": __version__,
                "bundle": self.bundle.version,
                "nodes": graph.num_nodes,
                "edges": graph.num_edges,
                "indexed": index.num_rows,
                "dimension": index.dim,
                "metric": index.metric,
                "index": index.kind,
                "limits": self.limits,
            }
        )

    async def health(self, request: Request) -> Response:
        return JSONResponse(
            {"status": "ok", "pid": os.getpid(), "bundle": self.bundle.version}
        )

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(self.schema)

    async def knn_one(self, request: Request) -> Response:
        k, labels = self._options(request)
        node = self._path_id(request.path_params["node_id"])
        return JSONResponse(await self._query([node], k, labels))

    async def knn_many(self, request: Request) -> Response:
        k, labels = self._options(request)
        body = await self._body(request)
        ids = _id_list(_field(body, "ids"), "ids")
        self._check_batch(len(ids), "ids")
        return JSONResponse(await self._query(ids, k, labels) if ids else {})

    async def knn_unseen(self, request: Request) -> Response:
        k, labels = self._options(request)
        body = await self._body(request)
        nodes = _id_list(_field(body, "nodes"), "nodes")
        neighbors = _array(_field(body, "neighbors"), "neighbors")
        self._check_batch(len(nodes), "nodes")
        if len(neighbors) != len(nodes):
            raise ClientError(
                422,
                "neighbors must hold one list per node (got "
                f"{len(neighbors)} lists for {len(nodes)} nodes)",
            )
        lists = [
            _id_list(ids, f"neighbors[{i}]", nonempty=True)
            for i, ids in enumerate(neighbors)
        ]
        if not nodes:
            return JSONResponse({})
        graph, embeddings, index = self.parts
        answers = await self._in_thread(
            query_unseen, graph, embeddings, index, nodes, lists, k, labels=labels
        )
        return JSONResponse(answers)

    async def _query(self, ids: list[Any], k: int, labels: bool) -> dict[Any, Any]:
        return await self.batcher.query(ids, k, labels)

    async def _in_thread(
        self, function: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> Any:
        call = functools.partial(_single_threaded, function, *args, **kwargs)
        return await anyio.to_thread.run_sync(call, limiter=self.limiter)

    def _options(self, request: Request) -> tuple[int, bool]:
        params = request.query_params
        k = _int_param(params.get("k"), "k", DEFAULT_K)
        if k < 1 or k > self.max_k:
            raise ClientError(422, f"k must be in [1, {self.max_k}] (got {k})")
        text = params.get("labels", "false")
        labels = _BOOLEANS.get(text.lower())
        if labels is None:
            raise ClientError(400, f"labels must be true or false (got {text!r})")
        return k, labels

    def _path_id(self, text: str) -> Any:
        """The graph id a path segment names: ``"33"`` is int 33 where ids are."""
        is_int = _INTEGER.fullmatch(text) is not None
        if self.int_ids:
            return int(text) if is_int else text
        index = self.bundle.graph.id_index
        if text not in index and is_int and int(text) in index:
            return int(text)
        return text

    async def _body(self, request: Request) -> dict[str, Any]:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            raise _too_large(self.max_body_bytes, int(declared))
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _too_large(self.max_body_bytes, size)
            chunks.append(chunk)
        try:
            body = json.loads(b"".join(chunks))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ClientError(400, f"the body must be valid JSON ({error})") from None
        if not isinstance(body, dict):
            raise ClientError(
                422, f"the body must be a JSON object (got {_json_type(body)})"
            )
        return body

    def _check_batch(self, size: int, name: str) -> None:
        if size > self.max_batch:
            raise ClientError(
                413, f"{name} must hold at most {self.max_batch} entries (got {size})"
            )


@dataclass(eq=False)
class _Batch:
    """Queries of one ``k`` and ``labels`` value, answered by one search."""

    members: list[list[Any]] = field(default_factory=list)
    num_ids: int = 0
    results: list[Any] = field(default_factory=list)
    done: anyio.Event = field(default_factory=anyio.Event)

    def add(self, ids: list[Any]) -> int:
        self.members.append(ids)
        self.num_ids += len(ids)
        return len(self.members) - 1


class _Batcher:
    """Merges concurrent ``query`` calls into one search per free thread.

    A call that finds no open batch for its ``k`` and ``labels`` opens one and
    waits for a thread; calls arriving meanwhile join it. An idle server thus
    searches at once, and a busy one searches many ids per call, paying the
    per-call costs (thread hand-off, id lookup, faiss set-up) once per batch.
    """

    def __init__(
        self, parts: tuple[Any, ...], limiter: anyio.CapacityLimiter, max_ids: int
    ) -> None:
        self.parts = parts
        self.limiter = limiter
        self.max_ids = max_ids
        self.open: dict[tuple[int, bool], _Batch] = {}

    async def query(self, ids: list[Any], k: int, labels: bool) -> dict[Any, Any]:
        key = (k, labels)
        batch = self.open.get(key)
        if batch is not None and batch.num_ids + len(ids) <= self.max_ids:
            member = batch.add(ids)
            await batch.done.wait()
        else:
            batch = self.open[key] = _Batch()
            member = batch.add(ids)
            await self._search(key, batch)
        result = batch.results[member]
        if isinstance(result, Exception):
            raise result
        return result

    async def _search(self, key: tuple[int, bool], batch: _Batch) -> None:
        # Shielded: the batch's other members wait on this search.
        with anyio.CancelScope(shield=True):
            try:
                async with self.limiter:
                    if self.open.get(key) is batch:
                        del self.open[key]
                    batch.results = await anyio.to_thread.run_sync(
                        _single_threaded, self._answer, batch.members, *key
                    )
            finally:
                batch.done.set()

    def _answer(self, members: list[list[Any]], k: int, labels: bool) -> list[Any]:
        """Each member's answers, or the error its ids alone raise."""
        graph, embeddings, index = self.parts
        ids = [i for member in members for i in member]
        try:
            answers = query(graph, embeddings, index, ids, k, labels=labels)
        except (FastrecError, ValueError) as error:
            if len(members) == 1:
                return [error]
            return [self._answer([member], k, labels)[0] for member in members]
        return [{i: answers[i] for i in member} for member in members]


def _single_threaded(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``function`` with faiss on one OpenMP thread in this worker thread.

    The worker threads already search in parallel; OpenMP teams on top of them
    oversubscribe the CPUs, and a team waits for its slowest thread.
    """
    limit_search_threads(1)
    return function(*args, **kwargs)


def _routes(path: str, endpoint: Endpoint, methods: list[str]) -> list[Route]:
    """The route at ``path`` and at ``path`` with a trailing slash."""
    paths = [path] if path == "/" else [path, path + "/"]
    return [Route(p, endpoint, methods=methods) for p in paths]


def _guard(api_key: str | None) -> Callable[[Endpoint], Endpoint]:
    """Wrap endpoints so that they answer 401 without the right key."""
    if api_key is None:
        return lambda endpoint: endpoint
    expected = api_key.encode()

    def wrap(endpoint: Endpoint) -> Endpoint:
        async def guarded(request: Request) -> Response:
            if not hmac.compare_digest(_given_key(request).encode(), expected):
                raise ClientError(
                    401,
                    "a valid API key is required: send 'Authorization: Bearer "
                    "<key>' or 'X-API-Key: <key>'",
                )
            return await endpoint(request)

        return guarded

    return wrap


def _given_key(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer":
        return token.strip()
    return request.headers.get("x-api-key", "")


def _int_param(text: str | None, name: str, default: int) -> int:
    if text is None:
        return default
    if _INTEGER.fullmatch(text) is None:
        raise ClientError(400, f"{name} must be an integer (got {text!r})")
    return int(text)


def _field(body: dict[str, Any], name: str) -> Any:
    if name not in body:
        raise ClientError(422, f"the body must have a {name!r} field")
    return body[name]


def _array(values: Any, name: str) -> list[Any]:
    if not isinstance(values, list):
        raise ClientError(
            422, f"{name} must be a JSON array (got {_json_type(values)})"
        )
    return values


def _id_list(values: Any, name: str, *, nonempty: bool = False) -> list[Any]:
    """Check that ``values`` is a list of node ids (ints or strings)."""
    _array(values, name)
    if nonempty and not values:
        raise ClientError(422, f"{name} must hold at least one id (got [])")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ClientError(
                422,
                f"{name} must hold integers or strings (got {_json_type(value)} "
                f"{json.dumps(value)})",
            )
    return values


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    names = {
        dict: "an object",
        list: "an array",
        str: "a string",
        int: "an integer",
        float: "a number",
    }
    return names.get(type(value), type(value).__name__)


def _too_large(limit: int, size: int) -> ClientError:
    return ClientError(413, f"the body must be at most {limit} bytes (got {size})")


def _error(status: int, detail: str, **extra: Any) -> JSONResponse:
    phrase = _PHRASES.get(status, "Error")
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(
        {"error": phrase, "detail": detail, **extra}, status, headers=headers
    )


_PHRASES = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Content Too Large",
    422: "Unprocessable Content",
    500: "Internal Server Error",
}


async def _client_error(request: Request, exc: Exception) -> Response:
    error = cast(ClientError, exc)
    return _error(error.status, error.detail)


async def _unknown_node(request: Request, exc: Exception) -> Response:
    ids = [
        i.item() if isinstance(i, np.generic) else i
        for i in cast(UnknownNodeError, exc).ids
    ]
    return _error(404, str(exc), ids=ids)


async def _http_error(request: Request, exc: Exception) -> Response:
    exc = cast(HTTPException, exc)
    detail = f"no endpoint {request.method} {request.url.path}"
    if exc.status_code == 405:
        detail = f"{request.url.path} does not answer {request.method}"
    elif exc.status_code != 404:
        detail = str(exc.detail)
    return _error(exc.status_code, detail)


async def _server_error(request: Request, exc: Exception) -> Response:
    logger.error(
        "error answering %s %s", request.method, request.url.path, exc_info=exc
    )
    return _error(500, "the server failed to answer; see its log")


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name)
    if not text:
        return default
    if not text.isdigit():
        raise ValueError(f"${name} must be a positive integer (got {text!r})")
    return int(text)


@contextmanager
def _environment(settings: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the block, then restore them."""
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def openapi_schema(
    bundle: Bundle, limits: dict[str, int], *, keyed: bool
) -> dict[str, Any]:
    """The OpenAPI 3.1 description of ``create_app``'s endpoints and limits."""
    max_k, max_batch = limits["max_k"], limits["max_batch"]
    node_id = {"oneOf": [{"type": "integer"}, {"type": "string"}]}
    id_list = {"type": "array", "items": node_id, "maxItems": max_batch}
    params = [
        {
            "name": "k",
            "in": "query",
            "description": "neighbours per query",
            "schema": {
                "type": "integer",
                "minimum": 1,
                "maximum": max_k,
                "default": DEFAULT_K,
            },
        },
        {
            "name": "labels",
            "in": "query",
            "description": "also return each neighbour's label",
            "schema": {"type": "boolean", "default": False},
        },
    ]
    errors = {
        "400": "malformed JSON or query parameter",
        "401": "missing or wrong API key (when the server has one)",
        "404": "unknown node ids, named in the body's ids",
        "413": f"more than {max_batch} ids or a body over "
        f"{limits['max_body_bytes']} bytes",
        "422": f"wrong types or fields, or k outside [1, {max_k}]",
    }
    answer = {
        "description": "neighbours of each query, keyed by its id",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Answers"}}
        },
    }
    responses = {
        "200": answer,
        **{
            code: {
                "description": text,
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/Error"}
                    }
                },
            }
            for code, text in errors.items()
        },
    }

    def body(properties: dict[str, Any]) -> dict[str, Any]:
        return {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": list(properties),
                        "properties": properties,
                    }
                }
            },
        }

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "fastrec",
            "version": __version__,
            "description": (
                f"Nearest neighbours over {bundle.graph.num_nodes} nodes "
                f"({bundle.index.kind} index, {bundle.index.metric} distance, "
                "smaller is closer). Limits: k <= "
                f"{max_k}, at most {max_batch} ids per request, bodies up to "
                f"{limits['max_body_bytes']} bytes. Paths work with and without "
                "a trailing slash; ids containing '/' need POST /knn."
            ),
        },
        "x-limits": limits,
        "paths": {
            "/": {
                "get": {
                    "summary": "what the server holds",
                    "responses": {
                        "200": {
                            "description": "nodes, edges, dimension, metric, index, "
                            "version and limits"
                        }
                    },
                }
            },
            "/health": {
                "get": {
                    "summary": "liveness, with the worker's pid",
                    "security": [],
                    "responses": {"200": {"description": "ok"}},
                }
            },
            "/knn/{node_id}": {
                "get": {
                    "summary": "neighbours of one node",
                    "parameters": [
                        {
                            "name": "node_id",
                            "in": "path",
                            "required": True,
                            "description": "matched to the graph's id type: "
                            "33 finds integer node 33",
                            "schema": {"type": "string"},
                        },
                        *params,
                    ],
                    "responses": responses,
                }
            },
            "/knn": {
                "post": {
                    "summary": "neighbours of many nodes",
                    "parameters": params,
                    "requestBody": body({"ids": id_list}),
                    "responses": responses,
                }
            },
            "/knn_unseen": {
                "post": {
                    "summary": "neighbours of nodes outside the graph, embedded as "
                    "the mean of their neighbours' embeddings",
                    "parameters": params,
                    "requestBody": body(
                        {
                            "nodes": id_list,
                            "neighbors": {
                                "type": "array",
                                "maxItems": max_batch,
                                "items": {
                                    "type": "array",
                                    "items": node_id,
                                    "minItems": 1,
                                },
                            },
                        }
                    ),
                    "responses": responses,
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "this description",
                    "security": [],
                    "responses": {"200": {"description": "OpenAPI 3.1"}},
                }
            },
        },
        "components": {
            "schemas": {
                "Answers": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "required": ["neighbors", "distances"],
                        "properties": {
                            "neighbors": {"type": "array", "items": node_id},
                            "distances": {"type": "array", "items": {"type": "number"}},
                            "labels": {"type": "array"},
                        },
                    },
                },
                "Error": {
                    "type": "object",
                    "required": ["error", "detail"],
                    "properties": {
                        "error": {"type": "string"},
                        "detail": {"type": "string"},
                        "ids": {"type": "array", "items": node_id},
                    },
                },
            },
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
        "security": [{"bearer": []}, {"apiKey": []}] if keyed else [],
    }
