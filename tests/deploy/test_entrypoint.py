"""The image's entry point (docker/entrypoint.sh), and the chart's pods run for real.

The first tests put a recording `archplan` first on PATH and check what each command runs.
The PostgreSQL tests take the rendered chart's migration Job, web Deployment and worker
Deployment, resolve each container's environment the way Kubernetes would (ConfigMap,
Secret, downward API), and run the container's arguments through the entry point against a
real PostgreSQL server, with the real `archplan` command.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest

from tests.deploy.chart import (
    CHART_DIR,
    REPO,
    SECRET_KEY,
    container_env,
    containers,
    one,
    parse,
    pod_spec,
    render,
)

ENTRYPOINT = REPO / "docker" / "entrypoint.sh"
VENV_BIN = Path(sys.executable).parent
RECORDER = """#!/bin/sh
printf '%s\\n' "$*" >> "$ARCHPLAN_TEST_LOG"
exit "${ARCHPLAN_TEST_EXIT:-0}"
"""


# --------------------------------------------------------------------------- dispatch

@pytest.fixture
def recorder(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "archplan"
    fake.write_text(RECORDER, encoding="utf-8")
    fake.chmod(0o755)
    return bin_dir


def run_entrypoint(recorder: Path, *args: str, **env: str) -> tuple[int, list[str]]:
    log = recorder.parent / "calls.log"
    log.unlink(missing_ok=True)
    base = {k: v for k, v in os.environ.items() if not k.startswith("ARCHPLAN_")}
    proc = subprocess.run(
        ["sh", str(ENTRYPOINT), *args], capture_output=True, text=True, timeout=60,
        env={**base, "PATH": f"{recorder}:{os.environ['PATH']}", "ARCHPLAN_TEST_LOG": str(log), **env},
    )
    calls = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    return proc.returncode, calls


def test_web_migrates_loads_prices_then_serves(recorder: Path) -> None:
    assert run_entrypoint(recorder) == (0, ["db upgrade", "pricing import --bundled --if-empty",
                                            "serve --host 0.0.0.0 --port 8000"])
    assert run_entrypoint(recorder, "web", ARCHPLAN_HOST="127.0.0.1", ARCHPLAN_PORT="9000")[1][-1] == \
        "serve --host 127.0.0.1 --port 9000"


def test_web_without_migrating_on_start(recorder: Path) -> None:
    assert run_entrypoint(recorder, "web", ARCHPLAN_MIGRATE_ON_START="false") == \
        (0, ["serve --host 0.0.0.0 --port 8000"])
    # Only "false" turns it off.
    assert len(run_entrypoint(recorder, "web", ARCHPLAN_MIGRATE_ON_START="no")[1]) == 3


def test_a_failed_migration_stops_the_web_start(recorder: Path) -> None:
    code, calls = run_entrypoint(recorder, "web", ARCHPLAN_TEST_EXIT="1")
    assert code == 1 and calls == ["db upgrade"]


def test_worker_migrate_and_other_commands(recorder: Path) -> None:
    assert run_entrypoint(recorder, "worker") == (0, ["worker"])
    assert run_entrypoint(recorder, "worker", "--name", "w 1", "--concurrency", "2") == \
        (0, ["worker --name w 1 --concurrency 2"])
    assert run_entrypoint(recorder, "migrate") == (0, ["db upgrade"])
    assert run_entrypoint(recorder, "db", "current") == (0, ["db current"])
    assert run_entrypoint(recorder, "worker", ARCHPLAN_TEST_EXIT="3")[0] == 3


# --------------------------------------------------------------------------- the chart's pods on PostgreSQL

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _expand(args: list[str], env: dict[str, str]) -> list[str]:
    """Kubernetes' $(VAR) expansion of container arguments."""
    return [re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), a) for a in args]


class Pod:
    """One container of a rendered manifest, run through the entry point on this machine."""

    def __init__(self, container: dict[str, Any], docs: list[dict[str, Any]], cwd: Path, **overrides: str):
        self.env = container_env(container, docs)
        self.env["POD_NAME"] = "archplan-test-pod"
        self.env.update(overrides)
        self.args = _expand(container["args"], self.env)
        self.cwd = cwd

    def process_env(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("ARCHPLAN_")}
        return {**base, **self.env, "PATH": f"{VENV_BIN}:{os.environ['PATH']}"}

    def run(self) -> subprocess.CompletedProcess:
        return subprocess.run(["sh", str(ENTRYPOINT), *self.args], cwd=self.cwd, env=self.process_env(),
                              capture_output=True, text=True, timeout=600)

    def start(self, log: Path) -> subprocess.Popen:
        with log.open("wb") as out:
            return subprocess.Popen(["sh", str(ENTRYPOINT), *self.args], cwd=self.cwd, env=self.process_env(),
                                    stdout=out, stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def _wait_for(check, what: str, proc: subprocess.Popen, log: Path, limit_s: float = 120) -> None:
    deadline = time.monotonic() + limit_s
    while not check():
        if proc.poll() is not None:
            pytest.fail(f"{what}: the process exited ({proc.returncode}):\n{log.read_text(errors='replace')}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {limit_s:.0f} s:\n{log.read_text(errors='replace')}")
        time.sleep(0.2)


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


@pytest.fixture
def installed(pg_server, tmp_path: Path) -> Iterator[tuple[list[dict[str, Any]], Path]]:
    """The chart rendered for a fresh PostgreSQL database, as `helm install` would apply it."""
    url = pg_server.create_database("deploy")
    with helm.Chart.load(CHART_DIR) as chart:
        docs = parse(render(chart, {"secret": {"secretKey": SECRET_KEY, "databaseUrl": url}}))
    yield docs, tmp_path


@pytest.mark.postgres
def test_chart_pods_migrate_serve_and_work_on_postgresql(installed: tuple[list[dict[str, Any]], Path]) -> None:
    docs, cwd = installed
    job = one(docs, "Job", "archplan-migrate")

    # The hook Job, as on install and again as on an upgrade with nothing new: its
    # containers in order (the migration first), each must succeed.
    for round_ in ("install", "upgrade"):
        for container in containers(job):
            done = Pod(container, docs, cwd).run()
            assert done.returncode == 0, f"{round_}/{container['name']}: {done.stdout}{done.stderr}"
            if container["name"] == "load-prices":
                assert ("Imported" in done.stdout) == (round_ == "install"), done.stdout
    (web_container,) = pod_spec(one(docs, "Deployment", "archplan-web"))["containers"]
    current = Pod({**web_container, "args": ["db", "current"]}, docs, cwd).run()
    assert current.returncode == 0 and "up to date" in current.stdout, current.stdout + current.stderr

    # The web pod: the probes' paths answer on the container port (moved to a free port here).
    port = _free_port()
    web = Pod(web_container, docs, cwd, ARCHPLAN_HOST="127.0.0.1", ARCHPLAN_PORT=str(port))
    assert web.env["ARCHPLAN_ENVIRONMENT"] == "production" and web.env["ARCHPLAN_MIGRATE_ON_START"] == "false"
    log = cwd / "web.log"
    proc = web.start(log)
    try:
        base = f"http://127.0.0.1:{port}"
        startup = web_container["startupProbe"]["httpGet"]["path"]
        _wait_for(lambda: _get(base + startup)[0] == 200, "web start-up probe", proc, log)
        status, body = _get(base + web_container["readinessProbe"]["httpGet"]["path"])
        assert status == 200 and b'"database":"postgresql"' in body, body
        assert _get(base + web_container["livenessProbe"]["httpGet"]["path"])[0] == 200
        assert _get(base + "/api/v1/offerings")[0] in (200, 401)  # served (sign-in may be required)
    finally:
        code = _stop(proc)
    # A graceful stop: uvicorn finishes the shutdown, then re-raises the SIGTERM it caught.
    assert code in (0, -signal.SIGTERM), log.read_text(errors="replace")
    assert "Application shutdown complete" in log.read_text(errors="replace")

    # The worker pod: starts against the migrated queue, stops cleanly on SIGTERM.
    (worker_container,) = pod_spec(one(docs, "Deployment", "archplan-worker"))["containers"]
    worker = Pod(worker_container, docs, cwd)
    assert worker.args == ["worker", "--name", "archplan-test-pod"]
    log = cwd / "worker.log"
    proc = worker.start(log)
    try:
        _wait_for(lambda: "archplan worker archplan-test-pod running" in log.read_text(errors="replace"),
                  "worker start", proc, log)
    finally:
        code = _stop(proc)
    assert code == 0, log.read_text(errors="replace")
    assert "archplan worker archplan-test-pod stopped" in log.read_text(errors="replace")
