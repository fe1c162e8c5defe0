"""Region compliance tags: spelled as the requirements schema, sourced, dated, scoped."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml

from app.catalog import Snapshot
from app.catalog.build import DATA_DIR, build_snapshot
from app.planner.demand import _frameworks_covered
from app.requirements.spec import Framework

_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")
FRAMEWORKS = set(get_args(Framework))


def _regions_yaml() -> dict[str, Any]:
    return yaml.safe_load((DATA_DIR / "regions.yaml").read_text(encoding="utf-8"))


def _program_sources(provider: str, region: str) -> dict[str, set[str]]:
    """program -> source ids as declared in regions.yaml (provider default + region)."""
    data = _regions_yaml()
    attrs = data["regions"][provider][region] or {}
    out: dict[str, set[str]] = {}
    for mapping in (
        data["defaults"][provider].get("compliance") or {},
        attrs.get("compliance") or {},
    ):
        for prog, sids in mapping.items():
            out.setdefault(prog, set()).update(sids)
    for prog in attrs.get("compliance_exclude", []):
        out.pop(prog, None)
    return out


def _programs(snapshot: Snapshot, provider: str) -> dict[str, set[str]]:
    return {
        r.region: set(r.compliance_programs) for r in snapshot.regions if r.provider == provider
    }


def test_programs_use_the_requirements_spelling(snapshot: Snapshot) -> None:
    for r in snapshot.regions:
        assert set(r.compliance_programs) <= FRAMEWORKS, r.key
        assert "GDPR" not in r.compliance_programs, r.key  # enforced via jurisdiction
        assert r.compliance_programs == sorted(set(r.compliance_programs)), r.key


def test_every_tag_resolves_to_a_dated_source(snapshot: Snapshot) -> None:
    by_id = {s.id: s for s in snapshot.sources}
    tagged = 0
    for r in snapshot.regions:
        declared = _program_sources(r.provider, r.region)
        assert set(declared) == set(r.compliance_programs), r.key  # nothing untraced
        for prog in r.compliance_programs:
            tagged += 1
            sids = declared[prog]
            assert sids, (r.key, prog)
            for sid in sids:
                src = by_id[sid]
                assert sid in r.sources, (r.key, prog, sid)
                assert _DATE.match(src.date) and _DATE.match(src.retrieved), (r.key, sid)
                assert src.url and src.note, sid
            assert f"{prog} [" in (r.note or ""), (r.key, prog)  # provenance kept in the snapshot
    assert tagged > 0


def test_aws_us_east_1() -> None:
    snap = build_snapshot()
    r = snap.region("aws", "us-east-1")
    assert {"HIPAA", "SOC2", "ISO27001", "PCI-DSS"} <= set(r.compliance_programs)
    assert "FedRAMP-Moderate" in r.compliance_programs
    assert "FedRAMP-High" not in r.compliance_programs  # High is GovCloud only
    assert "C5" not in r.compliance_programs  # C5 Region scope not sourced
    # the 2017 third-party HIPAA list was replaced by AWS's own pages
    assert "aws-hipaa-ec2-2017" not in {s.id for s in snap.sources}
    assert snap.source("aws-hipaa-eligible-2022").date == "2022-03-29"


def test_aws_fedramp_only_in_us_east_west(snapshot: Snapshot) -> None:
    progs = _programs(snapshot, "aws")
    fedramp = {name for name, p in progs.items() if p & {"FedRAMP-Moderate", "FedRAMP-High"}}
    assert fedramp == {"us-east-1", "us-east-2", "us-west-1", "us-west-2"}
    for name, p in progs.items():
        assert {"HIPAA", "SOC2", "ISO27001", "PCI-DSS"} <= p, name
        assert "C5" not in p, name
    assert "FedRAMP-Moderate" not in snapshot.region("aws", "eu-central-1").compliance_programs


def test_azure_us_regions_have_fedramp_high_only(snapshot: Snapshot) -> None:
    progs = _programs(snapshot, "azure")
    assert progs
    for name, p in progs.items():
        assert snapshot.region("azure", name).jurisdiction == "US"
        assert p == {"FedRAMP-High"}, name  # HIPAA/SOC2/ISO/PCI/C5: VM scope not sourced
    # FedRAMP-High satisfies a FedRAMP-Moderate requirement in the planner
    assert _frameworks_covered(["FedRAMP-Moderate"], progs["eastus"])
    assert not _frameworks_covered(["HIPAA"], progs["eastus"])


def test_gcp_us_region_has_hipaa(snapshot: Snapshot) -> None:
    assert snapshot.region("gcp", "us-central1").compliance_programs == ["HIPAA"]
    progs = _programs(snapshot, "gcp")
    tpu_only = {"us-central2", "southamerica-west1"}
    for name, p in progs.items():
        assert p == (set() if name in tpu_only else {"HIPAA"}), name
    # HIPAA now reachable outside AWS
    assert _frameworks_covered(["HIPAA"], progs["europe-west4"])


def test_lambda_regions_carry_only_what_was_sourced(snapshot: Snapshot) -> None:
    data = _regions_yaml()
    declared = data["defaults"]["lambda"].get("compliance") or {}
    for name, p in _programs(snapshot, "lambda").items():
        assert p == set(declared), name
        assert p == set(), name  # nothing Lambda-published was found (see gaps)


def test_unsourced_programs_are_listed_as_gaps(snapshot: Snapshot) -> None:
    gaps = [g for g in snapshot.gaps if g.startswith("Compliance, ")]
    text = " ".join(gaps)
    for needle in ("AWS", "Azure", "GCP", "Lambda", "GovCloud", "C5"):
        assert needle in text, needle
    md = (DATA_DIR / "SOURCES.md").read_text(encoding="utf-8")
    assert all(g.split(" - ")[0] in md for g in gaps)


def _write_data(tmp_path: Path, regions: dict[str, Any]) -> Path:
    for f in DATA_DIR.iterdir():
        if f.is_file():
            (tmp_path / f.name).write_bytes(f.read_bytes())
    (tmp_path / "reference").symlink_to(DATA_DIR / "reference")
    (tmp_path / "regions.yaml").write_text(yaml.safe_dump(regions), encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda d: d["defaults"]["lambda"].update(compliance={"SOC 2": ["skypilot-v9-lambda"]}),
            "unknown",
        ),
        (lambda d: d["defaults"]["lambda"].update(compliance={"SOC2": []}), "needs known sources"),
        (
            lambda d: d["defaults"]["lambda"].update(compliance={"SOC2": ["no-such-source"]}),
            "needs known",
        ),
        (
            lambda d: d["regions"]["lambda"].update(
                {"us-east-1": {"compliance_exclude": ["SOC2"]}}
            ),
            "not tagged",
        ),
    ],
)
def test_build_rejects_unsourced_or_misspelled_programs(
    tmp_path: Path, mutate: Any, message: str
) -> None:
    data = _regions_yaml()
    mutate(data)
    with pytest.raises(ValueError, match=message):
        build_snapshot(_write_data(tmp_path, data))
