"""``archplan pricing …``: a few real subprocesses (the console script against a migrated
temporary SQLite database), the rest in-process with typer's runner (same code, faster)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlmodel import Session
from typer.testing import CliRunner

from app.catalog.schema import DEFAULT_SNAPSHOT_PATH, Snapshot, dump_snapshot, load_snapshot
from app.db import dispose_engines, make_engine
from app.services import catalog as svc
from tests.catalog_db.factory import make_snapshot

ARCHPLAN = str(Path(sys.executable).with_name("archplan"))
BAD_CSV = ("provider,region,instance_type,gpu_model,gpu_count,on_demand_hourly,source_name,source_url,source_date\n"
           "aws,us-east-1,p5.48xlarge,H900,8,-1,Q,https://q,2026-11-01\n"
           "aws,us-east-1,g6.xlarge,L4,1,abc,Q,https://q,2026-11-01\n")
GOOD_CSV = ("provider,region,instance_type,gpu_model,gpu_count,on_demand_hourly,source_name,source_url,source_date\n"
            "aws,us-east-1,p5.48xlarge,H100,8,49.536,Quote,https://q,2026-11-01\n")


def run(url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ARCHPLAN_ENVIRONMENT": "test", "ARCHPLAN_DATABASE_URL": url, "COLUMNS": "160"}
    return subprocess.run([ARCHPLAN, "pricing", *args], capture_output=True, text=True, env=env, timeout=120,
                          check=False)


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(monkeypatch) -> Iterator[Callable[..., Result]]:
    """Run ``archplan pricing …`` in-process against ``url``."""
    from app import pricing_cli
    from app.cli import cli as app_cli
    from app.settings import get_settings

    # Module-level consoles keep the width of whoever imported them first.
    monkeypatch.setattr(pricing_cli.console, "width", 160)
    monkeypatch.setattr(pricing_cli.err_console, "width", 160)

    def invoke(url: str, *args: str) -> Result:
        monkeypatch.setenv("ARCHPLAN_DATABASE_URL", url)
        monkeypatch.setenv("COLUMNS", "160")
        get_settings.cache_clear()
        r = CliRunner().invoke(app_cli, ["pricing", *args])
        if r.exception and not isinstance(r.exception, SystemExit):
            raise r.exception
        return Result(r.exit_code, r.stdout, r.stderr)

    yield invoke
    get_settings.cache_clear()
    dispose_engines()


def current_id(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with Session(engine) as s:
            row = svc.current_snapshot(s)
            return row.snapshot_id if row else None
    finally:
        engine.dispose()


@pytest.mark.skipif(not DEFAULT_SNAPSHOT_PATH.is_file(), reason="bundled snapshot not built")
def test_subprocess_bundled_import_and_show_json(migrated_sqlite_url: str, cli) -> None:
    url = migrated_sqlite_url
    bundled = load_snapshot()
    r = run(url, "import", "--bundled", "--if-empty")
    assert r.returncode == 0, r.stderr
    assert f"Imported {bundled.snapshot_id}" in r.stdout

    r = run(url, "show", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert {"snapshot_id", "offerings_by_provider", "sources"} <= data.keys()
    assert data["snapshot_id"] == bundled.snapshot_id
    assert data["offerings_by_provider"] == {
        p: c["priced_gpu_offerings"] for p, c in bundled.counts_by_provider().items() if c["priced_gpu_offerings"]}
    assert all({"name", "date"} <= s.keys() for s in data["sources"])
    assert len(data["sources"]) == len(bundled.sources)

    r2 = cli(url, "import", "--bundled", "--if-empty")
    assert r2.exit_code == 0 and "nothing imported" in r2.stdout
    r2 = cli(url, "list")
    assert r2.exit_code == 0 and f"★ {bundled.snapshot_id}" in r2.stdout
    r2 = cli(url, "show")
    assert r2.exit_code == 0 and "total" in r2.stdout and "Sources" in r2.stdout


def test_subprocess_bad_csv_is_refused_with_every_row(migrated_sqlite_url: str, tmp_path: Path, cli) -> None:
    url = migrated_sqlite_url
    base = make_snapshot()
    assert cli(url, "import", str(dump_snapshot(base, tmp_path / "base.json"))).exit_code == 0
    bad = tmp_path / "bad.csv"
    bad.write_text(BAD_CSV)
    r = run(url, "import", str(bad))
    assert r.returncode == 1
    assert "3 problem(s); nothing was imported" in r.stderr
    for text in ("unknown GPU model 'H900'", "must be greater than 0", "not a number: 'abc'"):
        assert text in r.stderr
    assert current_id(url) == base.snapshot_id


def test_subprocess_refresh_failure_keeps_current(migrated_sqlite_url: str, tmp_path: Path, cli) -> None:
    url = migrated_sqlite_url
    base = make_snapshot()
    assert cli(url, "import", str(dump_snapshot(base, tmp_path / "b.json"))).exit_code == 0
    # A region the snapshot does not know is refused before any network call.
    r = run(url, "refresh", "aws", "--region", "mars-north-1")
    assert r.returncode == 1, r.stdout
    assert "aws refresh failed" in r.stderr and "current snapshot is unchanged" in r.stderr
    assert current_id(url) == base.snapshot_id


def test_import_json_csv_and_diff(migrated_sqlite_url: str, tmp_path: Path, cli) -> None:
    url = migrated_sqlite_url
    base = make_snapshot()
    r = cli(url, "import", str(dump_snapshot(base, tmp_path / "base.json")), "--label", "fixture")
    assert r.exit_code == 0 and f"Imported {base.snapshot_id}" in r.stdout
    r = cli(url, "import", str(tmp_path / "base.json"))
    assert r.exit_code == 0 and "already stored" in r.stdout

    good = tmp_path / "good.csv"
    good.write_text(GOOD_CSV)
    r = cli(url, "import", str(good))
    assert r.exit_code == 0, r.stderr
    new_id = current_id(url)
    assert new_id != base.snapshot_id

    r = cli(url, "diff", base.snapshot_id, "current", "--json")
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["from_snapshot"] == base.snapshot_id and d["to_snapshot"] == new_id
    # Only the on-demand price changed: the file has no spot column, so spot is kept.
    assert d["changed"] == [{"key": "aws/us-east-1/p5.48xlarge", "price": "on_demand_hourly", "old": 55.04,
                             "new": 49.536, "pct": -10.0}]
    r = cli(url, "diff", base.snapshot_id[:16], new_id)
    assert r.exit_code == 0 and "-10.00%" in r.stdout and "1 price change(s)" in r.stdout
    r = cli(url, "diff", str(tmp_path / "base.json"), "current")  # a file works too
    assert r.exit_code == 0 and "1 price change(s)" in r.stdout

    r = cli(url, "list")
    assert "import-csv · good.csv" in r.stdout and "json · fixture" in r.stdout
    r = cli(url, "show", "nope-not-there")
    assert r.exit_code == 1 and "no price snapshot" in r.stderr
    r = cli(url, "import")
    assert r.exit_code == 2 and "either PATH or --bundled" in r.stderr


def test_csv_without_any_snapshot_and_unmigrated_db(migrated_sqlite_url: str, sqlite_url: str, tmp_path,
                                                    cli) -> None:
    good = tmp_path / "good.csv"
    good.write_text(GOOD_CSV)
    r = cli(migrated_sqlite_url, "import", str(good))
    assert r.exit_code == 1 and "import a full snapshot first" in r.stderr
    unmigrated = f"sqlite:///{tmp_path / 'empty.db'}"
    r = cli(unmigrated, "list")
    assert r.exit_code == 1 and "archplan db upgrade" in r.stderr


@dataclass
class _FakeResult:
    snapshot: Snapshot
    added: int = 0
    updated: int = 1
    unchanged: int = 0
    removed: int = 0
    skipped: int = 0
    warnings: tuple[str, ...] = ("spot prices not fetched for us-east-1",)


def test_refresh_success_imports_new_current_snapshot(migrated_sqlite_url: str, monkeypatch, cli) -> None:
    """The provider API is replaced: the result is stored atomically and becomes current."""
    from app.catalog.refresh import aws

    base = make_snapshot()
    engine = make_engine(migrated_sqlite_url)
    with Session(engine) as s:
        svc.import_snapshot(s, base, origin="test")
    fresh = make_snapshot(created="2026-11-24")
    seen = {}

    def fake_refresh(snapshot, *, regions=None, **_):
        seen["base"], seen["regions"] = snapshot.snapshot_id, regions
        return _FakeResult(snapshot=fresh)

    monkeypatch.setattr(aws, "refresh_aws", fake_refresh)
    r = cli(migrated_sqlite_url, "refresh", "aws", "--region", "us-east-1")
    assert r.exit_code == 0, r.stderr
    assert seen == {"base": base.snapshot_id, "regions": ["us-east-1"]}
    assert fresh.snapshot_id in r.stdout and "spot prices not fetched" in r.stderr
    with Session(engine) as s:
        row = svc.current_snapshot(s)
        assert (row.snapshot_id, row.origin, row.base_snapshot_id) == (fresh.snapshot_id, "refresh-aws",
                                                                       base.snapshot_id)
    engine.dispose()


def test_refresh_error_in_process(migrated_sqlite_url: str, monkeypatch, cli) -> None:
    from app.catalog.refresh import aws

    base = make_snapshot()
    engine = make_engine(migrated_sqlite_url)
    with Session(engine) as s:
        svc.import_snapshot(s, base, origin="test")
    engine.dispose()

    def failing(snapshot, **_):
        raise aws.RefreshError("the AWS Price List API returned HTTP 503", provider="aws")

    monkeypatch.setattr(aws, "refresh_aws", failing)
    r = cli(migrated_sqlite_url, "refresh", "aws")
    assert r.exit_code == 1 and "HTTP 503" in r.stderr
    assert current_id(migrated_sqlite_url) == base.snapshot_id


def test_refresh_azure_unknown_region_keeps_current(migrated_sqlite_url: str, tmp_path: Path, cli) -> None:
    """Whether or not the Azure refresh is installed, a failure leaves the current snapshot."""
    base = make_snapshot()
    assert cli(migrated_sqlite_url, "import", str(dump_snapshot(base, tmp_path / "b.json"))).exit_code == 0
    r = cli(migrated_sqlite_url, "refresh", "azure", "--region", "mars-north-1")
    assert r.exit_code == 1
    assert "current snapshot is unchanged" in r.stderr or "not available" in r.stderr
    assert current_id(migrated_sqlite_url) == base.snapshot_id
