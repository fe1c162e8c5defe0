"""Load benchmark: the served app on PostgreSQL under concurrent readers while solves run.

Run with ``make bench-load`` (writes the "## Load" section of ``docs/benchmarks.md``) or
``.venv/bin/python bench/load.py --quick`` for a short run.

What it does:

1. starts a throw-away PostgreSQL server on loopback in a temporary directory (the same
   helper the tests use), migrates it and imports the bundled price snapshot;
2. through the services: a few users with browser sessions, a workspace with API keys,
   designs from the bundled examples with solved plans, and two designs whose solves take
   longer than the whole run;
3. serves the app with ``archplan serve`` (production settings, embedded job runner with two
   workers) as a subprocess, and queues the two long solves so the runner is busy throughout;
4. drives it with ``httpx.AsyncClient``: closed-loop clients (each sends its next request when
   the previous one is answered) reading plans through the API (``GET /api/v1/plans/{id}``
   with a key), browsing plan pages (``GET /designs/{id}/plans/{id}`` with a session cookie),
   and a mix of both with job polling (``GET /api/v1/jobs/{id}``);
5. runs the same load against a bare FastAPI endpoint (``{"status": "ok"}``, served by
   uvicorn the same way, while the solves still run): the ratio of the two is the app's own
   cost;
6. reports requests/s and p50/p95/p99 latency seen by the clients, the app's own time per
   request (from its request log), and where the CPU went (app, solves, PostgreSQL, load
   generator) during each phase.

The per-key API rate limit is raised for the run (the load would otherwise be answered 429).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import secrets
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from fastapi import FastAPI

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent

# --------------------------------------------------------------------------- the bare endpoint

bare_app = FastAPI()


@bare_app.get("/bare")
async def bare() -> dict[str, str]:
    return {"status": "ok"}


# --------------------------------------------------------------------------- preparing the data

HARD_CLASSES, HARD_MONTHS = 3, 60  # the solver benchmark's hardest case: runs to its time limit


@dataclass
class Prepared:
    sessions: list[str]
    api_keys: list[str]
    plans: list[tuple[int, int]]  # (design id, plan id) of solved plans
    plan_names: list[str]
    hard_designs: list[int]
    jobs: list[int] = field(default_factory=list)  # the long solves, once queued


def prepare(url: str, users: int, keys: int, examples: list[str]) -> Prepared:
    sys.path.insert(0, str(BENCH))
    from solver import make_spec  # bench/solver.py: the solver benchmark's specs
    from sqlmodel import Session

    from app.db import make_engine
    from app.migrations import upgrade
    from app.services import accounts as acc
    from app.services import catalog as catalog_svc
    from app.services import designs as design_svc

    upgrade(url)
    engine = make_engine(url)
    with Session(engine) as s:
        catalog_svc.ensure_bundled_snapshot(s)
        ws = design_svc.get_or_create_workspace(s)
        sessions = []
        for i in range(users):
            user = acc.create_user(s, f"load{i}@example.com", secrets.token_urlsafe(16), scrypt_n=2**10)
            acc.add_member(s, ws.id, user.email, "viewer" if i else "admin")
            sessions.append(acc.start_session(s, user))
        api_keys = [acc.create_api_key(s, ws.id, f"load client {i}", ["read"])[0] for i in range(keys)]
        plans, names = [], []
        for example in examples:
            design = design_svc.create_design_from_example(s, ws.id, example)
            t0 = time.perf_counter()
            row = design_svc.plan_design(s, design)
            print(f"  planned {design.name!r}: {row.status} in {time.perf_counter() - t0:.1f} s", flush=True)
            plans.append((design.id, row.id))
            names.append(design.name)
        hard = [design_svc.create_design(s, ws.id, make_spec(HARD_CLASSES, HARD_MONTHS), f"Long solve {i + 1}").id
                for i in range(2)]
    engine.dispose()
    return Prepared(sessions=sessions, api_keys=api_keys, plans=plans, plan_names=names, hard_designs=hard)


def queue_long_solves(url: str, prepared: Prepared, time_limit_s: float) -> None:
    from sqlmodel import Session

    from app.db import make_engine
    from app.models import Design
    from app.services import designs as design_svc

    engine = make_engine(url)
    with Session(engine) as s:
        for design_id in prepared.hard_designs:
            job, _created = design_svc.enqueue_plan(s, s.get(Design, design_id), time_limit_s=time_limit_s)
            prepared.jobs.append(job.id)
    engine.dispose()


def job_states(url: str, job_ids: list[int]) -> list[str]:
    from sqlmodel import Session

    from app.db import make_engine
    from app.models import Job

    engine = make_engine(url)
    with Session(engine) as s:
        states = [s.get(Job, j).status for j in job_ids]
    engine.dispose()
    return states


# --------------------------------------------------------------------------- processes and CPU


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(cmd: list[str], env: dict[str, str], port: int, log: Path, ready: str = "/healthz") -> subprocess.Popen:
    out = log.open("ab")
    proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
    deadline = time.monotonic() + 60
    import httpx

    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}; see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}{ready}", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    stop(proc)
    raise RuntimeError(f"server did not answer {ready} within 60 s; see {log}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, 15)
            proc.wait(15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, 9)
            except ProcessLookupError:
                pass
            proc.wait(5)


_TICK = os.sysconf("SC_CLK_TCK")


def descendants(root: int) -> list[tuple[int, str]]:
    """Every process below ``root`` as (pid, start time): the app's solve processes and the
    process they are forked from."""
    table: dict[int, tuple[int, str]] = {}
    for entry in os.listdir("/proc"):
        try:
            raw = Path(f"/proc/{entry}/stat").read_text() if entry.isdigit() else ""
        except OSError:
            continue
        if raw:
            fields = raw[raw.rindex(")") + 2:].split()
            table[int(entry)] = (int(fields[1]), fields[19])
    found, frontier = [], {root}
    while frontier:
        frontier = {pid for pid, (ppid, _start) in table.items() if ppid in frontier}
        found += [(pid, table[pid][1]) for pid in frontier]
    return found


def renice_descendants(root: int, nice: int) -> int:
    """Lower the CPU priority of every process below ``root``; how many there were."""
    procs = descendants(root)
    for pid, _start in procs:
        try:
            os.setpriority(os.PRIO_PROCESS, pid, nice)
        except (ProcessLookupError, PermissionError):
            pass
    return len(procs)


def kill_leftovers(procs: list[tuple[int, str]]) -> None:
    """Kill those of ``procs`` (pid, start time) still running: solves the stopped app left behind."""
    for pid, start in procs:
        try:
            raw = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2:].split()
        if fields[19] == start and fields[0] != "Z":
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds used by the process itself)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK


def _reaped(pid: int) -> float:
    """CPU seconds of the finished children that ``pid`` has waited for."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = raw[raw.rindex(")") + 2:].split()
    return (int(fields[13]) + int(fields[14])) / _TICK


def cpu_snapshot(groups: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far: each group's root process, and (``<name> children``) its descendants."""
    table: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))) is not None:
            table[int(entry)] = st
    out: dict[str, float] = {}
    for name, root in groups.items():
        if root == os.getpid():
            t = os.times()
            out[name] = t.user + t.system
            continue
        own = table.get(root, (0, 0.0))[1]
        descendants, frontier = 0.0, {root}
        while frontier:
            nxt = {pid for pid, (ppid, _) in table.items() if ppid in frontier}
            descendants += sum(table[p][1] for p in nxt)
            frontier = nxt
        out[name] = own
        out[f"{name} children"] = descendants + _reaped(root)
    out["machine"] = _machine_busy()
    return out


def _machine_busy() -> float:
    """CPU seconds the whole machine spent busy (all cores) since boot."""
    parts = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in parts]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / _TICK


# --------------------------------------------------------------------------- load


@dataclass
class Req:
    kind: str
    path: str
    headers: dict[str, str]


@dataclass
class PhaseResult:
    name: str
    clients: int
    seconds: float
    pace: float | None
    latencies: dict[str, list[float]]  # kind -> seconds of each successful request
    errors: dict[str, dict[str, int]]  # kind -> {status or exception name: count}
    server_ms: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    solves_running: str = ""


async def run_phase(name: str, base_url: str, clients: int, duration: float, warmup: float,
                    make_request, on_measure_start=None, on_measure_end=None, pace: float | None = None) -> PhaseResult:
    """``clients`` concurrent clients for ``warmup`` + ``duration`` seconds, measured in the second
    part: closed loop (the next request as soon as the last is answered) or, with ``pace``, one
    request every ``pace`` seconds per client (late ones are sent at once, without catching up)."""
    import httpx

    latencies: dict[str, list[float]] = {}
    errors: dict[str, dict[str, int]] = {}
    window: dict[str, float] = {}

    # A client of its own per task, with one keep-alive connection, like a browser or an API
    # client (one shared pool with many waiters costs the load generator much CPU); made before
    # the clock starts, sharing one TLS context (plain HTTP here, but each client would load one).
    tls = ssl.create_default_context()
    https = [httpx.AsyncClient(base_url=base_url, timeout=30.0, verify=tls,
                               limits=httpx.Limits(max_connections=1, max_keepalive_connections=1))
             for _ in range(clients)]

    async def client(i: int, end: float) -> None:
        http = https[i]
        rng = random.Random(i)
        due = time.perf_counter() + (rng.uniform(0, pace) if pace else 0.0)
        while True:
            if pace:
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
            if (now := time.perf_counter()) >= end:
                break
            due = max(due + (pace or 0.0), now)
            req = make_request(rng, i)
            t0 = time.perf_counter()
            try:
                r = await http.get(req.path, headers=req.headers)
                outcome = None if r.status_code == 200 else str(r.status_code)
            except httpx.HTTPError as exc:
                outcome = exc.__class__.__name__
            t1 = time.perf_counter()
            if "start" in window and window["start"] <= t1 <= window.get("end", float("inf")):  # answered in it
                if outcome is None:
                    latencies.setdefault(req.kind, []).append(t1 - t0)
                else:
                    bucket = errors.setdefault(req.kind, {})
                    bucket[outcome] = bucket.get(outcome, 0) + 1

    start = time.perf_counter()
    end = start + warmup + duration
    tasks = [asyncio.create_task(client(i, end)) for i in range(clients)]
    await asyncio.sleep(warmup)
    if on_measure_start:
        on_measure_start()
    window["start"] = time.perf_counter()
    await asyncio.sleep(duration)
    window["end"] = time.perf_counter()
    extra = on_measure_end() if on_measure_end else None
    await asyncio.gather(*tasks)
    for http in https:
        await http.aclose()
    result = PhaseResult(name=name, clients=clients, seconds=window["end"] - window["start"], pace=pace,
                         latencies=latencies, errors=errors)
    if extra:
        result.server_ms, result.cpu = extra
    return result


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, int(round(q / 100 * len(ordered) + 0.5)) - 1))
    return ordered[k]


# --------------------------------------------------------------------------- server-side times

_LOG_LINE = re.compile(r"archplan\.http (GET|POST) (\S+) (\d{3}) ([\d.]+)ms")
_KINDS = [("plan API", re.compile(r"^/api/v1/plans/\d+$")), ("plan page", re.compile(r"^/designs/\d+/plans/\d+$")),
          ("job poll", re.compile(r"^/api/v1/jobs/\d+$"))]


def server_times(log: Path, start: int, end: int) -> dict[str, list[float]]:
    with log.open("rb") as fh:
        fh.seek(start)
        chunk = fh.read(end - start).decode("utf-8", "replace")
    out: dict[str, list[float]] = {}
    for m in _LOG_LINE.finditer(chunk):
        for kind, rx in _KINDS:
            if rx.match(m.group(2)):
                out.setdefault(kind, []).append(float(m.group(4)))
    return out


# --------------------------------------------------------------------------- the run


@dataclass
class Run:
    phases: list[PhaseResult]
    plan_api_available: bool
    settings: dict[str, str]
    prepared: Prepared
    load_avg_before: str
    job_states_after: list[str]
    plan_bytes: int
    page_bytes: int
    profile: dict | None = None


def bench(args) -> Run:
    sys.path.insert(0, str(ROOT))
    import httpx

    from tests.pg import PostgresServer

    workdir = Path(tempfile.mkdtemp(prefix="archplan-load-"))
    print(f"PostgreSQL in {workdir} …", flush=True)
    pg = PostgresServer.start()
    app_proc = bare_proc = None
    try:
        url = pg.create_database("load")
        examples = ["llm-finetune-hipaa", "research-burst-deadline"] if args.quick else \
            ["llm-finetune-hipaa", "research-burst-deadline", "vision-growing-inference", "eu-regulated-private"]
        print("Preparing data (migrations, bundled prices, users, keys, designs, plans) …", flush=True)
        prepared = prepare(url, users=5, keys=5, examples=examples)

        phases_planned = 2 + 4 * len(args.clients) + 4 + 2
        total_s = phases_planned * (args.duration + args.warmup) + 120
        port, bare_port = free_port(), free_port()
        settings = {
            "ARCHPLAN_ENVIRONMENT": "production",
            "ARCHPLAN_SECRET_KEY": secrets.token_urlsafe(48),
            "ARCHPLAN_DATABASE_URL": url,
            "ARCHPLAN_LOG_LEVEL": "INFO",
            "ARCHPLAN_JOB_WORKERS": "2",
            "ARCHPLAN_RATE_LIMIT_PER_MINUTE": "100000000",
        }
        env = {**os.environ, **settings}
        app_log, bare_log = workdir / "app.log", workdir / "bare.log"
        app_proc = start_server([str(Path(sys.executable).with_name("archplan")), "serve", "--host", "127.0.0.1",
                                 "--port", str(port)], env, port, app_log)
        bare_proc = start_server([sys.executable, "-m", "uvicorn", "--app-dir", str(BENCH), "load:bare_app",
                                  "--host", "127.0.0.1", "--port", str(bare_port), "--log-level", "info"],
                                 {**os.environ}, bare_port, bare_log, ready="/bare")
        base, bare_base = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{bare_port}"

        paths = httpx.get(f"{base}/openapi.json", timeout=10).json()["paths"]
        plan_api = "/api/v1/plans/{plan_id}" in paths
        jobs_api = "/api/v1/jobs/{job_id}" in paths

        queue_long_solves(url, prepared, time_limit_s=total_s)
        deadline = time.monotonic() + 30
        while job_states(url, prepared.jobs) != ["running", "running"] and time.monotonic() < deadline:
            time.sleep(0.5)
        print(f"Long solves: {job_states(url, prepared.jobs)} (time limit {total_s:.0f} s)", flush=True)

        did, pid = prepared.plans[0]
        key_headers = [{"Authorization": f"Bearer {k}"} for k in prepared.api_keys]
        cookie_headers = [{"Cookie": f"archplan_session={t}"} for t in prepared.sessions]
        # Check every kind of request once, outside the measurements.
        checks = {
            "plan API": httpx.get(f"{base}/api/v1/plans/{pid}", headers=key_headers[0], timeout=30) if plan_api else None,
            "plan page": httpx.get(f"{base}/designs/{did}/plans/{pid}", headers=cookie_headers[0], timeout=30),
            "job poll": httpx.get(f"{base}/api/v1/jobs/{prepared.jobs[0]}", headers=key_headers[0], timeout=30)
            if jobs_api else None,
        }
        for kind, r in checks.items():
            if r is not None and r.status_code != 200:
                raise RuntimeError(f"{kind} answered {r.status_code} before the load: {r.text[:300]}")
        plan_bytes = len(checks["plan API"].content) if checks["plan API"] is not None else 0
        page_bytes = len(checks["plan page"].content)

        def plan_api_req(rng, i):
            d, p = prepared.plans[rng.randrange(len(prepared.plans))]
            return Req("plan API", f"/api/v1/plans/{p}", key_headers[i % len(key_headers)])

        def plan_page_req(rng, i):
            d, p = prepared.plans[rng.randrange(len(prepared.plans))]
            return Req("plan page", f"/designs/{d}/plans/{p}", cookie_headers[i % len(cookie_headers)])

        def job_poll_req(rng, i):
            return Req("job poll", f"/api/v1/jobs/{prepared.jobs[rng.randrange(2)]}", key_headers[i % len(key_headers)])

        def mixed_req(rng, i):
            # 40 % browsers on plan pages, 40 % API clients reading plans, 20 % polling jobs.
            role = i % 5
            if role < 2:
                return plan_page_req(rng, i)
            if role < 4 or not jobs_api:
                return plan_api_req(rng, i) if plan_api else plan_page_req(rng, i)
            return job_poll_req(rng, i)

        def bare_req(rng, i):
            return Req("bare endpoint", "/bare", {})

        groups = {"app": app_proc.pid, "postgres": _postmaster_pid(pg), "load generator": os.getpid(),
                  "bare": bare_proc.pid}
        phases: list[PhaseResult] = []
        load_avg = " / ".join(f"{x:.2f}" for x in os.getloadavg())

        def measured(name, target, clients, maker, log, pace=None):
            marks: dict[str, object] = {}

            def begin():
                marks["log"] = log.stat().st_size
                marks["cpu"] = cpu_snapshot(groups)

            def finish():
                cpu_end = cpu_snapshot(groups)
                cpu = {k: cpu_end[k] - marks["cpu"].get(k, 0.0) for k in cpu_end}  # type: ignore[union-attr]
                return server_times(log, marks["log"], log.stat().st_size), cpu  # type: ignore[arg-type]

            print(f"  {name}, {clients} client(s), {args.duration:g} s …", end="", flush=True)
            res = asyncio.run(run_phase(name, target, clients, args.duration, args.warmup, maker, begin, finish,
                                        pace=pace))
            res.solves_running = "/".join(job_states(url, prepared.jobs))
            n = sum(len(v) for v in res.latencies.values())
            errs = sum(sum(v.values()) for v in res.errors.values())
            print(f" {n / res.seconds:.0f} req/s, {errs} errors, solves {res.solves_running}", flush=True)
            phases.append(res)

        print("Load, closed loop (each client sends its next request when the last one is answered):", flush=True)
        if plan_api:
            measured("plan API", base, 1, plan_api_req, app_log)
        measured("plan page", base, 1, plan_page_req, app_log)
        for clients in args.clients:
            if plan_api:
                measured("plan API", base, clients, plan_api_req, app_log)
            measured("plan page", base, clients, plan_page_req, app_log)
            measured("mixed", base, clients, mixed_req, app_log)
            measured("bare endpoint", bare_base, clients, bare_req, bare_log)
        top = max(args.clients)
        print(f"Load, paced (each client sends one request every {args.pace:g} s):", flush=True)
        if plan_api:
            measured("plan API", base, top, plan_api_req, app_log, pace=args.pace)
        measured("plan page", base, top, plan_page_req, app_log, pace=args.pace)
        measured("mixed", base, top, mixed_req, app_log, pace=args.pace)
        measured("bare endpoint", bare_base, top, bare_req, bare_log, pace=args.pace)
        if args.nice_solves is not None and args.nice_solves >= 0:
            reniced = renice_descendants(app_proc.pid, args.nice_solves)
            print(f"The app's {reniced} solve process(es) now at nice {args.nice_solves}:", flush=True)
            if reniced and plan_api:
                label = f"plan API, solves at nice {args.nice_solves}"
                measured(label, base, top, plan_api_req, app_log)
                measured(label, base, top, plan_api_req, app_log, pace=args.pace)
        states = job_states(url, prepared.jobs)
        below_app = descendants(app_proc.pid)
        for proc in (app_proc, bare_proc):
            stop(proc)
        kill_leftovers(below_app)
        profile = None
        if args.profile:
            print("Profiling one request at a time in this process …", flush=True)
            profile = profile_in_process(url, prepared, args.profile, plan_api)
        return Run(phases=phases, plan_api_available=plan_api, settings=settings, prepared=prepared,
                   load_avg_before=load_avg, job_states_after=states, plan_bytes=plan_bytes, page_bytes=page_bytes,
                   profile=profile)
    finally:
        below_app = descendants(app_proc.pid) if app_proc is not None and app_proc.poll() is None else []
        for proc in (app_proc, bare_proc):
            if proc is not None:
                stop(proc)
        kill_leftovers(below_app)
        pg.stop()
        if not args.keep:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"logs kept in {workdir}")


def _postmaster_pid(pg) -> int:
    return int((pg.data_dir / "postmaster.pid").read_text().split()[0])


# --------------------------------------------------------------------------- profile


def profile_in_process(url: str, prepared: Prepared, requests: int, plan_api: bool) -> dict:
    """CPU per request with the app in this process (no HTTP server, one request at a time),
    then the same requests under cProfile: where that CPU goes."""
    import contextlib
    import cProfile
    import pstats

    import fastapi.dependencies.utils as fastapi_deps
    import fastapi.routing as fastapi_routing
    import httpx

    from app.main import create_app
    from app.settings import Settings

    async def inline(func, *a, **kw):  # sync handlers and dependencies on this thread, for the profiler
        return func(*a, **kw)

    @contextlib.asynccontextmanager
    async def inline_cm(cm):
        with cm as value:
            yield value

    saved = (fastapi_routing.run_in_threadpool, fastapi_deps.run_in_threadpool,
             fastapi_deps.contextmanager_in_threadpool)
    fastapi_routing.run_in_threadpool = fastapi_deps.run_in_threadpool = inline
    fastapi_deps.contextmanager_in_threadpool = inline_cm
    settings = Settings(environment="production", secret_key=secrets.token_urlsafe(48), database_url=url,
                        log_level="WARNING", job_workers=0, rate_limit_per_minute=10**9)
    app = create_app(settings)
    did, pid = prepared.plans[0]
    targets = {"liveness (`/healthz`)": ("/healthz", {})}
    if plan_api:
        targets["plan API"] = (f"/api/v1/plans/{pid}", {"Authorization": f"Bearer {prepared.api_keys[0]}"})
    targets["plan page"] = (f"/designs/{did}/plans/{pid}", {"Cookie": f"archplan_session={prepared.sessions[0]}"})
    app_dir = str(ROOT / "app")
    out: dict = {}

    async def go() -> None:
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app), base_url="http://bench") as client:
            for label, (path, headers) in targets.items():
                for _ in range(10):
                    r = await client.get(path, headers=headers)
                    assert r.status_code == 200, (path, r.status_code)
                t0 = time.process_time()
                for _ in range(requests):
                    await client.get(path, headers=headers)
                cpu_ms = (time.process_time() - t0) / requests * 1000
                prof = cProfile.Profile()
                prof.enable()
                for _ in range(requests):
                    await client.get(path, headers=headers)
                prof.disable()
                stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
                total = sum(tt for (_cc, _nc, tt, _ct, _callers) in stats.values())
                wrappers = {"__call__", "request_context", "tracked_send", "counted_receive"}  # the middleware
                app_funcs = sorted(((ct, f"`{Path(fn).relative_to(ROOT)}:{name}`") for (fn, _ln, name), (_cc, _nc, _tt, ct, _c)
                                    in stats.items() if fn.startswith(app_dir) and name not in wrappers), reverse=True)

                def leaf(match) -> float:
                    return sum(tt for key, (_cc, _nc, tt, _ct, _c) in stats.items() if match(*key))

                leaves = {
                    "database driver (psycopg, incl. waiting for PostgreSQL)":
                        leaf(lambda fn, _l, name: "psycopg" in fn or "psycopg" in name),
                    "SQLAlchemy (ORM, statement caching, result rows)": leaf(lambda fn, _l, _n: "/sqlalchemy/" in fn),
                    "JSON decoding (stored plans and specs)": leaf(lambda fn, _l, _n: fn.endswith("json/decoder.py")),
                    "pydantic validation and serialisation": leaf(
                        lambda _f, _l, name: "validate_python" in name or "to_json" in name or "to_python" in name),
                    "Jinja2 templates": leaf(lambda fn, _l, _n: "/jinja2/" in fn or fn.startswith("<template>")
                                             or fn.endswith(".html")),
                    "FastAPI and Starlette (routing, dependencies, middleware)": leaf(
                        lambda fn, _l, _n: "/fastapi/" in fn or "/starlette/" in fn or "/anyio/" in fn),
                    "app code itself": leaf(lambda fn, _l, _n: fn.startswith(app_dir)),
                }
                leaves["everything else (Python library, logging, asyncio, the in-process client)"] = \
                    total - sum(leaves.values())
                out[label] = {
                    "cpu_ms": cpu_ms,
                    "app_functions": [(name, ct / total) for ct, name in app_funcs[:8]],
                    "leaves": {k: v / total for k, v in leaves.items()},
                }
                print(f"  {label}: {cpu_ms:.2f} ms CPU per request", flush=True)

    try:
        asyncio.run(go())
    finally:
        (fastapi_routing.run_in_threadpool, fastapi_deps.run_in_threadpool,
         fastapi_deps.contextmanager_in_threadpool) = saved
    return out


# --------------------------------------------------------------------------- report


def ms(v: float) -> str:
    return "—" if v != v else f"{v * 1000:.1f}"


def phase_label(ph: PhaseResult) -> str:
    return f"paced, 1 req / {ph.pace:g} s each" if ph.pace else "closed loop"


def app_cpu(ph: PhaseResult) -> float:
    """CPU seconds of the serving process in the phase (the bare server's for the bare endpoint)."""
    return ph.cpu.get("bare" if ph.name == "bare endpoint" else "app", float("nan"))


def summary_rows(run: Run) -> list[dict]:
    rows = []
    for ph in run.phases:
        served = sum(len(v) for v in ph.latencies.values())
        cpu_per_req = app_cpu(ph) / served if served else float("nan")
        for kind in sorted(set(ph.latencies) | set(ph.errors)) or [ph.name]:
            lat = ph.latencies.get(kind, [])
            srv = ph.server_ms.get(kind, [])
            rows.append({"phase": ph.name, "mode": phase_label(ph), "pace": ph.pace, "clients": ph.clients,
                         "kind": kind, "n": len(lat), "errors": sum(ph.errors.get(kind, {}).values()),
                         "rps": len(lat) / ph.seconds, "p50": pct(lat, 50), "p95": pct(lat, 95),
                         "p99": pct(lat, 99),
                         "srv_p50": pct(srv, 50) / 1000 if srv else float("nan"),
                         "srv_p95": pct(srv, 95) / 1000 if srv else float("nan"),
                         "cpu_per_req": cpu_per_req, "solves": ph.solves_running, "seconds": ph.seconds})
    return rows


def find(rows, phase, clients, kind, paced=False):
    return next((r for r in rows if (r["phase"], r["clients"], r["kind"]) == (phase, clients, kind)
                 and bool(r["pace"]) == paced), None)


CPU_COLUMNS = ("app", "its solves", "PostgreSQL", "load generator", "bare server", "other processes")


def cpu_split(cpu: dict[str, float], seconds: float) -> dict[str, float]:
    """Cores busy on average, by process group; ``other processes`` = the rest of the machine."""
    parts = {"app": cpu.get("app", 0.0), "its solves": cpu.get("app children", 0.0),
             "PostgreSQL": cpu.get("postgres", 0.0) + cpu.get("postgres children", 0.0),
             "load generator": cpu.get("load generator", 0.0), "bare server": cpu.get("bare", 0.0)}
    parts["other processes"] = max(0.0, cpu.get("machine", 0.0) - sum(parts.values()))
    parts["busy"] = cpu.get("machine", 0.0)
    return {k: v / seconds for k, v in parts.items()}


def render(run: Run, args) -> list[str]:
    rows = summary_rows(run)
    top = max(args.clients)
    api = find(rows, "plan API", top, "plan API")
    page = find(rows, "plan page", top, "plan page")
    bare_top = find(rows, "bare endpoint", top, "bare endpoint")
    api_paced = find(rows, "plan API", top, "plan API", paced=True)
    bare_paced = find(rows, "bare endpoint", top, "bare endpoint", paced=True)
    lines = [
        "## Load (`make bench-load`, `bench/load.py`)",
        "",
        f"Measured {date.today().isoformat()} on {platform.machine()} with {os.cpu_count()} cores, Python "
        f"{platform.python_version()}{' (quick run)' if args.quick else ''}; load average {run.load_avg_before} "
        "before the load. The app served by `archplan serve` (one uvicorn process, production settings, INFO "
        "request logging, embedded job runner with 2 workers, solves at nice 10 — `ARCHPLAN_JOB_NICE`'s default) on a local PostgreSQL server (same machine, "
        f"`fsync=off`), the bundled price catalog, {len(run.prepared.plans)} solved plans from the bundled examples "
        f"(plan JSON {run.plan_bytes / 1000:.1f} kB, plan page {run.page_bytes / 1000:.1f} kB). **Two solves run "
        "throughout** (the solver benchmark's 60-month, 3-class whole-catalog case, which runs to its time limit; "
        "their state at the end of each phase is in the last column). Clients are `httpx.AsyncClient` tasks in "
        "one process on the same machine: *closed loop* clients send their next request as soon as the last one "
        "is answered (the server's capacity), *paced* clients one request every "
        f"{args.pace:g} s each (a steady load below capacity). Each phase: {args.warmup:g} s warm-up, "
        f"{args.duration:g} s measured. API clients send `Authorization: Bearer ap_…` (5 keys; the per-key "
        "rate limit raised for the run), browsers a session cookie (5 users); the mix is 40 % plan pages, 40 % "
        "plan API, 20 % job polling (`GET /api/v1/jobs/{id}`). *Client* latency is from sending to the last "
        "byte; *app* latency comes from the app's request log (its middleware in to response out), so the "
        "difference is time spent waiting for the server process (event loop, thread pool, CPU). *CPU/req* is "
        "the serving process's CPU time in the phase divided by the requests it answered.",
        "",
        "| load | clients | request | req/s | p50 ms | p95 ms | p99 ms | app p50 ms | app p95 ms | CPU/req ms | errors | solves |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        name = r["phase"] + (f", paced 1/{r['pace']:g} s" if r["pace"] else "")
        lines.append(f"| {name} | {r['clients']} | {r['kind']} | {r['rps']:.0f} | {ms(r['p50'])} | "
                     f"{ms(r['p95'])} | {ms(r['p99'])} | {ms(r['srv_p50'])} | {ms(r['srv_p95'])} | "
                     f"{ms(r['cpu_per_req'])} | "
                     f"{r['errors']} | {r['solves']} |")
    lines += ["", f"CPU during each phase, in cores busy on average (of {os.cpu_count()}); *other processes* are "
              "whatever else ran on the machine:", "",
              "| load | clients | " + " | ".join(CPU_COLUMNS) + " | machine busy |",
              "|---|---:|" + "---:|" * (len(CPU_COLUMNS) + 1)]
    for ph in run.phases:
        if ph.cpu:
            split = cpu_split(ph.cpu, ph.seconds)
            name = ph.name + (f", paced 1/{ph.pace:g} s" if ph.pace else "")
            lines.append(f"| {name} | {ph.clients} | " + " | ".join(f"{split[c]:.2f}" for c in CPU_COLUMNS)
                         + f" | {split['busy']:.2f} |")
    others = [cpu_split(ph.cpu, ph.seconds)["other processes"] for ph in run.phases if ph.cpu]
    if others and sum(others) / len(others) >= 0.25:
        lines += ["", f"Other processes used {sum(others) / len(others):.2f} of the {os.cpu_count()} cores on "
                  "average during the phases: the machine was shared, and every figure here is lower (latencies "
                  "higher) than on a machine of its own. The CPU per request is the figure that depends least "
                  "on that."]
    lines.append("")
    if not run.plan_api_available:
        lines.append("**The plan API (`GET /api/v1/plans/{id}`) was not served by this build; only the plan "
                     "page was measured.**")
    elif api and bare_top:
        met = api["p95"] < 0.050
        text = (
            f"**Target** (plan API p95 under 50 ms at {top} concurrent clients while 2 solves run): "
            f"**{'met' if met else 'not met'}** with closed-loop clients — p95 **{ms(api['p95'])} ms** at "
            f"{api['rps']:.0f} req/s (p50 {ms(api['p50'])} ms, p99 {ms(api['p99'])} ms; the app's own p95 "
            f"{ms(api['srv_p95'])} ms). The bare FastAPI endpoint under the same load: {bare_top['rps']:.0f} "
            f"req/s, p95 {ms(bare_top['p95'])} ms, so the plan API answers **{bare_top['rps'] / api['rps']:.1f}×** "
            f"fewer requests per second (p95 {api['p95'] / bare_top['p95']:.1f}× higher).")
        if page:
            text += (f" Plan pages: {page['rps']:.0f} req/s, p95 {ms(page['p95'])} ms "
                     f"({bare_top['rps'] / page['rps']:.1f}× fewer req/s than the bare endpoint).")
        cpu = api["cpu_per_req"]
        if cpu == cpu:
            text += (
                f" Per request the plan API costs the serving process **{ms(cpu)} ms of CPU**, the bare endpoint "
                f"{ms(bare_top['cpu_per_req'])} ms ({cpu / bare_top['cpu_per_req']:.0f}×). One uvicorn process "
                "computes on one core at a time, so it answers at most about "
                f"{1 / cpu:.0f} plan reads per second even with a core to itself, and {top} closed-loop clients "
                f"then wait about {top} × {ms(cpu)} ms ≈ {top * cpu * 1000:.0f} ms each (Little's law): a p95 "
                f"under 50 ms for {top} clients that never pause needs under {50 / top:.1f} ms of CPU per "
                "request, or that many more processes and cores.")
        if api_paced:
            text += (f" With {top} paced clients (1 request / {args.pace:g} s each: {top / args.pace:.0f} req/s "
                     f"offered, {api_paced['rps']:.0f} answered): plan API p95 **{ms(api_paced['p95'])} ms** — "
                     f"{'under' if api_paced['p95'] < 0.050 else 'over'} 50 ms"
                     + (f" (bare endpoint p95 {ms(bare_paced['p95'])} ms)." if bare_paced else "."))
        lines.append(text)
    if run.profile:
        lines += ["", "**Where the time goes** — the same requests with the app in one process, one at a time "
                  "(no HTTP server, no load; request logging off), on the same database; CPU per request, then "
                  "the share of that time by layer (from cProfile; profiling slows everything about evenly):", ""]
        layers = list(next(iter(run.profile.values()))["leaves"])
        lines.append("| | " + " | ".join(run.profile) + " |")
        lines.append("|---|" + "---:|" * len(run.profile))
        lines.append("| CPU per request, ms | " + " | ".join(f"{p['cpu_ms']:.2f}" for p in run.profile.values()) + " |")
        for layer in layers:
            lines.append(f"| {layer} | " + " | ".join(f"{p['leaves'][layer] * 100:.0f} %" for p in run.profile.values())
                         + " |")
        for label, p in run.profile.items():
            if p["app_functions"] and not label.startswith("liveness"):
                lines.append("")
                lines.append(f"{label}, app functions by share of the request (including what they call): "
                             + ", ".join(f"{name} {share * 100:.0f} %" for name, share in p["app_functions"]) + ".")
    return lines


def write_section(path: Path, lines: list[str]) -> None:
    """Replace the "## Load" section of ``path`` (or append it), keeping every other section."""
    old = path.read_text(encoding="utf-8") if path.is_file() else "# Benchmarks\n"
    section = "\n".join(lines).rstrip() + "\n"
    match = re.search(r"^## Load\b.*?(?=^## |\Z)", old, flags=re.S | re.M)
    if match:
        new = old[:match.start()] + section + ("\n" if old[match.end():] else "") + old[match.end():]
    else:
        new = old.rstrip() + "\n\n" + section
    path.write_text(new, encoding="utf-8")
    print(f"wrote the Load section of {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="Short run: 4 s per phase, 2 plans, small profile.")
    ap.add_argument("--duration", type=float, help="Seconds measured per phase (default 15, quick 4).")
    ap.add_argument("--warmup", type=float, help="Seconds of warm-up per phase (default 3, quick 1).")
    ap.add_argument("--clients", type=int, nargs="+", default=[10, 50], help="Concurrent clients (default 10 50).")
    ap.add_argument("--pace", type=float, default=1.0, help="Seconds between requests of a paced client (default 1).")
    ap.add_argument("--profile", type=int, help="Requests per endpoint for the in-process profile "
                                                "(default 200, quick 50; 0 skips it).")
    ap.add_argument("--nice-solves", type=int, default=0,
                    help="Finally measure the plan API again with the solve processes at this nice value "
                         "(default 0: the app's own priority, for comparison with ARCHPLAN_JOB_NICE=10, which "
                         "the other phases use; lowering a nice value needs root; -1 skips).")
    ap.add_argument("--write", type=Path, help="Markdown file whose '## Load' section gets the results.")
    ap.add_argument("--json", type=Path, help="Also write every figure as JSON.")
    ap.add_argument("--keep", action="store_true", help="Keep the server logs.")
    args = ap.parse_args()
    args.duration = args.duration or (4.0 if args.quick else 15.0)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 3.0)
    if args.profile is None:
        args.profile = 50 if args.quick else 200
    run = bench(args)
    lines = render(run, args)
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps({"rows": summary_rows(run), "profile": run.profile}, indent=2, default=str))
    if args.write:
        write_section(args.write, lines)


if __name__ == "__main__":
    main()
