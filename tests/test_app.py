"""App factory: probes, error formats, security headers, settings."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from app.main import create_app
from app.settings import DEFAULT_SECRET_KEY, Settings
from tests.conftest import make_settings


def test_healthz(client: TestClient) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "database": None}


def test_readyz_reports_database(client: TestClient) -> None:
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ready", "database": "sqlite"}


def test_readyz_503_when_database_unreachable(pg_server) -> None:
    # A port nobody listens on: the app starts, but is not ready.
    settings = make_settings("postgresql+psycopg://archplan@127.0.0.1:9/none?connect_timeout=2")
    with TestClient(create_app(settings)) as c:
        r = c.get("/readyz")
    assert r.status_code == 503
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == 503 and body["title"] == "Not ready"
    assert r.headers["retry-after"] == "5"


@pytest.mark.postgres
def test_readyz_on_postgres(pg_server) -> None:
    from app.migrations import upgrade

    url = pg_server.create_database("ready")
    upgrade(url)
    with TestClient(create_app(make_settings(url))) as c:
        r = c.get("/readyz")
    assert r.status_code == 200
    assert r.json()["database"] == "postgresql"


def test_api_errors_are_problem_json(client: TestClient) -> None:
    r = client.get("/api/v1/does-not-exist")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json() == {"type": "about:blank", "title": "Not Found", "status": 404,
                        "detail": "Not Found", "instance": "/api/v1/does-not-exist"}


def test_pages_get_friendly_html_errors(client: TestClient) -> None:
    r = client.get("/no/such/page")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
    assert "Page not found" in r.text and "Back to the home page" in r.text


def test_security_headers_and_request_id(client: TestClient) -> None:
    r = client.get("/", headers={"X-Request-ID": "abc123"})
    assert r.headers["x-request-id"] == "abc123"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["referrer-policy"] == "strict-origin-when-cross-origin"


def test_unhandled_errors_become_500_without_leaking(settings: Settings) -> None:
    app = create_app(settings)

    @app.get("/api/v1/boom")
    def boom():
        raise RuntimeError("secret internals")

    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/api/v1/boom")
    assert r.status_code == 500
    assert r.headers["content-type"] == "application/problem+json"
    assert "secret internals" not in r.text


def test_home_page_describes_product(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200
    for text in ("archplan", 'href="/catalog"', 'href="/designs"', 'href="/docs"'):
        assert text in r.text


def test_docs_and_openapi(client: TestClient) -> None:
    r = client.get("/docs")
    assert r.status_code == 200 and "/static/vendor/swagger-ui/swagger-ui-bundle.js" in r.text
    assert "<script>" not in r.text  # no inline script: the CSP forbids it
    spec = client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    assert "/readyz" in spec["paths"]


def test_production_refuses_default_secret() -> None:
    with pytest.raises(ValidationError, match="ARCHPLAN_SECRET_KEY"):
        Settings(environment="production", secret_key=DEFAULT_SECRET_KEY)
    with pytest.raises(ValidationError, match="at least 32"):
        Settings(environment="production", secret_key="short")
    ok = Settings(environment="production", secret_key="x" * 40)
    assert ok.environment == "production"


def test_settings_from_environment(monkeypatch) -> None:
    monkeypatch.setenv("ARCHPLAN_DATABASE_URL", "sqlite:////tmp/x.db")
    monkeypatch.setenv("ARCHPLAN_LOG_LEVEL", "DEBUG")
    s = Settings()
    assert s.database_url == "sqlite:////tmp/x.db" and s.log_level == "DEBUG" and s.is_sqlite
