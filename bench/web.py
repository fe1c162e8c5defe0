"""Page render benchmarks: server time of the main pages for a typical solved plan.

Run with ``.venv/bin/python bench/web.py --write docs/benchmarks.md`` (replaces the
"Page render times" section and keeps the rest of the file), or with ``--quick`` for a
few renders per page.

The script prepares a fresh SQLite database in a temporary directory (migrations, the
bundled price catalog, designs created from the bundled examples, two of them planned by
:func:`app.services.designs.plan_design`), then renders each page N times through FastAPI's
``TestClient`` after a few warm-up renders (templates compiled, caches filled, as on a
running server). Server time is measured inside the application: from the request entering
the ASGI app to the last byte of its response, so the test client's own transport is not
counted. Target: every page under 300 ms server time for a typical plan.

When the pages require sign-in (a request without a session is sent to ``/login``),
:func:`open_client` creates a user with :mod:`app.services.accounts`, starts a session
for it and sends its cookie with every request; the designs are then created in that
user's workspace instead of the default one.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi.testclient import TestClient  # noqa: E402
from sqlmodel import Session  # noqa: E402

from app.catalog.schema import load_snapshot  # noqa: E402
from app.db import make_engine  # noqa: E402
from app.main import create_app  # noqa: E402
from app.migrations import upgrade  # noqa: E402
from app.requirements.examples import load_example  # noqa: E402
from app.services import catalog as catalog_svc  # noqa: E402
from app.services import designs as svc  # noqa: E402
from app.settings import Settings  # noqa: E402

TARGET_MS = 300.0
SECTION = "## Page render times"
#: The typical plan: fine-tuning runs plus a latency-bound service, 24 months.
TYPICAL = "llm-finetune-hipaa"
#: The second planned design (compared with the typical one).
SECOND = "vision-growing-inference"
#: Designs created but not planned, so the lists and the compare picker are not trivially short.
OTHERS = ("research-burst-deadline", "eu-regulated-private")
BENCH_EMAIL = "bench@example.com"
BENCH_PASSWORD = "render-bench-password-1"


# --------------------------------------------------------------------------- server timing


class ServerTimer:
    """ASGI wrapper that records the time from a request entering the app to the last
    body chunk of its response (milliseconds), one entry per HTTP request."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.last_ms: float | None = None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()

        async def timed_send(message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                self.last_ms = (time.perf_counter() - start) * 1000

        self.last_ms = None
        await self.app(scope, receive, timed_send)


# --------------------------------------------------------------------------- client and data


@dataclass
class Bench:
    client: TestClient
    timer: ServerTimer
    workspace_id: int
    signed_in: bool
    engine: Any


def _accounts():
    """The accounts service, when this version of archplan has one."""
    try:
        from app.services import accounts
    except ImportError:
        return None
    return accounts


def _requires_sign_in(client: TestClient) -> bool:
    """Does the design list send this client to sign in (a redirect to /login, or 401/403)?"""
    r = client.get("/designs", follow_redirects=False)
    if r.status_code in (401, 403):
        return True
    return r.status_code in (302, 303, 307) and r.headers.get("location", "").startswith("/login")


def open_client(settings: Settings, engine: Any) -> tuple[TestClient, ServerTimer, int, bool]:
    """A started TestClient on the app (timed), the workspace its pages show, and whether
    it had to sign in. Signs in through the accounts service when the pages ask for it."""
    timer = ServerTimer(create_app(settings))
    client = TestClient(timer)
    client.__enter__()
    if not _requires_sign_in(client):
        with Session(engine) as s:
            return client, timer, svc.get_or_create_workspace(s).id, False
    acc = _accounts()
    if acc is None:
        client.__exit__(None, None, None)
        raise SystemExit("The pages ask for sign-in, but app/services/accounts.py is missing.")
    from app.auth import SESSION_COOKIE

    with Session(engine) as s:
        user = acc.get_user_by_email(s, BENCH_EMAIL) or acc.create_user(
            s, BENCH_EMAIL, BENCH_PASSWORD, name="Benchmark", scrypt_n=2**10)
        workspace = acc.ensure_workspace(s, user)[0][0]
        token = acc.start_session(s, user, days=1)
        workspace_id = workspace.id
    client.cookies.set(SESSION_COOKIE, token)
    if _requires_sign_in(client):
        client.__exit__(None, None, None)
        raise SystemExit("Signed in through the accounts service, but the pages still ask for sign-in.")
    return client, timer, workspace_id, True


def prepare(directory: Path, *, plan_time_limit: float) -> tuple[Bench, dict[str, Any]]:
    """Database, app, client; designs from the examples, two of them planned."""
    url = f"sqlite:///{directory / 'bench.db'}"
    upgrade(url)
    settings = Settings(environment="development", database_url=url, log_level="WARNING", job_workers=0)
    engine = make_engine(url)
    with Session(engine) as s:
        catalog_svc.import_snapshot(s, load_snapshot(), origin="bench")
    client, timer, workspace_id, signed_in = open_client(settings, engine)
    bench = Bench(client=client, timer=timer, workspace_id=workspace_id, signed_in=signed_in, engine=engine)

    facts: dict[str, Any] = {}
    with Session(engine) as s:
        ids = {}
        for name in (TYPICAL, SECOND, *OTHERS):
            ids[name] = svc.create_design(s, workspace_id, load_example(name)).id
        for name in (TYPICAL, SECOND):
            design = svc.get_design(s, workspace_id, ids[name])
            t0 = time.perf_counter()
            row = svc.plan_design(s, design, svc.planner_settings(time_limit_s=plan_time_limit))
            facts[f"{name}_plan"] = row.id
            facts[f"{name}_solve_s"] = time.perf_counter() - t0
            if name == TYPICAL:
                result = row.result or {}
                facts.update(
                    typical_name=design.name, typical_status=row.status, typical_cost=row.total_cost,
                    typical_months=len(result.get("months") or []),
                    typical_purchases=len(result.get("schedule") or []),
                    typical_classes=len(design.spec.get("performance", {}).get("training", []))
                    + len(design.spec.get("performance", {}).get("inference", [])),
                )
        facts["ids"] = ids
        facts["designs"] = len(ids)
    return bench, facts


def pages(facts: dict[str, Any]) -> list[tuple[str, str]]:
    ids = facts["ids"]
    typical, second = ids[TYPICAL], ids[SECOND]
    plan = facts[f"{TYPICAL}_plan"]
    return [
        ("Plan", f"/designs/{typical}/plans/{plan}"),
        ("Design", f"/designs/{typical}"),
        ("Wizard (edit the design)", f"/designs/{typical}/wizard"),
        ("Compare 2 designs", f"/compare?ids={typical}&ids={second}"),
        ("Trade-offs (page shell)", f"/designs/{typical}/tradeoffs"),
        ("Price catalog", "/catalog"),
        ("Purchase schedule (CSV)", f"/designs/{typical}/plans/{plan}/schedule.csv"),
    ]


# --------------------------------------------------------------------------- measuring


@dataclass
class Result:
    label: str
    path: str
    status: int
    size: int
    times_ms: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def p95(self) -> float:
        """Nearest-rank 95th percentile."""
        ordered = sorted(self.times_ms)
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]

    @property
    def max(self) -> float:
        return max(self.times_ms)


def measure(bench: Bench, label: str, path: str, *, renders: int, warmup: int,
            progress: Callable[[str], None] = print) -> Result:
    for _ in range(warmup):
        bench.client.get(path)
    result = Result(label=label, path=path, status=0, size=0)
    for _ in range(renders):
        r = bench.client.get(path)
        if r.status_code != 200:
            raise SystemExit(f"{path} answered {r.status_code}; expected 200.")
        assert bench.timer.last_ms is not None
        result.times_ms.append(bench.timer.last_ms)
        result.status, result.size = r.status_code, len(r.content)
    progress(f"{label:<28} median {result.median:7.1f} ms  p95 {result.p95:7.1f} ms  "
             f"max {result.max:7.1f} ms  {result.size / 1024:6.1f} KB")
    return result


# --------------------------------------------------------------------------- report


def section(results: list[Result], facts: dict[str, Any], *, renders: int, warmup: int,
            signed_in: bool) -> str:
    passing = [r for r in results if r.p95 < TARGET_MS]
    slowest = max(results, key=lambda r: r.p95)
    cost = facts.get("typical_cost")
    lines = [
        f"{SECTION} (`bench/web.py`)",
        "",
        f"Measured {date.today().isoformat()} on {platform.machine()} with {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; SQLite database in a temporary directory, prepared by the "
        f"script (bundled price catalog, {facts['designs']} bundled examples as designs, two of them "
        f"planned); load average {facts['load']} when the renders began. "
        f"Each page rendered {renders} times through FastAPI's `TestClient` after {warmup} warm-up "
        f"render{'s' if warmup != 1 else ''}; server time = from the request entering the app to the last byte of the response "
        "(the test client's transport is not counted)"
        + ("; requests signed in with a browser session." if signed_in else "; pages open without sign-in.")
        + f" The typical plan: “{facts.get('typical_name')}” ({facts.get('typical_classes')} demand "
        f"sources, {facts.get('typical_months')} months, {facts.get('typical_purchases')} purchase "
        f"schedule lines, {facts.get('typical_status')}"
        + (f", ${cost:,.0f}" if cost is not None else "") + "); compare adds the second planned design. "
        "The trade-offs row is the page shell: its curve loads afterwards and re-solves the plan, "
        "which is solver time, not rendering.",
        "",
        "| page | path | size KB | median ms | p95 ms | max ms | under 300 ms (p95) |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for r in results:
        lines.append(f"| {r.label} | `{r.path}` | {r.size / 1024:.1f} | {r.median:.1f} | {r.p95:.1f} | "
                     f"{r.max:.1f} | {'yes' if r.p95 < TARGET_MS else '**no**'} |")
    lines += [
        "",
        f"**Target** (every page under {TARGET_MS:g} ms server time for a typical plan): "
        f"{len(passing)} of {len(results)} pages meet it at the 95th percentile; the slowest is "
        f"{slowest.label.lower()} at {slowest.median:.1f} ms median, {slowest.p95:.1f} ms p95.",
        "",
    ]
    return "\n".join(lines)


def write_section(path: Path, text: str) -> None:
    """Replace the "Page render times" section of ``path`` (or append it); keep the rest."""
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    start = old.find("\n" + SECTION)
    if start < 0 and old.startswith(SECTION):
        start = 0
    if start < 0:
        new = old.rstrip("\n") + "\n\n" + text
    else:
        head = old[:start].rstrip("\n") + "\n\n" if start > 0 else ""
        after = old[start + 1:] if start > 0 else old
        nxt = after.find("\n## ", 1)
        rest = after[nxt:] if nxt >= 0 else ""
        new = head + text + rest
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new.rstrip("\n") + "\n")
    print(f"wrote {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--write", type=Path, help="Markdown file whose “Page render times” section to write.")
    ap.add_argument("--quick", action="store_true", help="5 renders per page after 1 warm-up (default 50 after 3).")
    ap.add_argument("--renders", type=int, help="Renders per page.")
    ap.add_argument("--plan-time-limit", type=float, default=30.0, help="Solver time limit per plan (s).")
    args = ap.parse_args()
    renders = args.renders or (5 if args.quick else 50)
    warmup = 1 if args.quick else 3
    if renders < 1:
        ap.error("--renders must be 1 or more")

    with tempfile.TemporaryDirectory(prefix="archplan-bench-") as tmp:
        t0 = time.perf_counter()
        bench, facts = prepare(Path(tmp), plan_time_limit=args.plan_time_limit)
        print(f"prepared in {time.perf_counter() - t0:.1f} s (signed in: {'yes' if bench.signed_in else 'no'}; "
              f"typical plan {facts['typical_status']}, {facts['typical_purchases']} purchase lines)")
        facts["load"] = (" / ".join(f"{x:.2f}" for x in os.getloadavg())
                         if hasattr(os, "getloadavg") else "unknown")
        try:
            results = [measure(bench, label, path, renders=renders, warmup=warmup)
                       for label, path in pages(facts)]
        finally:
            bench.client.__exit__(None, None, None)
            bench.engine.dispose()
            from app.db import dispose_engines
            dispose_engines()
    text = section(results, facts, renders=renders, warmup=warmup, signed_in=bench.signed_in)
    print()
    print(text)
    if args.write:
        write_section(args.write, text)


if __name__ == "__main__":
    main()
