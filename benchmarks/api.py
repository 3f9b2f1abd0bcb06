"""Latency and throughput of ``fastrec serve`` on a Reddit-sized bundle.

Builds (once, then reuses) a synthetic bundle of 232,965 nodes x 128 dims with
an HNSW index, starts ``fastrec serve`` on it in a subprocess, and loads it
from another process: ``wrk`` when installed, else an asyncio client. Each
request is ``GET /knn/{random id}?k=10``. Prints p50/p99 latency, requests per
second, the error count and the server's CPU time per request at each
concurrency (the last is steadier than the rest on a shared machine).

    .venv/bin/python benchmarks/api.py                 # 20,000 + 100,000 requests
    .venv/bin/python benchmarks/api.py --requests 2000 --client python
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import psutil

import fastrec
from fastrec.bundle import read_manifest
from fastrec.errors import BundleError

WRK_SCRIPT = """
local nodes = tonumber(os.getenv("FASTREC_BENCH_NODES"))
local k = os.getenv("FASTREC_BENCH_K")
local limit = tonumber(os.getenv("FASTREC_BENCH_REQUESTS"))
local marker = os.getenv("FASTREC_BENCH_MARKER")
local done = 0
math.randomseed(tonumber(os.getenv("FASTREC_BENCH_SEED")))

request = function()
  return wrk.format("GET", "/knn/" .. math.random(0, nodes - 1) .. "?k=" .. k)
end

-- wrk runs for its whole -d; at the limit this thread stops and leaves a
-- marker, and the benchmark interrupts wrk, which then reports.
response = function(status, headers, body)
  done = done + 1
  if done == limit then
    io.open(marker, "w"):close()
    wrk.thread:stop()
  end
end
"""


def main() -> int:
    args = _arguments()
    print(f"bundle: {_ensure_bundle(args.bundle, args.nodes, args.dim, args.seed)}")
    client = _choose_client(args.client)
    port = args.port or _free_port()
    server = _start_server(args.bundle, port, args.workers)
    rows = []
    try:
        _wait_until_up(port, server)
        print(
            f"server: pid {server.pid}, {args.workers} worker(s), port {port}; "
            f"client: {client}; {os.cpu_count()} CPUs"
        )
        _run_load(client, port, args, 1, min(2000, args.requests), seed=99)  # warm up
        for concurrency in args.concurrency:
            count = args.requests if concurrency > 1 else args.requests_single
            before = _cpu_seconds(server.pid)
            row = _run_load(client, port, args, concurrency, count, seed=concurrency)
            row["cpu_ms"] = (_cpu_seconds(server.pid) - before) * 1e3 / row["requests"]
            rows.append(row)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(60)
    _print_table(rows)
    return 0 if all(row["errors"] == 0 for row in rows) else 1


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--bundle", type=Path, default=Path(tempfile.gettempdir()) / "fastrec-bench-api"
    )
    parser.add_argument("--nodes", type=int, default=232_965)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--port", type=int, default=0, help="default: a free one")
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument(
        "--requests",
        type=int,
        default=100_000,
        help="requests at each concurrency above 1",
    )
    parser.add_argument(
        "--requests-single", type=int, default=20_000, help="requests at concurrency 1"
    )
    return parser.parse_args()


def _ensure_bundle(path: Path, num_nodes: int, dim: int, seed: int) -> str:
    """Reuse the bundle at ``path`` if it has the right size, else build it."""
    try:
        manifest = read_manifest(path)
        counts = manifest["counts"]
        if (counts["nodes"], counts["dim"], manifest["index"]["kind"]) == (
            num_nodes,
            dim,
            "hnsw",
        ):
            return f"{path} (reused)"
    except BundleError:
        pass
    if path.exists():
        shutil.rmtree(path)
    start = time.perf_counter()
    _build_bundle(path, num_nodes, dim, seed)
    return f"{path} (built in {time.perf_counter() - start:.0f} s)"


def _build_bundle(path: Path, num_nodes: int, dim: int, seed: int) -> None:
    """Community graph, small untrained encoder, clustered embeddings, HNSW."""
    nodes, src, dst, labels = fastrec.synthetic_communities(
        num_nodes, 4 * num_nodes, 41, seed=seed
    )
    graph = fastrec.build_graph(nodes, src, dst, labels=labels)
    config = fastrec.EncoderConfig(embedding_dim=dim, hidden_dim=32, feature_dim=16)
    encoder = fastrec.init_encoder(config, graph, seed=seed)
    # The embeddings are synthetic (one cluster per community), not the encoder's:
    # the server's cost does not depend on where they came from.
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(41, dim)).astype(np.float32)
    embeddings = centres[labels] + rng.normal(size=(num_nodes, dim)).astype(np.float32)
    index = fastrec.build_index(embeddings, graph, kind="hnsw", seed=seed)
    fastrec.save(path, graph=graph, encoder=encoder, embeddings=embeddings, index=index)


def _choose_client(choice: str) -> str:
    if choice == "auto":
        return "wrk" if shutil.which("wrk") else "python"
    if choice == "wrk" and not shutil.which("wrk"):
        raise SystemExit("--client wrk: wrk is not installed (apt-get install wrk)")
    return choice


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start_server(bundle: Path, port: int, workers: int) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "fastrec.cli",
        "serve",
        str(bundle),
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    return subprocess.Popen(command)


def _wait_until_up(port: int, server: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with status {server.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the server did not answer within {timeout} s")


def _run_load(
    client: str,
    port: int,
    args: argparse.Namespace,
    concurrency: int,
    count: int,
    seed: int,
) -> dict[str, float]:
    if client == "wrk":
        return _run_wrk(port, args, concurrency, count, seed)
    return asyncio.run(_run_python(port, args, concurrency, count, seed))


def _run_wrk(
    port: int, args: argparse.Namespace, concurrency: int, count: int, seed: int
) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as work:
        script, marker = Path(work) / "knn.lua", Path(work) / "done"
        script.write_text(WRK_SCRIPT)
        env = {
            **os.environ,
            "FASTREC_BENCH_NODES": str(args.nodes),
            "FASTREC_BENCH_K": str(args.k),
            "FASTREC_BENCH_REQUESTS": str(count),
            "FASTREC_BENCH_SEED": str(seed),
            "FASTREC_BENCH_MARKER": str(marker),
        }
        command = [
            "wrk",
            "-t1",
            f"-c{concurrency}",
            "-d600s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}",
        ]
        wrk = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
        while not marker.exists() and wrk.poll() is None:
            time.sleep(0.005)
        wrk.send_signal(signal.SIGINT)
        report, _ = wrk.communicate(timeout=60)
    return _parse_wrk(report, concurrency)


def _parse_wrk(report: str, concurrency: int) -> dict[str, float]:
    done = re.search(r"(\d+) requests in ([\d.]+)(\w+)", report)
    if done is None:
        raise SystemExit(f"cannot read wrk's report:\n{report}")
    seconds = float(done.group(2)) * {"ms": 1e-3, "s": 1.0, "m": 60.0}[done.group(3)]
    errors = sum(
        int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", report)
    )
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", report)
    errors += int(bad.group(1)) if bad else 0
    return {
        "concurrency": concurrency,
        "requests": int(done.group(1)),
        "errors": errors,
        "p50": _wrk_latency(report, "50%"),
        "p99": _wrk_latency(report, "99%"),
        "rps": int(done.group(1)) / seconds,
    }


def _wrk_latency(report: str, percentile: str) -> float:
    """A latency of wrk's distribution, in milliseconds."""
    found = re.search(rf"^\s*{percentile}\s+([\d.]+)(us|ms|s)\s*$", report, re.M)
    if found is None:
        raise SystemExit(f"no {percentile} latency in wrk's report:\n{report}")
    return float(found.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[found.group(2)]


async def _run_python(
    port: int, args: argparse.Namespace, concurrency: int, count: int, seed: int
) -> dict[str, float]:
    """Keep-alive HTTP/1.1 over raw sockets, ``concurrency`` connections."""
    rng = np.random.default_rng(seed)
    targets = iter(rng.integers(0, args.nodes, count).tolist())
    latencies: list[float] = []
    errors = [0]

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for node in targets:
            request = f"GET /knn/{node}?k={args.k} HTTP/1.1\r\nHost: x\r\n\r\n"
            start = time.perf_counter()
            writer.write(request.encode())
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            errors[0] += not head.startswith(b"HTTP/1.1 200")
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    millis = np.array(latencies) * 1e3
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "errors": errors[0] + count - len(latencies),
        "p50": float(np.percentile(millis, 50)),
        "p99": float(np.percentile(millis, 99)),
        "rps": len(latencies) / elapsed,
    }


def _cpu_seconds(pid: int) -> float:
    """CPU time of the server and its worker processes so far."""
    server = psutil.Process(pid)
    processes = [server, *server.children(recursive=True)]
    return sum(sum(p.cpu_times()[:2]) for p in processes)


def _print_table(rows: list[dict[str, float]]) -> None:
    print(
        "\n| concurrency | requests | errors | p50 ms | p99 ms | requests/s "
        "| server CPU ms/request |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(
            f"| {row['concurrency']} | {row['requests']:,} | {row['errors']} | "
            f"{row['p50']:.2f} | {row['p99']:.2f} | {row['rps']:,.0f} "
            f"| {row['cpu_ms']:.2f} |"
        )


if __name__ == "__main__":
    raise SystemExit(main())
