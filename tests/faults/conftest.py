"""Fault tests: the app and the command line against real databases that go away, refuse
writes or run out of space. Each test builds what it needs (its own PostgreSQL cluster or
SQLite file) so that breaking it cannot disturb any other test."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.auth import CSRF_HEADER, SESSION_COOKIE, csrf_token_for
from app.models import Design
from app.services import accounts as acc
from app.services import designs as design_svc

PASSWORD = "correct horse battery"


@dataclass
class Seed:
    """A signed-in user with an API key, both in the default workspace, and one design."""

    session_token: str
    api_key: str  # read scope
    api_write_key: str  # read and write scopes
    workspace_id: int
    design_id: int
    design_name: str

    def browser(self, client: TestClient, secret_key: str) -> dict[str, str]:
        """Sign ``client`` in; returns the headers a form post from that browser carries."""
        client.cookies.set(SESSION_COOKIE, self.session_token)
        return {CSRF_HEADER: csrf_token_for(secret_key, self.session_token)}

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    @property
    def write_bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_write_key}"}


def seed(engine: Engine, name: str = "Before the outage") -> Seed:
    with Session(engine) as s:
        # The default workspace, with the user as its admin: the pages find the design whether
        # they show the default workspace or the signed-in user's current one.
        ws = design_svc.get_or_create_workspace(s)
        user = acc.create_user(s, "ops@example.com", PASSWORD, scrypt_n=2**10)
        acc.add_member(s, ws.id, user.email, "admin")
        token = acc.start_session(s, user)
        secret, _key = acc.create_api_key(s, ws.id, "monitoring", ["read"], created_by=user.id)
        write_secret, _key = acc.create_api_key(s, ws.id, "automation", ["read", "write"], created_by=user.id)
        design: Design = design_svc.create_design_from_example(s, ws.id, "research-burst-deadline", name=name)
        return Seed(session_token=token, api_key=secret, api_write_key=write_secret, workspace_id=ws.id, design_id=design.id,
                    design_name=design.name)


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


def run_cli(monkeypatch, url: str, *args: str) -> CliResult:
    """``archplan …`` in-process (typer's runner) against ``url``."""
    from typer.testing import CliRunner

    from app import cli as cli_module
    from app import pricing_cli
    from app.settings import get_settings

    for console in (cli_module.console, cli_module.err_console, pricing_cli.console, pricing_cli.err_console):
        monkeypatch.setattr(console, "width", 200)
    monkeypatch.setenv("ARCHPLAN_DATABASE_URL", url)
    monkeypatch.setenv("ARCHPLAN_ENVIRONMENT", "test")
    get_settings.cache_clear()
    try:
        r = CliRunner().invoke(cli_module.cli, list(args))
    finally:
        get_settings.cache_clear()
    if r.exception and not isinstance(r.exception, SystemExit):
        raise r.exception
    return CliResult(r.exit_code, r.stdout, r.stderr)
