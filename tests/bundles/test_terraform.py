"""Terraform bundle (AWS) and own-server bill of materials.

Each plan is rendered once per module into a temporary tree (``llm`` = the HIPAA example
with on-demand, reserved and spot groups in two regions, ``eu`` = the EU example with own
servers, ``nasty-*`` = the HIPAA example under hostile design names); ``terraform fmt``,
python-hcl2 and checkov then run once over the whole tree.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import hcl2
import pytest
from hcl2 import SerializationOptions

from app.bundles.context import BomLine, OtherCapacity, bundle_context
from app.bundles.package import render_bundle
from app.bundles.render import hcl
from app.bundles.terraform import (
    BOM_COLUMNS,
    EKS_MODULE,
    PROVIDERS,
    VPC_MODULE,
    _ami_type,
    align_hcl,
    render_bom,
    render_terraform,
    tag_value,
)
from app.catalog import load_snapshot
from app.planner.options import PlannerSettings
from app.planner.plan import make_plan
from app.requirements import load_example

ROOT = Path(__file__).resolve().parents[2]
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
NASTY = ['a"b\n${x}{{ y }}', "'; rm -rf /"]
PARSE = SerializationOptions(strip_string_quotes=True, with_comments=False, explicit_blocks=False)
CAPACITY = {"on_demand": ("ON_DEMAND", "on-demand"), "spot": ("SPOT", "spot"),
            "reserved": ("ON_DEMAND", "reserved")}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def snapshot():
    return load_snapshot()


@pytest.fixture(scope="module")
def llm(snapshot):
    spec = load_example("llm-finetune-hipaa")
    plan = make_plan(spec, snapshot)
    return spec, plan, bundle_context(spec, plan)


@pytest.fixture(scope="module")
def eu(snapshot):
    spec = load_example("eu-regulated-private")
    settings = PlannerSettings(fx_usd_per={"EUR": 1.0411}, private_staff_fte_per_server=0)
    plan = make_plan(spec, snapshot, settings)
    return spec, plan, bundle_context(spec, plan)


@pytest.fixture(scope="module")
def bundles(llm, eu) -> dict[str, dict[str, str]]:
    spec, plan, ctx = llm
    out = {"llm": render_terraform(ctx), "eu": render_terraform(eu[2])}
    for i, name in enumerate(NASTY):
        out[f"nasty-{i}"] = render_terraform(bundle_context(spec.model_copy(update={"name": name}), plan))
    return out


@pytest.fixture(scope="module")
def tree(bundles, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("terraform-bundles")
    for variant, files in bundles.items():
        for path, text in files.items():
            target = root / variant / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
    return root


def _parse(text: str) -> dict[str, Any]:
    return hcl2.loads(text, serialization_options=PARSE)


@pytest.fixture(scope="module")
def parsed(bundles) -> dict[str, dict[str, dict[str, Any]]]:
    """variant -> file name -> parsed HCL."""
    return {variant: {Path(p).name: _parse(t) for p, t in files.items() if p.endswith(".tf")}
            for variant, files in bundles.items()}


def _blocks(doc: dict[str, Any], kind: str) -> dict[str, Any]:
    """Merge ``module``/``variable``/``output`` (one label) blocks into name -> body."""
    return {name: body for item in doc.get(kind, []) for name, body in item.items()}


def _resources(doc: dict[str, Any], kind: str = "resource") -> dict[tuple[str, str], Any]:
    """Merge ``resource``/``data`` (two labels) blocks into (type, name) -> body."""
    return {(rtype, name): body for item in doc.get(kind, []) for rtype, named in item.items()
            for name, body in named.items()}


def _all(files: dict[str, dict[str, Any]], getter, *args) -> dict:
    out: dict = {}
    for doc in files.values():
        out.update(getter(doc, *args))
    return out


def _strings(value: Any):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _literal(value: str) -> str:
    """An HCL string's value with template escapes undone (``$${`` -> ``${``)."""
    return value.replace("$${", "${").replace("%%{", "%{")


# --------------------------------------------------------------------------- tools


def test_output_is_in_terraform_fmt_layout(tree) -> None:
    terraform = shutil.which("terraform") or "/usr/local/bin/terraform"
    if not Path(terraform).exists():
        pytest.fail("terraform binary not found (PATH or /usr/local/bin/terraform): needed for "
                    "`terraform fmt -check`")
    proc = subprocess.run([terraform, "fmt", "-check", "-recursive", "-diff", str(tree)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"not in terraform fmt layout:\n{proc.stdout}\n{proc.stderr}"


def test_checkov_finds_no_failures(tree, bundles) -> None:
    if not CHECKOV.exists():
        pytest.fail(f"checkov not found at {CHECKOV}: run `make test` (it installs .venv-checkov)")
    proc = subprocess.run([str(CHECKOV), "-d", str(tree), "--framework", "terraform",
                           "--skip-download", "-o", "json", "--quiet"],
                          capture_output=True, text=True, timeout=600, cwd=tree)
    assert proc.stdout.strip(), proc.stderr
    reports = json.loads(proc.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    summary = {k: sum(r["summary"][k] for r in reports) for k in ("passed", "failed", "skipped")}
    failed = [(c["check_id"], c["resource"], c["file_path"])
              for r in reports for c in r.get("results", {}).get("failed_checks", [])]
    assert summary["failed"] == 0, failed
    assert summary["passed"] > 100 and sum(r["summary"]["parsing_errors"] for r in reports) == 0
    # Every skip in the code is listed, with its reason, in the README.
    for variant, files in bundles.items():
        skipped = set(re.findall(r"#checkov:skip=(CKV\w+):", "".join(files.values())))
        readme = files["terraform/README.md"]
        assert skipped and all(c.replace("_", "\\_") in readme for c in skipped), variant


def test_every_tf_file_parses(parsed, bundles) -> None:
    for variant, files in bundles.items():
        assert {Path(p).name for p in files if p.endswith(".tf")} == set(parsed[variant])
        assert set(parsed[variant]) >= {"versions.tf", "providers.tf", "variables.tf", "main.tf",
                                        "storage.tf", "iam.tf", "budget.tf", "outputs.tf"}


def test_align_hcl_matches_fmt_rules() -> None:
    text = 'a = 1\nlong = "x = {"\nm = {\n  k = 1\n}\n# c\nzz = [1]\n'
    assert align_hcl(text) == 'a    = 1\nlong = "x = {"\nm = {\n  k = 1\n}\n# c\nzz = [1]\n'


# --------------------------------------------------------------------------- content


def test_versions_are_pinned(parsed) -> None:
    doc = parsed["llm"]["versions.tf"]["terraform"][0]
    assert doc["required_version"].startswith(">=") and "<" in doc["required_version"]
    providers = doc["required_providers"][0]
    assert {k: (v["source"], v["version"]) for k, v in providers.items()} == {
        k: (source, f"= {version}") for k, (source, version) in PROVIDERS.items()}
    assert all(re.fullmatch(r"= \d+\.\d+\.\d+", v["version"]) for v in providers.values())
    modules = _all(parsed["llm"], _blocks, "module")
    for name, body in modules.items():
        expected = VPC_MODULE if name.startswith("vpc_") else EKS_MODULE
        assert (body["source"], body["version"]) == expected
        assert re.fullmatch(r"\d+\.\d+\.\d+", body["version"])


def test_one_cluster_per_region_with_provider_alias(parsed, llm) -> None:
    ctx = llm[2]
    regions = sorted({g.region for g in ctx.node_groups})
    assert len(regions) == 2
    providers = parsed["llm"]["providers.tf"]["provider"]
    aliases = {p["aws"]["alias"]: p["aws"]["region"] for p in providers if "alias" in p["aws"]}
    assert sorted(aliases.values()) == regions
    assert all(p["aws"]["default_tags"][0]["tags"] == "${local.default_tags}" for p in providers)
    modules = _all(parsed["llm"], _blocks, "module")
    for region in regions:
        ident = region.replace("-", "_")
        eks = modules[f"eks_{ident}"]
        assert eks["providers"] == {"aws": f"${{aws.{ident}}}"}
        assert eks["cluster_name"] == f"{ctx.slug}-{region}"
        assert eks["enable_irsa"] is True and eks["cluster_endpoint_private_access"] is True
        assert modules[f"vpc_{ident}"]["providers"] == {"aws": f"${{aws.{ident}}}"}


def test_node_groups_match_the_plan(parsed, llm) -> None:
    ctx = llm[2]
    modules = _all(parsed["llm"], _blocks, "module")
    assert {g.capacity_type for g in ctx.node_groups} == {"on_demand", "spot", "reserved"}
    for g in ctx.node_groups:
        groups = modules[f"eks_{g.region.replace('-', '_')}"]["eks_managed_node_groups"]
        ng = groups[g.name]
        eks_type, label = CAPACITY[g.capacity_type]
        assert ng["instance_types"] == [g.instance_type]
        assert ng["capacity_type"] == eks_type
        assert (ng["min_size"], ng["max_size"], ng["desired_size"]) == (g.min_size, g.max_size, g.desired_size)
        assert ng["ami_type"] == "AL2023_x86_64_NVIDIA"
        assert ng["labels"] == {"archplan.io/capacity-type": label, "archplan.io/gpu-model": g.gpu_model}
        taints = {(t["key"], t["value"], t["effect"]) for t in ng["taints"].values()}
        assert taints == {("nvidia.com/gpu", "true", "NO_SCHEDULE"),
                          ("archplan.io/capacity-type", label, "NO_SCHEDULE")}
    for groups in (m["eks_managed_node_groups"] for n, m in modules.items() if n.startswith("eks_")):
        assert "taints" not in groups["system"]  # add-ons need an untainted group


def test_reserved_groups_run_in_capacity_reservations(parsed, llm) -> None:
    ctx = llm[2]
    reserved = [g for g in ctx.node_groups if g.capacity_type == "reserved"]
    assert reserved and all(g.reserved_instances > 0 for g in reserved)
    reservations = {name: body for (rtype, name), body in _all(parsed["llm"], _resources).items()
                    if rtype == "aws_ec2_capacity_reservation"}
    assert len(reservations) == len(reserved)
    modules = _all(parsed["llm"], _blocks, "module")
    for g in reserved:
        ng = modules[f"eks_{g.region.replace('-', '_')}"]["eks_managed_node_groups"][g.name]
        target = ng["capacity_reservation_specification"]["capacity_reservation_target"]
        name = re.fullmatch(r"\$\{aws_ec2_capacity_reservation\.(\w+)\.id\}",
                            target["capacity_reservation_id"]).group(1)
        res = reservations[name]
        assert res["instance_count"] == g.reserved_instances == g.min_size == g.desired_size
        assert res["instance_type"] == g.instance_type
        assert res["instance_match_criteria"] == "targeted"
        assert res["provider"] == f"${{aws.{g.region.replace('-', '_')}}}"
        assert f"aws_ec2_capacity_reservation.{name}.availability_zone" in ng["subnet_ids"]
    assert "capacity_reservation_specification" not in str(
        [ng for m in modules.values() for k, ng in m.get("eks_managed_node_groups", {}).items()
         if not k.startswith("reserved-")])


def test_budget_and_default_tags(parsed, llm) -> None:
    ctx = llm[2]
    variables = _blocks(parsed["llm"]["variables.tf"], "variable")
    assert variables["monthly_budget_usd"]["default"] == ctx.monthly_budget_usd > 0
    budget = _resources(parsed["llm"]["budget.tf"])[("aws_budgets_budget", "monthly")]
    assert budget["limit_amount"] == '${format("%.2f", var.monthly_budget_usd)}'
    assert (budget["budget_type"], budget["time_unit"], budget["limit_unit"]) == ("COST", "MONTHLY", "USD")
    notes = {(n["threshold"], n["notification_type"], n["threshold_type"]) for n in budget["notification"]}
    assert notes == {(80, "ACTUAL", "PERCENTAGE"), (100, "FORECASTED", "PERCENTAGE")}
    assert all(n["subscriber_email_addresses"] == "${var.budget_alert_emails}" for n in budget["notification"])
    assert ctx.plan_id in str(budget["dynamic"])
    local = parsed["llm"]["main.tf"]["locals"][0]
    assert local["default_tags"] == {
        "archplan:plan-id": ctx.plan_id, "archplan:snapshot-id": ctx.snapshot_id,
        "archplan:design": ctx.slug, "archplan:design-name": "Clinical note summarizer HIPAA",
        "archplan:managed-by": "terraform"}
    assert local["design_name"] == ctx.design_name == "Clinical note summarizer (HIPAA)"


def test_variables_are_described_and_validated(parsed) -> None:
    variables = _blocks(parsed["llm"]["variables.tf"], "variable")
    assert all(v["description"] for v in variables.values())
    for name in ("primary_region", "vpc_cidrs", "monthly_budget_usd", "budget_alert_emails",
                 "kubernetes_namespace", "cluster_endpoint_public_access_cidrs"):
        assert variables[name]["validation"], name
    assert "default" not in variables["budget_alert_emails"]  # the operator must choose
    assert variables["primary_region"]["default"] == "us-east-1"
    assert variables["vpc_cidrs"]["default"] == {"us-east-1": "10.0.0.0/16", "us-west-2": "10.1.0.0/16"}
    outputs = _blocks(parsed["llm"]["outputs.tf"], "output")
    assert all(o["description"] for o in outputs.values())
    assert {"clusters", "buckets", "training_role_arn", "serving_role_arn", "plan_id"} <= set(outputs)


def test_buckets_follow_the_spec(parsed, llm) -> None:
    spec, _, ctx = llm
    res = _all(parsed["llm"], _resources)
    kms = res[("aws_kms_key", "data")]
    assert kms["enable_key_rotation"] is True
    for b in spec.architecture.storage:
        ident = b.name.replace("-", "_")
        bucket = res[("aws_s3_bucket", ident)]
        assert bucket["bucket"] == f'${{join("-", ["{ctx.slug}-{b.name}", random_id.bucket_suffix.hex])}}'
        sse = res[("aws_s3_bucket_server_side_encryption_configuration", ident)]["rule"][0]
        default = sse["apply_server_side_encryption_by_default"][0]
        assert (default["sse_algorithm"], default["kms_master_key_id"]) == ("aws:kms", "${aws_kms_key.data.arn}")
        pab = res[("aws_s3_bucket_public_access_block", ident)]
        assert all(pab[k] is True for k in ("block_public_acls", "block_public_policy",
                                            "ignore_public_acls", "restrict_public_buckets"))
        assert (("aws_s3_bucket_versioning", ident) in res) == b.versioning
        rule = res[("aws_s3_bucket_lifecycle_configuration", ident)]["rule"][0]
        if b.retention_days:
            assert rule["expiration"][0]["days"] == b.retention_days
        else:
            assert "expiration" not in rule
        assert ("noncurrent_version_expiration" in rule) == b.versioning
        assert res[("aws_s3_bucket_logging", ident)]["target_bucket"] == "${aws_s3_bucket.access_logs.id}"


def test_default_buckets_when_the_spec_has_none(llm) -> None:
    spec, plan, _ = llm
    bare = spec.model_copy(update={"architecture": spec.architecture.model_copy(update={"storage": []})})
    files = render_terraform(bundle_context(bare, plan))
    res = _resources(_parse(files["terraform/storage.tf"]))
    assert {n for t, n in res if t == "aws_s3_bucket"} == {"raw", "features", "models", "access_logs"}
    assert {n for t, n in res if t == "aws_s3_bucket_versioning"} == {"raw", "features", "models", "access_logs"}


@pytest.mark.parametrize(("instance_type", "ami", "taint"), [
    ("g6e.xlarge", "AL2023_x86_64_NVIDIA", "nvidia.com/gpu"),
    ("p6-b300.48xlarge", "AL2023_x86_64_NVIDIA", "nvidia.com/gpu"),
    ("g5g.xlarge", "AL2023_ARM_64_NVIDIA", "nvidia.com/gpu"),  # Graviton host
    ("trn2.48xlarge", "AL2023_x86_64_NEURON", "aws.amazon.com/neuron"),
    ("g4ad.xlarge", "AL2023_x86_64_STANDARD", "amd.com/gpu"),
])
def test_ami_type_follows_the_instance_family(instance_type, ami, taint) -> None:
    assert _ami_type(instance_type) == (ami, taint)


def test_eu_archive_bucket_transitions(parsed, eu) -> None:
    res = _all(parsed["eu"], _resources)
    rule = res[("aws_s3_bucket_lifecycle_configuration", "archive")]["rule"][0]
    assert rule["transition"][0] == {"days": 0, "storage_class": "GLACIER_IR"}
    assert rule["expiration"][0]["days"] == 3650
    assert not [k for k in res if k[0] == "aws_ec2_capacity_reservation"]  # no reservations there
    assert _blocks(parsed["eu"]["outputs.tf"], "output")["capacity_reservation_ids"]["value"] == {}


def test_irsa_roles_are_least_privilege(parsed, llm) -> None:
    iam = parsed["llm"]["iam.tf"]
    data = _resources(iam, "data")
    regions = sorted({g.region.replace("-", "_") for g in llm[2].node_groups})
    for role, sa in (("training", "training_service_account"), ("serving", "serving_service_account")):
        statements = data[("aws_iam_policy_document", f"{role}_trust")]["statement"]
        assert len(statements) == len(regions)
        for st, ident in zip(statements, regions, strict=True):
            assert st["actions"] == ["sts:AssumeRoleWithWebIdentity"]
            assert st["principals"][0]["identifiers"] == [f"${{module.eks_{ident}.oidc_provider_arn}}"]
            conds = {c["variable"]: c["values"] for c in st["condition"]}
            assert conds[f'${{format("%s:sub", module.eks_{ident}.oidc_provider)}}'] == [
                f'${{format("system:serviceaccount:%s:%s", var.kubernetes_namespace, var.{sa})}}']
            assert conds[f'${{format("%s:aud", module.eks_{ident}.oidc_provider)}}'] == ["sts.amazonaws.com"]
    serving = {s["sid"]: s for s in data[("aws_iam_policy_document", "serving")]["statement"]}
    assert serving["ReadModels"]["actions"] == ["s3:GetObject", "s3:GetObjectVersion"]
    assert serving["ReadModels"]["resources"] == ["${aws_s3_bucket.models.arn}/*"]
    assert serving["DecryptModels"] == {"sid": "DecryptModels", "effect": "Allow",
                                        "actions": ["kms:Decrypt"], "resources": ["${aws_kms_key.data.arn}"]}
    assert not [a for s in serving.values() for a in s["actions"] if "Put" in a or "Delete" in a]
    training = {s["sid"]: s for s in data[("aws_iam_policy_document", "training")]["statement"]}
    assert "${aws_s3_bucket.phi_raw.arn}/*" in training["ReadData"]["resources"]
    assert training["WriteArtifacts"]["resources"] == ["${aws_s3_bucket.checkpoints.arn}/*",
                                                       "${aws_s3_bucket.models.arn}/*"]
    assert training["UseDataKey"]["resources"] == ["${aws_kms_key.data.arn}"]
    everything = [r for s in [*serving.values(), *training.values()] for r in s["resources"]]
    assert "*" not in everything


def test_readme_explains_apply_costs_and_scope(bundles, llm, eu) -> None:
    readme = bundles["llm"]["terraform/README.md"]
    ctx = llm[2]
    for text in ("terraform init", "terraform plan", "terraform apply", "## Costs", "## Not generated here",
                 ctx.plan_id.replace("-", "\\-"), ctx.snapshot_id.replace("-", "\\-"), "Other providers: none",
                 "5,336.79" if ctx.monthly_budget_usd == 5336.79 else "USD"):
        assert text in readme, text
    assert "private\\-servers" not in readme and "private-servers/bom.md" in bundles["eu"]["terraform/README.md"]
    other = OtherCapacity(provider="gcp", region="us-central1", item="a3-highgpu-8g|x", kind="spot",
                          quantity=120.5, note="instance-hours over the horizon")
    files = render_terraform(ctx.model_copy(update={"other_capacity": [other]}))
    assert "| gcp | us\\-central1 | a3\\-highgpu\\-8g\\|x | spot | 120\\.5 |" in files["terraform/README.md"]


def test_no_aws_capacity_gives_only_a_readme(eu) -> None:
    ctx = eu[2].model_copy(update={"node_groups": []})
    files = render_terraform(ctx)
    assert list(files) == ["terraform/README.md"]
    assert "no Terraform is generated" in files["terraform/README.md"]
    assert "private-servers/bom.md" in files["terraform/README.md"]


def test_registered_in_the_package(llm) -> None:
    ctx = llm[2]
    assert render_bundle(ctx, "terraform") == render_terraform(ctx)
    assert render_bundle(ctx, "private-servers") == render_bom(ctx)


# --------------------------------------------------------------------------- safety


@pytest.mark.parametrize("index", range(len(NASTY)))
def test_hostile_design_names_stay_inert(index, parsed, bundles) -> None:
    name = NASTY[index]
    variant = f"nasty-{index}"
    values = [v for doc in parsed[variant].values() for v in _strings(doc)]
    # The exact name survives as a string value (with HCL's own $${ escape) ...
    assert name in {_literal(v) for v in values}
    assert parsed[variant]["main.tf"]["locals"][0]["design_name"] == name.replace("${", "$${")
    # ... no interpolation of it survives unescaped, and it never lands outside a string.
    assert not [v for v in values if re.search(r"(?<!\$)\$\{x\}", v)]
    hcl_text = "".join(t for p, t in bundles[variant].items() if p.endswith(".tf"))
    encoded = hcl(name)
    assert hcl_text.count(encoded) == 1  # local.design_name, nowhere else
    tag = parsed[variant]["main.tf"]["locals"][0]["default_tags"]["archplan:design-name"]
    assert tag == tag_value(name, "x") and re.fullmatch(r"[\w .:/=+\-@]+", tag)
    rest = hcl_text.replace(encoded, "").replace(hcl(tag), "")  # outside those two strings:
    assert "rm -rf" not in rest and "{{ y }}" not in rest and not re.search(r"(?<!\$)\$\{x\}", hcl_text)
    # Identifiers only ever use the slug.
    idents = [k for doc in parsed[variant].values() for item in doc.get("resource", [])
              for named in item.values() for k in named]
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", k) for k in idents)
    readme = bundles[variant]["terraform/README.md"]
    assert name not in readme and "\n" not in readme.splitlines()[0]


def test_rendering_is_deterministic(llm, eu, snapshot) -> None:
    assert render_terraform(llm[2]) == render_terraform(llm[2])
    assert render_bom(eu[2], snapshot) == render_bom(eu[2], snapshot)


# --------------------------------------------------------------------------- BOM


def test_bom_for_own_servers(eu, snapshot) -> None:
    ctx = eu[2]
    assert ctx.bom
    files = render_bom(ctx, snapshot)
    rows = list(csv.DictReader(io.StringIO(files["private-servers/bom.csv"])))
    assert list(rows[0]) == BOM_COLUMNS and len(rows) == len(ctx.bom)
    skus = {s.id: s for s in snapshot.private_servers}
    for row in rows:
        sku = skus[row["server_model"]]
        qty = int(row["quantity"])
        assert float(row["power_max_kw"]) == sku.power_max_kw.value
        assert int(row["rack_units"]) == sku.rack_units
        assert float(row["total_power_max_kw"]) == pytest.approx(sku.power_max_kw.value * qty)
        assert int(row["total_rack_units"]) == sku.rack_units * qty
        assert row["order_month"] <= (row["in_service_month"] or "9999")
    text = files["private-servers/bom.md"]
    assert "| dgx\\-h100\\-8x | eu\\-frankfurt\\-colo | H100 |" in text
    assert "## Totals" in text and "## Order by" in text and "**2027\\-01**" in text
    assert "Maximum power draw: 10\\.2 kW" in text and "Rack space: 8 U" in text


def test_bom_escapes_and_unknown_figures(eu, snapshot) -> None:
    hostile = BomLine(server_model="dgx-a100-8x", site='lab|"x"\n# <b>', gpu_model="A100-40GB",
                      gpus_per_server=8, quantity=2, order_month="2027-02", in_service_month=None,
                      lead_time_months=4, unit_price_usd=200000, monthly_running_usd=5000)
    ctx = eu[2].model_copy(update={"bom": [*eu[2].bom, hostile]})
    files = render_bom(ctx, snapshot)
    rows = list(csv.DictReader(io.StringIO(files["private-servers/bom.csv"])))
    assert rows[-1]["site"] == 'lab|"x"\n# <b>'  # the csv module quotes it; round-trips exactly
    assert rows[-1]["power_max_kw"] == rows[-1]["total_rack_units"] == ""  # not in the catalog
    text = files["private-servers/bom.md"]
    assert 'lab\\|"x" \\# \\<b\\>' in text and "<b>" not in text
    assert "\\(without dgx\\-a100\\-8x: not in the catalog\\)" in text
    assert all(line.count("|") - line.count("\\|") == 16 for line in text.splitlines()
               if line.startswith("| "))


def test_bom_empty(llm) -> None:
    files = render_bom(llm[2])
    assert files["private-servers/bom.csv"] == ",".join(BOM_COLUMNS) + "\n"
    assert files["private-servers/bom.md"].count("\n") == 1
    assert "No own servers" in files["private-servers/bom.md"]
