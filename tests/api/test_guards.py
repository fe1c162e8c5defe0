"""Request guards on the API: 413 for oversized bodies (declared or streamed), 429 with
``Retry-After`` once a key exceeds its rate (other keys unaffected)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlmodel import select

from app.models import Design
from tests.api.conftest import PROBLEM, SMALL_SPEC, World, build_world


@pytest.fixture
def small_bodies(migrated_sqlite_url: str) -> Iterator[World]:
    from app.db import make_engine

    engine = make_engine(migrated_sqlite_url)
    try:
        yield from build_world(engine, max_body_bytes=4000)
    finally:
        engine.dispose()


@pytest.fixture
def low_rate(migrated_sqlite_url: str) -> Iterator[World]:
    from app.db import make_engine

    engine = make_engine(migrated_sqlite_url)
    try:
        yield from build_world(engine, rate_limit_per_minute=3)
    finally:
        engine.dispose()


def test_oversized_bodies_are_413_problems(small_bodies: World) -> None:
    world = small_bodies
    url = f"/api/v1/workspaces/{world.a.workspace_id}/designs"
    big = {"spec": {**SMALL_SPEC, "description": "x" * 5000}}
    r = world.client.post(url, json=big, headers=world.a.write)
    assert r.status_code == 413 and r.headers["content-type"] == PROBLEM
    assert r.json()["status"] == 413 and "4000 bytes" in r.json()["detail"]

    # Streamed without a Content-Length: counted as it arrives.
    data = json.dumps(big).encode()
    chunks = (data[i:i + 1000] for i in range(0, len(data), 1000))
    r = world.client.post(url, content=chunks, headers={**world.a.write, "Content-Type": "application/json"})
    assert r.status_code == 413 and r.headers["content-type"] == PROBLEM

    # Under the limit it is an ordinary request.
    assert world.client.post(url, json={"spec": SMALL_SPEC}, headers=world.a.write).status_code == 201
    with world.session() as s:
        assert len(s.exec(select(Design)).all()) == 1


def test_a_key_over_its_rate_gets_429_with_retry_after(low_rate: World) -> None:
    world = low_rate
    url = f"/api/v1/workspaces/{world.a.workspace_id}"
    statuses = [world.client.get(url, headers=world.a.read).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    r = world.client.get(url, headers=world.a.read)
    assert r.status_code == 429 and r.headers["content-type"] == PROBLEM
    assert int(r.headers["retry-after"]) >= 1 and r.json()["status"] == 429
    # Writes count too, and are refused before they do anything.
    r = world.client.post(f"/api/v1/workspaces/{world.a.workspace_id}/designs", json={"spec": SMALL_SPEC},
                          headers=world.a.read)
    assert r.status_code == 429
    # Another key has its own budget.
    assert world.client.get(url, headers=world.a.write).status_code == 200
