"""``app.services.designs`` on SQLite and PostgreSQL: workspace, designs CRUD, plans."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from app.models import Design, Workspace
from app.models import Plan as PlanRow
from app.requirements.examples import list_examples, load_example
from app.requirements.spec import SpecError
from app.services import catalog as catalog_svc
from app.services import designs as svc


def test_default_workspace_is_created_once(session: Session) -> None:
    ws = svc.get_or_create_workspace(session)
    again = svc.get_or_create_workspace(session)
    assert ws.id == again.id and ws.slug == "default"
    assert len(session.exec(select(Workspace)).all()) == 1


def test_create_list_rename_duplicate_delete(session: Session, bundled) -> None:
    ws = svc.get_or_create_workspace(session)
    a = svc.create_design_from_example(session, ws.id, "research-burst-deadline")
    b = svc.create_design(session, ws.id, load_example("llm-finetune-hipaa"), "  Notes  ")
    assert a.name == "7B research LM pre-training sprint" and b.name == "Notes"
    assert [d.id for d in svc.list_designs(session, ws.id)] == [b.id, a.id]  # most recently updated first
    assert all(d.last_plan is None for d in svc.list_designs(session, ws.id))

    svc.rename_design(session, a, "Sprint")
    assert svc.get_design(session, ws.id, a.id).name == "Sprint"
    assert svc.list_designs(session, ws.id)[0].id == a.id

    v1 = svc.duplicate_design(session, a)
    v2 = svc.duplicate_design(session, a)
    v3 = svc.duplicate_design(session, v1)  # a variant of a variant keeps one suffix
    assert (v1.name, v2.name, v3.name) == ("Sprint (variant)", "Sprint (variant 2)", "Sprint (variant 3)")
    assert v1.spec == a.spec and v1.id != a.id
    assert svc.duplicate_design(session, a, "Own name").name == "Own name"

    plan = svc.plan_design(session, a)
    svc.delete_design(session, a)
    assert svc.get_design(session, ws.id, a.id) is None
    assert session.get(PlanRow, plan.id) is None
    assert svc.get_design(session, ws.id, v1.id) is not None  # variants are independent


def test_designs_are_scoped_to_their_workspace(session: Session) -> None:
    ws = svc.get_or_create_workspace(session)
    other = svc.get_or_create_workspace(session, "other", "Other")
    d = svc.create_design_from_example(session, other.id, "research-burst-deadline")
    assert svc.get_design(session, ws.id, d.id) is None
    assert svc.get_design(session, other.id, d.id) is not None
    assert svc.list_designs(session, ws.id) == []


@pytest.mark.parametrize(("name", "message"), [
    ("", "required"), ("   ", "required"), ("x" * 201, "too long"), ("a\nb", "single line"), ("a\tb", "single line"),
])
def test_bad_names_are_refused(name: str, message: str) -> None:
    with pytest.raises(svc.InvalidNameError, match=message):
        svc.clean_name(name)


def test_spec_text_limits() -> None:
    with pytest.raises(SpecError) as exc:
        svc.parse_spec_text("")
    assert exc.value.issues[0].type == "empty"
    with pytest.raises(SpecError) as exc:
        svc.parse_spec_text("# " + "x" * svc.MAX_YAML_BYTES)
    assert exc.value.issues[0].type == "too_large" and "512 kB" in exc.value.issues[0].message
    with pytest.raises(SpecError) as exc:
        svc.parse_spec_text("schema_version: '1'\nname: x\nlifecycle: {start_month: 2027-01, horizon_months: 99}\n")
    assert "lifecycle.horizon_months" in exc.value.paths


def test_every_example_round_trips_through_the_database(session: Session) -> None:
    ws = svc.get_or_create_workspace(session)
    for info in list_examples():
        spec = load_example(info.name)
        d = svc.create_design(session, ws.id, spec)
        session.expire_all()
        stored = svc.design_spec(session.get(Design, d.id))
        assert stored == spec
        assert svc.parse_spec_text(svc.spec_yaml(d)) == spec
    choices = svc.example_choices()
    assert {c.name for c in choices} == {i.name for i in list_examples()}
    assert all(c.summary.endswith((".", "…")) for c in choices)


def test_plan_uses_the_current_snapshot_and_is_listed(session: Session, bundled) -> None:
    catalog_svc.import_snapshot(session, bundled, origin="test")
    ws = svc.get_or_create_workspace(session)
    d = svc.create_design_from_example(session, ws.id, "llm-finetune-hipaa")
    row = svc.plan_design(session, d)
    assert row.snapshot_id == bundled.snapshot_id and row.status == "optimal"
    assert row.total_cost == pytest.approx(row.result["total_cost"]) and row.total_cost > 0
    assert row.spec == d.spec and row.result["schedule"]
    od = row.result["baseline_cost_by_month"]["all_on_demand"]
    assert sum(od) == pytest.approx(row.result["baselines"]["all_on_demand"], abs=1.0)
    assert len(od) == len(row.result["months"])

    second = svc.plan_design(session, d)
    assert [p.id for p in svc.list_plans(session, d.id)] == [second.id, row.id]
    summary = svc.list_designs(session, ws.id)[0]
    assert summary.last_plan is not None and summary.last_plan.id == second.id
    assert svc.get_plan(session, d.id, row.id).id == row.id
    other = svc.create_design_from_example(session, ws.id, "research-burst-deadline")
    assert svc.get_plan(session, other.id, row.id) is None  # a plan belongs to its design
    assert svc.count_plans(session, d.id) == 2


def test_plan_falls_back_to_the_bundled_snapshot(session: Session, bundled) -> None:
    ws = svc.get_or_create_workspace(session)
    d = svc.create_design_from_example(session, ws.id, "research-burst-deadline")
    assert catalog_svc.current_snapshot(session) is None
    row = svc.plan_design(session, d)
    assert row.snapshot_id == bundled.snapshot_id and row.status in ("optimal", "feasible")
