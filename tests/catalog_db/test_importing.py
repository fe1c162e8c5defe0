"""Import files: full snapshot JSON and CSV of offerings; every bad row is reported."""

from __future__ import annotations

import json
from datetime import date

import pytest

from app.catalog.importing import (
    CSV_COLUMNS,
    CSV_REQUIRED,
    ImportValidationError,
    apply_offerings_csv,
    parse_import,
    read_import_file,
)
from app.catalog.schema import compute_snapshot_id, snapshot_json
from tests.catalog_db.factory import make_snapshot

TODAY = date(2026, 11, 24)
HEADER = ("provider,region,instance_type,gpu_model,gpu_count,gpu_memory_gb,vcpus,ram_gb,"
          "on_demand_hourly,spot_hourly,source_name,source_url,source_date")


def _csv(*rows: str, header: str = HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


def _issues(excinfo) -> set[tuple[int | None, str | None]]:
    return {(i.row, i.column) for i in excinfo.value.issues}


def test_csv_replaces_and_adds_offerings_on_top_of_base() -> None:
    base = make_snapshot()
    text = _csv(
        "aws,us-east-1,p5.48xlarge,H100,8,80,192,2048,50.00,25.5,Quote Q-1,https://example.com/q1,2026-11-20",
        "aws,us-east-1,p9.48xlarge,h100,8,80,192,2048,70,,Quote Q-1,https://example.com/q1,2026-11-20",
        "",  # blank lines are ignored
    )
    new = apply_offerings_csv(text, base, filename="q1.csv", today=TODAY)
    assert new.snapshot_id == compute_snapshot_id(new) and new.created == "2026-11-24"
    assert len(new.offerings) == len(base.offerings) + 1
    p5 = new.offering("aws/us-east-1/p5.48xlarge")
    assert (p5.on_demand_hourly, p5.spot_hourly) == (50.0, 25.5)
    assert p5.commitments == base.offering("aws/us-east-1/p5.48xlarge").commitments  # kept
    assert p5.interconnect == "nvlink+efa-3200"  # kept from the base when the CSV has none
    assert new.offering("aws/us-east-1/p9.48xlarge").gpu_model == "H100"  # alias normalised
    src = new.source(p5.sources[0])
    assert (src.name, src.url, src.date, src.retrieved) == ("Quote Q-1", "https://example.com/q1",
                                                            "2026-11-20", "2026-11-24")
    assert "q1.csv row 2" in p5.notes[0]
    # Other offerings and the base itself are untouched.
    assert new.offering("azure/eastus/Standard_NC4as_T4_v3") == base.offering("azure/eastus/Standard_NC4as_T4_v3")
    assert base.offering("aws/us-east-1/p5.48xlarge").on_demand_hourly == 55.04


def test_csv_reserved_columns_and_new_region() -> None:
    header = HEADER + ",reserved_1y_hourly,reserved_3y_hourly,country,jurisdiction,compliance_programs"
    text = _csv("aws,ap-south-1,p5.48xlarge,H100,8,80,,,60,,Quote,https://q,2026-11,40,30,IN,IN,HIPAA;ISO-27001",
                header=header)
    new = apply_offerings_csv(text, make_snapshot(), today=TODAY)
    o = new.offering("aws/ap-south-1/p5.48xlarge")
    assert [(c.term_months, c.effective_hourly_usd) for c in o.commitments] == [(12, 40.0), (36, 30.0)]
    region = new.region("aws", "ap-south-1")
    assert (region.country, region.jurisdiction, region.compliance_programs) == ("IN", "IN", ["HIPAA", "ISO-27001"])


def test_csv_every_bad_row_is_reported_and_nothing_returned() -> None:
    text = _csv(
        "aws,us-east-1,p5.48xlarge,H100,8,80,192,2048,-3,abc,Q,https://q,2026-11-20",        # row 2
        "aws,us-east-1,x1.big,H900,two,80,,,1.0,,Q,https://q,2026-11-20",                      # row 3
        "aws,us-east-1,x2.big,T4,1,16,,,,0,Q,https://q,2026/11/20",                            # row 4
        "aws,us-east-1,x3.big,T4,1,16,,,1e999,,Q,https://q,2026-11-20",                        # row 5
        "aws,mars-1,x4.big,T4,1,16,,,1.0,,Q,https://q,2026-11-20",                             # row 6
        "aws,us-east-1,x5.big,T4,1,16,,,1.0,,Q,https://q,2026-11-20",                          # row 7
        "aws,us-east-1,x5.big,T4,1,16,,,1.2,,Q,https://q,2026-11-20",                          # row 8 dup
        "aws,us-east-1,x6.big,T4,1,16",                                                        # row 9 short
    )
    with pytest.raises(ImportValidationError) as exc:
        apply_offerings_csv(text, make_snapshot(), today=TODAY)
    assert _issues(exc) == {
        (2, "on_demand_hourly"), (2, "spot_hourly"),
        (3, "gpu_model"), (3, "gpu_count"),
        (4, "on_demand_hourly"), (4, "spot_hourly"), (4, "source_date"),
        (5, "on_demand_hourly"),
        (6, "country"), (6, "jurisdiction"),
        (8, "instance_type"),
        (9, None),
    }
    by_key = {(i.row, i.column): i.message for i in exc.value.issues}
    assert "greater than 0" in by_key[(2, "on_demand_hourly")]
    assert "not a number" in by_key[(2, "spot_hourly")]
    assert "unknown GPU model 'H900'" in by_key[(3, "gpu_model")]
    assert "is required" in by_key[(4, "on_demand_hourly")]
    assert "also on row 7" in by_key[(8, "instance_type")]
    assert "12 problem(s)" in str(exc.value)


def test_csv_wrong_and_missing_columns() -> None:
    header = "provider,region,instance_type,gpu_model,gpu_count,on_demand_hourly,source_name,colour,colour"
    with pytest.raises(ImportValidationError) as exc:
        apply_offerings_csv(_csv("aws,us-east-1,p5.x,H100,8,1.0,Q,red,blue", header=header), make_snapshot())
    assert _issues(exc) == {(1, "colour"), (1, "source_url"), (1, "source_date")}
    msgs = [i.message for i in exc.value.issues]
    assert any(m.startswith("unknown column") for m in msgs)
    assert any(m == "duplicate column" for m in msgs)
    assert sum(m == "required column is missing" for m in msgs) == 2


def test_csv_gpu_known_but_not_in_base_and_empty_files() -> None:
    with pytest.raises(ImportValidationError) as exc:
        apply_offerings_csv(_csv("aws,us-east-1,p6.x,B200,8,180,,,90,,Q,https://q,2026-11-20"), make_snapshot())
    assert "no specifications" in exc.value.issues[0].message
    with pytest.raises(ImportValidationError, match="empty"):
        apply_offerings_csv("", make_snapshot())
    with pytest.raises(ImportValidationError, match="no offering rows"):
        apply_offerings_csv(HEADER + "\n", make_snapshot())


def test_documented_columns_are_accepted() -> None:
    assert set(CSV_REQUIRED) <= set(CSV_COLUMNS)
    assert "source_date" in CSV_REQUIRED and "spot_hourly" in CSV_COLUMNS


def test_json_snapshot_round_trip_and_computed_id(tmp_path) -> None:
    snap = make_snapshot()
    path = tmp_path / "s.json"
    path.write_text(snapshot_json(snap))
    assert read_import_file(path, base=None) == snap
    data = json.loads(snapshot_json(snap))
    data["snapshot_id"] = ""
    assert parse_import(json.dumps(data), filename="x.json", base=None).snapshot_id == snap.snapshot_id


def test_json_tampered_id_and_schema_errors() -> None:
    data = json.loads(snapshot_json(make_snapshot()))
    data["offerings"][0]["on_demand_hourly"] = 1.0
    with pytest.raises(ImportValidationError, match="does not match the content"):
        parse_import(json.dumps(data), filename="x.json", base=None)
    data["snapshot_id"] = ""
    data["offerings"][1]["on_demand_hourly"] = -5
    data["offerings"][3]["gpu_model"] = "H900"
    with pytest.raises(ImportValidationError) as exc:
        parse_import(json.dumps(data), filename="x.json", base=None)
    rows = {i.row for i in exc.value.issues}
    assert {2, 4} <= rows
    with pytest.raises(ImportValidationError, match="invalid JSON"):
        parse_import("{not json", filename="x.json", base=None)


def test_csv_needs_a_base_and_utf8() -> None:
    with pytest.raises(ImportValidationError, match="import a full snapshot first"):
        parse_import(_csv(), filename="a.csv", base=None)
    with pytest.raises(ImportValidationError, match="not UTF-8"):
        parse_import(b"\xff\xfe\x00bad", filename="a.csv", base=make_snapshot())
