"""docs/api.md: the example client runs, as written, against a live server (with its job
runner) and saves the same CSV the API serves; the route table lists every operation."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.db import make_engine
from app.main import create_app
from app.models import Design
from app.models import Plan as PlanRow
from app.services import plans as plans_svc
from tests.api.conftest import make_tenant
from tests.conftest import LiveServer, make_settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "llm-finetune-hipaa.yaml"


def _client_code() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)
    [code] = [b for b in blocks if b.startswith("# plan_client.py")]
    return code


def test_the_example_client_plans_a_spec_and_saves_the_schedule(migrated_sqlite_url: str, tmp_path: Path) -> None:
    engine = make_engine(migrated_sqlite_url)
    with Session(engine) as s:
        tenant = make_tenant(s, "ops@example.com", "Procurement")
    script = tmp_path / "plan_client.py"
    script.write_text(_client_code(), encoding="utf-8")
    out = tmp_path / "schedule.csv"
    settings = make_settings(migrated_sqlite_url, job_workers=1, job_poll_s=0.2)
    with LiveServer(settings) as server:
        env = {**os.environ, "ARCHPLAN_URL": server.url, "ARCHPLAN_API_KEY": tenant.write_key}
        run = subprocess.run([sys.executable, str(script), str(EXAMPLE), str(out)], env=env, capture_output=True,
                             text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    with Session(engine) as s:
        [design] = s.exec(select(Design)).all()
        [row] = s.exec(select(PlanRow)).all()
    engine.dispose()
    assert design.workspace_id == tenant.workspace_id and row.design_id == design.id
    assert f"plan {row.id} (optimal): total ${row.total_cost:,.2f}" in run.stdout
    assert "saves $" in run.stdout and "against All on-demand" in run.stdout
    saved = out.read_bytes().decode("utf-8")
    assert saved == plans_svc.schedule_csv(row.result)
    assert saved.count("\r\n") == 1 + len(row.result["schedule"]) > 1


def test_the_example_client_reports_problems(migrated_sqlite_url: str, tmp_path: Path) -> None:
    """A spec the API refuses: the client prints the problem's fields and exits non-zero."""
    engine = make_engine(migrated_sqlite_url)
    with Session(engine) as s:
        tenant = make_tenant(s, "ops@example.com", "Procurement")
    engine.dispose()
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.read_text(encoding="utf-8").replace("horizon_months: 24", "horizon_months: 99"))
    script = tmp_path / "plan_client.py"
    script.write_text(_client_code(), encoding="utf-8")
    with LiveServer(make_settings(migrated_sqlite_url, job_workers=0)) as server:
        env = {**os.environ, "ARCHPLAN_URL": server.url, "ARCHPLAN_API_KEY": tenant.write_key}
        run = subprocess.run([sys.executable, str(script), str(bad), str(tmp_path / "x.csv")], env=env,
                             capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert "422 Validation failed" in run.stderr and "spec.lifecycle.horizon_months" in run.stderr


def test_the_route_table_lists_every_operation(settings) -> None:
    with TestClient(create_app(settings)) as c:
        spec = c.get("/openapi.json").json()
    documented = set(re.findall(r"^\| `([A-Z]+ /api/v1/[^`]*)`", DOC.read_text(encoding="utf-8"), flags=re.MULTILINE))
    for path, ops in spec["paths"].items():
        if not path.startswith("/api/v1/") or path.startswith(("/api/v1/offerings", "/api/v1/snapshots")):
            continue
        for method in ops:
            line = f"{method.upper()} {path}"
            assert any(d.split("?")[0] == line for d in documented), f"{line} is not in docs/api.md"
