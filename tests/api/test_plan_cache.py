"""The plan API keeps each stored plan's JSON once built (plans never change), but access is
still checked on every read, and a plan deleted (or an id reused by SQLite) is never served
from the kept bytes."""

from __future__ import annotations

from sqlmodel import Session

from app.models import Design
from app.models import Plan as PlanRow
from app.requirements.spec import WorkloadSpec
from app.services import designs as svc
from app.services.plans import RepresentationCache
from tests.api.conftest import World, infeasible_spec


def test_representation_cache_builds_once_and_evicts_least_recently_used() -> None:
    cache = RepresentationCache(max_bytes=10)
    built: list[str] = []

    def make(value: bytes):
        def build() -> bytes:
            built.append(value.decode())
            return value
        return build

    first = cache.get_or_make("a", make(b"aaaa"))
    assert cache.get_or_make("a", make(b"zzzz")) == first and first[0] == b"aaaa"  # kept, not rebuilt
    cache.get_or_make("b", make(b"bbbb"))
    cache.get_or_make("a", make(b"aaaa"))  # a is now the most recently used
    cache.get_or_make("c", make(b"cccc"))  # 12 bytes > 10: b goes
    assert built == ["aaaa", "bbbb", "cccc"]
    cache.get_or_make("b", make(b"bbbb"))
    assert built[-1] == "bbbb" and (cache.hits, cache.misses) == (2, 4)
    data, etag = cache.get_or_make("big", make(b"x" * 11))  # larger than the cache: answered, not kept
    assert data == b"x" * 11 and etag.startswith('"')
    cache.get_or_make("big", make(b"x" * 11))
    assert built.count("x" * 11) == 2


def test_kept_plan_json_is_the_same_and_access_is_checked_every_time(world: World, small_plan) -> None:
    c, a, b = world.client, world.a, world.b
    pid = world.store_plan(world.design(a).id, small_plan)
    first = c.get(f"/api/v1/plans/{pid}", headers=a.read)
    again = c.get(f"/api/v1/plans/{pid}", headers=a.write)
    assert first.status_code == again.status_code == 200
    assert again.content == first.content and again.headers["etag"] == first.headers["etag"]
    cache = c.app.state.representations
    assert cache.hits >= 1
    # Kept bytes are never a way in: another workspace's key still gets 404, a revoked key 401.
    assert c.get(f"/api/v1/plans/{pid}", headers=b.read).status_code == 404
    assert c.get(f"/api/v1/plans/{pid}", headers={"Authorization": f"Bearer {a.revoked_key}"}).status_code == 401


def test_deleted_plan_is_not_served_and_a_reused_id_gets_the_new_plan(world: World, small_plan,
                                                                       infeasible_plan) -> None:
    c, a = world.client, world.a
    did = world.design(a).id
    pid = world.store_plan(did, small_plan)
    assert c.get(f"/api/v1/plans/{pid}", headers=a.read).json()["status"] == "optimal"
    with Session(world.engine) as s:
        s.delete(s.get(PlanRow, pid))
        s.commit()
    assert c.get(f"/api/v1/plans/{pid}", headers=a.read).status_code == 404
    # SQLite gives the next row the highest id + 1, i.e. the deleted plan's id again.
    with Session(world.engine) as s:
        new = svc.save_plan(s, s.get(Design, did), WorkloadSpec.model_validate(infeasible_spec()),
                            infeasible_plan)
        new_id = new.id
    if world.engine.dialect.name == "sqlite":
        assert new_id == pid
    r = c.get(f"/api/v1/plans/{new_id}", headers=a.read)
    assert r.status_code == 200 and r.json()["status"] == "infeasible" and r.json()["id"] == new_id
