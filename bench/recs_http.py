"""Member recommendations over HTTP on loopback, beside a bare endpoint of the same framework.

Two uvicorn servers with the same settings (one worker, then two: ``--workers``)
are measured in the same run:

* Patron's app, ``GET /api/v1/recs/members/{key}?placement=home&k=10&price_max=20``:
  the real route: API-key authentication, A/B assignment, the model version's
  engine, serving rules (stock, price filter, already-bought exclusion) and
  reasons;
* Patron's app, ``GET /bare/{key}``: a route returning a precomputed list of ten
  items, matched first, through Patron's middleware (what the middleware costs);
* a plain FastAPI app with only that bare route: the framework's ceiling on this
  machine.

The load generator is wrk (Debian package ``wrk``), a separate process written
in C, so the load costs the server's cores little: keep-alive connections, each
sending its next request as soon as the previous answer is read, over the
members of the shop in turn. Reported: requests per second, p50 and p99 latency
(wrk's), at 50 and at 5 concurrent clients, per number of workers; any answer
other than 2xx fails the run, and the share of CPU time the hypervisor gave to
other guests meanwhile (steal, from /proc/stat) is printed beside it, with the
server's CPU time per answered request (its processes' user + system time from
/proc), which a slow host does not inflate as it does the rates. Each case is measured ``--rounds`` times, the
cases taking turns, and the median of each figure is reported beside every
round: on a shared host one slow spell would otherwise decide a figure.

Usage (a data directory with online-retail imported and built; a version is
trained and put on the ``home`` placement when it has none)::

    python bench/recs_http.py --home /path/to/home [--model itemknn] [--seconds 10] [--workers 1 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_ticks, machine, python, section, steal_share

PLACEMENT = "home"
BARE_ITEMS = [{"item_id": f"online-retail:{n}", "score": 1.0 - n / 100, "reason": "for_you"} for n in range(10)]


def make_app() -> object:
    """Patron's app plus a bare route matched before all others (uvicorn ``--factory``).

    The bare route goes through Patron's middleware (security headers, rate limits, audit capture) but
    none of its work: the difference from the plain app below is what the middleware costs.
    """
    from fastapi import FastAPI

    from patron.api.app import create_app

    app: FastAPI = create_app()

    @app.get("/bare/{member_key}", summary="A precomputed list")
    async def bare(member_key: str) -> dict[str, object]:
        return {"member_key": member_key, "items": BARE_ITEMS}

    app.router.routes.insert(0, app.router.routes.pop())
    return app


def make_plain_app() -> object:
    """A FastAPI app with nothing but the bare route: the framework's ceiling on this machine."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/bare/{member_key}")
    async def bare(member_key: str) -> dict[str, object]:
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


# wrk's script: each connection asks for the next path of the list (from a random start) with the API key,
# and the summary is printed as one JSON line at the end.
WRK_SCRIPT = """
local paths = {}
for line in io.lines(os.getenv("BENCH_PATHS")) do paths[#paths + 1] = line end
local key = os.getenv("BENCH_KEY")
local n = 0
init = function(args) math.randomseed(os.time()); n = math.random(1, #paths) end
request = function()
  n = n % #paths + 1
  local headers = {}
  if key and key ~= "" then headers["X-API-Key"] = key end
  return wrk.format("GET", paths[n], headers)
end
done = function(summary, latency, requests)
  io.write(string.format(
    '{"requests": %d, "seconds": %f, "p50_ms": %f, "p99_ms": %f, "non_2xx": %d, "errors": %d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def _tree_cpu(pid: int) -> float:
    """Seconds of CPU used so far by process ``pid`` and its descendants (a server and its workers), from /proc."""
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # the process ended meanwhile
            continue
        parents[int(stat.parent.name)] = int(fields[1])
        used[int(stat.parent.name)] = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    tree, grown = {pid}, True
    while grown:  # children, their children...
        found = {child for child, parent in parents.items() if parent in tree}
        grown = not found <= tree
        tree |= found
    return sum(used.get(member, 0.0) for member in tree)


def _measure(
    port: int, paths: list[str], key: str | None, clients: int, seconds: float, tmp: Path, server: int
) -> dict[str, float]:
    """One wrk run: ``clients`` keep-alive connections, each sending its next request when the answer is in."""
    (tmp / "paths.txt").write_text("\n".join(paths) + "\n")
    (tmp / "load.lua").write_text(WRK_SCRIPT)
    command = ["wrk", "-t1", f"-c{clients}", f"-d{seconds:g}s", "--timeout", "10s", "-s", str(tmp / "load.lua")]
    env = {**os.environ, "BENCH_PATHS": str(tmp / "paths.txt"), "BENCH_KEY": key or ""}
    ticks, cpu = cpu_ticks(), _tree_cpu(server)
    done = subprocess.run([*command, f"http://127.0.0.1:{port}"], check=True, capture_output=True, text=True, env=env)
    steal, cpu = steal_share(ticks, cpu_ticks()), _tree_cpu(server) - cpu
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    if result["non_2xx"] or result["errors"]:
        raise RuntimeError(f"{result['non_2xx']:.0f} answers not 2xx, {result['errors']:.0f} errors: {done.stdout}")
    result["rps"] = result["requests"] / result["seconds"]
    result["steal"] = steal
    result["cpu_ms"] = cpu * 1000 / max(result["requests"], 1)  # the server's CPU per answered request
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="A Patron data directory with online-retail built.")
    parser.add_argument("--model", default="itemknn")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Uvicorn workers, one run each.")
    parser.add_argument(
        "--rounds", type=int, default=3, help="Measurements of each case, taken in turn; the median is reported."
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--app", choices=["patron", "plain"], default="patron", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve(args.app, args.port, args.workers[0])
        return
    if args.home is None:
        parser.error("--home is required")
    print(f"machine: {machine()}")
    key, members = _prepare(args.home.resolve(), args.model)
    tmp = args.home.resolve() / "bench-tmp"
    tmp.mkdir(exist_ok=True)
    for workers in args.workers:
        _run(args.home.resolve(), workers, key, members, args.seconds, args.rounds, tmp)


def _run(home: Path, workers: int, key: str, members: list[str], seconds: float, rounds: int, tmp: Path) -> None:
    """Start a server with ``workers`` processes, warm every worker up, measure at 50 and 5 clients."""
    port, plain_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "PATRON_HOME": str(home),
        "PATRON_ENV": "development",
        "OPENBLAS_NUM_THREADS": "1",
        "PYTHONPATH": str(Path(__file__).resolve().parent),
    }
    servers = {
        app: subprocess.Popen(
            [python(), __file__, "--serve", "--app", app, "--port", str(at), "--workers", str(workers)], env=env
        )
        for app, at in (("patron", port), ("plain", plain_port))
    }
    try:
        _wait(port)
        _wait(plain_port)
        real = [f"/api/v1/recs/members/{m}?placement={PLACEMENT}&k=10&price_max=20" for m in members]
        bare = [f"/bare/{m}" for m in members]
        # loads the engine in every worker and warms caches (connections spread over the workers)
        _measure(port, real[:400], key, 10 * workers, 3.0, tmp, servers["patron"].pid)
        _measure(plain_port, bare[:400], None, 10 * workers, 1.0, tmp, servers["plain"].pid)
        cases = (
            ("plain FastAPI app, bare route", plain_port, bare, None, servers["plain"].pid),
            ("Patron app, bare route", port, bare, None, servers["patron"].pid),
            ("member recs + rules", port, real, key, servers["patron"].pid),
        )
        for clients in (50, 5):
            with section(f"{workers} worker(s), {clients} concurrent clients, {seconds:g} s each, {rounds} round(s)"):
                taken: dict[str, list[dict[str, float]]] = {label: [] for label, *_ in cases}
                for round_ in range(1, rounds + 1):  # the cases in turn, so a slow spell of the host hits them all
                    for label, at, paths, auth, pid in cases:
                        load = os.getloadavg()[0]
                        r = _measure(at, paths, auth, clients, seconds, tmp, pid)
                        taken[label].append(r)
                        print(
                            f"round {round_}  {label:32s} {r['rps']:8.0f} req/s   p50 {r['p50_ms']:6.2f} ms"
                            f"   p99 {r['p99_ms']:7.2f} ms   server CPU {r['cpu_ms']:.2f} ms/request"
                            f"   ({r['requests']:.0f} requests, load average {load:.2f}, steal {r['steal']:.0%})",
                            flush=True,
                        )
                for label, runs in taken.items():
                    rps, p50, p99, cpu = (
                        statistics.median(r[f] for r in runs) for f in ("rps", "p50_ms", "p99_ms", "cpu_ms")
                    )
                    print(
                        f"median   {label:32s} {rps:8.0f} req/s   p50 {p50:6.2f} ms   p99 {p99:7.2f} ms"
                        f"   server CPU {cpu:.2f} ms/request",
                        flush=True,
                    )
    finally:
        for server in servers.values():
            server.terminate()
        for server in servers.values():
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()


def _serve(app: str, port: int, workers: int) -> None:
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
        "recs_http:make_plain_app" if app == "plain" else "recs_http:make_app",
        factory=True,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
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
