"""Member recommendations over HTTP on loopback, beside a bare endpoint of the same framework.

A uvicorn server (one worker, then two: ``--workers``) serves both, in the same run:

* ``GET /api/v1/recs/members/{key}?placement=home&k=10&price_max=20``: the real
  route: API-key authentication, A/B assignment, the model version's engine,
  serving rules (stock, price filter, already-bought exclusion) and reasons;
* ``GET /bare/{key}``: a FastAPI route returning a precomputed list of ten
  items (the ceiling for this framework on this machine).

The load generator is a separate process: asyncio clients on keep-alive
connections, each sending its next request as soon as the previous answer is
read, over the members of the shop in turn. Reported: requests per second, p50
and p99 latency, at 50 and at 5 concurrent clients, per number of workers.

Usage (a data directory with online-retail imported and built; a version is
trained and put on the ``home`` placement when it has none)::

    python bench/recs_http.py --home /path/to/home [--model itemknn] [--seconds 10] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, python, section

PLACEMENT = "home"
BARE_ITEMS = [{"item_id": f"online-retail:{n}", "score": 1.0 - n / 100, "reason": "for_you"} for n in range(10)]


def make_app() -> object:
    """The app the server process runs: Patron plus the bare route (uvicorn ``--factory``)."""
    from fastapi import FastAPI

    from patron.api.app import create_app

    app: FastAPI = create_app()

    @app.get("/bare/{member_key}", summary="A precomputed list (the framework's ceiling)")
    def bare(member_key: str) -> dict[str, object]:
        return {"member_key": member_key, "items": BARE_ITEMS}

    return app


def _prepare(home: Path, model: str) -> tuple[str, list[str]]:
    """An API key, a ready version on the placement, and the member keys to ask for."""
    from sqlalchemy import select

    from patron.auth.schemas import ApiKeyCreate
    from patron.auth.service import create_api_key
    from patron.members.models import MemberIdentity
    from patron.recs import registry
    from patron.runtime import Runtime
    from patron.settings import PLACEHOLDER_MASTER_KEY, Settings

    runtime = Runtime(Settings(home=home, env="development", master_key=PLACEHOLDER_MASTER_KEY))
    try:
        placements = {p.name: p for p in registry.list_placements(runtime.store)}
        if PLACEMENT not in placements:
            began = time.perf_counter()
            version = registry.train(runtime, model, {}, "bench")
            print(f"trained {version.id} in {time.perf_counter() - began:.1f} s", flush=True)
            registry.activate(runtime.store, PLACEMENT, version.id, "bench", kind="member")
        key = create_api_key(
            runtime.store, ApiKeyCreate(name=f"bench-{os.getpid()}", role="support", scopes=["recs:read"]), None
        ).key
        with runtime.store.session() as sess:
            members = list(sess.scalars(select(MemberIdentity.member_key).order_by(MemberIdentity.member_key)))
        return key, members
    finally:
        runtime.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _client(port: int, paths: list[str], start: int, headers: str, until: float, out: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    n = start
    while time.perf_counter() < until:
        path = paths[n % len(paths)]
        n += 1
        began = time.perf_counter()
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length"))
        await reader.readexactly(length)
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(head.decode(errors="replace"))
        out.append(time.perf_counter() - began)
    writer.close()


async def _load(port: int, paths: list[str], headers: str, clients: int, seconds: float) -> dict[str, float]:
    warm: list[float] = []
    await asyncio.gather(
        *(_client(port, paths, c * 97, headers, time.perf_counter() + 1.0, warm) for c in range(clients))
    )
    latencies: list[float] = []
    began = time.perf_counter()
    until = began + seconds
    await asyncio.gather(*(_client(port, paths, c * 131, headers, until, latencies) for c in range(clients)))
    elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
    }


def _generator(args: argparse.Namespace) -> None:
    """The load-generating process: one measurement, printed as JSON."""
    paths = json.loads(Path(args.paths).read_text())
    headers = f"X-API-Key: {args.key}\r\n" if args.key else ""
    print(json.dumps(asyncio.run(_load(args.port, paths, headers, args.clients, args.seconds))))


def _measure(port: int, paths: list[str], key: str | None, clients: int, seconds: float, tmp: Path) -> dict[str, float]:
    file = tmp / "paths.json"
    file.write_text(json.dumps(paths))
    command = [python(), __file__, "--generate", "--port", str(port), "--paths", str(file)]
    command += ["--clients", str(clients), "--seconds", str(seconds)] + (["--key", key] if key else [])
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    result: dict[str, float] = json.loads(done.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="A Patron data directory with online-retail built.")
    parser.add_argument("--model", default="itemknn")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Uvicorn workers, one run each.")
    parser.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--paths", help=argparse.SUPPRESS)
    parser.add_argument("--clients", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        _generator(args)
        return
    if args.serve:
        _serve(args.port, args.workers[0])
        return
    if args.home is None:
        parser.error("--home is required")
    print(f"machine: {machine()}")
    key, members = _prepare(args.home.resolve(), args.model)
    tmp = args.home.resolve() / "bench-tmp"
    tmp.mkdir(exist_ok=True)
    for workers in args.workers:
        _run(args.home.resolve(), workers, key, members, args.seconds, tmp)


def _run(home: Path, workers: int, key: str, members: list[str], seconds: float, tmp: Path) -> None:
    """Start a server with ``workers`` processes, warm every worker up, measure at 50 and 5 clients."""
    port = _free_port()
    env = {
        **os.environ,
        "PATRON_HOME": str(home),
        "PATRON_ENV": "development",
        "OPENBLAS_NUM_THREADS": "1",
        "PYTHONPATH": str(Path(__file__).resolve().parent),
    }
    server = subprocess.Popen([python(), __file__, "--serve", "--port", str(port), "--workers", str(workers)], env=env)
    try:
        _wait(port)
        real = [f"/api/v1/recs/members/{m}?placement={PLACEMENT}&k=10&price_max=20" for m in members]
        bare = [f"/bare/{m}" for m in members]
        # loads the engine in every worker and warms caches (connections spread over the workers)
        _measure(port, real[:400], key, 10 * workers, 3.0, tmp)
        for clients in (50, 5):
            with section(f"{workers} worker(s), {clients} concurrent clients, {seconds:g} s each"):
                for label, paths, auth in (
                    ("bare FastAPI, precomputed list", bare, None),
                    ("member recs + rules", real, key),
                ):
                    load = os.getloadavg()[0]
                    r = _measure(port, paths, auth, clients, seconds, tmp)
                    print(
                        f"{label:32s} {r['rps']:8.0f} req/s   p50 {r['p50_ms']:6.2f} ms   p99 {r['p99_ms']:6.2f} ms"
                        f"   ({r['requests']:.0f} requests, load average {load:.2f} before)",
                        flush=True,
                    )
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def _serve(port: int, workers: int) -> None:
    """The server process: uvicorn with ``workers`` processes on a listening socket made here.

    For several workers uvicorn binds the socket itself with protocol 0, so asyncio leaves Nagle's algorithm
    on for every connection and each keep-alive response waits about 40 ms for the client's delayed ACK
    (uvicorn issue 3149); a socket made with IPPROTO_TCP gets TCP_NODELAY, as the one-worker path does.
    """
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.set_inheritable(True)
    config = uvicorn.Config(
        "recs_http:make_app", factory=True, port=port, workers=workers, log_level="warning", access_log=False
    )
    if workers == 1:
        uvicorn.Server(config).run(sockets=[sock])
    else:
        Multiprocess(config, sockets=[sock]).run()


def _wait(port: int) -> None:
    deadline = time.time() + 300  # importing the app takes a while on a busy machine
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the server did not start")


if __name__ == "__main__":
    main()
