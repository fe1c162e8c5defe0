"""AWS refresh against real boto3 clients wrapped in botocore's Stubber, replaying recorded
(synthetic, real-format) Price List and spot-history pages. No network, no credentials."""

from __future__ import annotations

import copy
import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import ANY, Stubber

from app.catalog.gpus import CANONICAL_ACCELERATORS
from app.catalog.refresh import RefreshError, refresh_aws
from app.catalog.refresh.aws import AWS_FAMILY_ACCELERATOR, accelerator_for_instance_type
from app.catalog.schema import Snapshot, compute_snapshot_id, snapshot_json
from tests.catalog_refresh.conftest import TODAY, offerings_of, recorded

REGION = "us-east-1"
PAGE1 = "get_products_us-east-1_gpu_page1.json"
PAGE2 = "get_products_us-east-1_gpu_page2.json"
EMPTY = "get_products_empty.json"
SPOT1 = "describe_spot_price_history_us-east-1_page1.json"
SPOT2 = "describe_spot_price_history_us-east-1_page2.json"
SPOT_TYPES = ["g5.xlarge", "g6e.xlarge", "p4d.24xlarge", "p5.48xlarge"]


def _client(service: str, region: str = REGION):
    return boto3.client(
        service, region_name=region, aws_access_key_id="x", aws_secret_access_key="y"
    )


def products_params(field: str, value: str, region: str = REGION, token: str | None = None):
    filters = [
        {"Type": "TERM_MATCH", "Field": f, "Value": v}
        for f, v in [
            ("operatingSystem", "Linux"),
            ("tenancy", "Shared"),
            ("preInstalledSw", "NA"),
            ("capacitystatus", "Used"),
            ("regionCode", region),
            (field, value),
        ]
    ]
    params: dict[str, Any] = {
        "ServiceCode": "AmazonEC2",
        "Filters": filters,
        "FormatVersion": "aws_v1",
        "MaxResults": 100,
    }
    if token:
        params["NextToken"] = token
    return params


def spot_params(types: list[str], token: str | None = None):
    params: dict[str, Any] = {
        "InstanceTypes": types,
        "ProductDescriptions": ["Linux/UNIX"],
        "StartTime": ANY,
        "MaxResults": 1000,
    }
    if token:
        params["NextToken"] = token
    return params


class Aws:
    """Stubbed pricing + per-region EC2 clients."""

    def __init__(self) -> None:
        self.pricing = _client("pricing")
        self.pricing_stub = Stubber(self.pricing)
        self.ec2: dict[str, Any] = {}
        self.ec2_stubs: dict[str, Stubber] = {}

    def ec2_stub(self, region: str) -> Stubber:
        if region not in self.ec2:
            self.ec2[region] = _client("ec2", region)
            self.ec2_stubs[region] = Stubber(self.ec2[region])
        return self.ec2_stubs[region]

    def factory(self, region: str):
        self.ec2_stub(region)
        return self.ec2[region]

    def add_products(self, response: dict, field: str, value: str, region=REGION, token=None):
        self.pricing_stub.add_response(
            "get_products", response, products_params(field, value, region, token)
        )

    def add_standard_pages(self, page1: dict | None = None, page2: dict | None = None) -> None:
        page1 = page1 or recorded("aws", PAGE1)
        self.add_products(page1, "instanceFamily", "GPU instance")
        self.add_products(
            page2 or recorded("aws", PAGE2),
            "instanceFamily",
            "GPU instance",
            token=page1["NextToken"],
        )
        # p3.2xlarge (in the base) is not in the family pages -> asked for by type.
        self.add_products(recorded("aws", EMPTY), "instanceType", "p3.2xlarge")

    def add_standard_spot(self) -> None:
        stub = self.ec2_stub(REGION)
        page1 = recorded("aws", SPOT1)
        stub.add_response("describe_spot_price_history", page1, spot_params(SPOT_TYPES))
        stub.add_response(
            "describe_spot_price_history",
            recorded("aws", SPOT2),
            spot_params(SPOT_TYPES, page1["NextToken"]),
        )

    def run(self, base: Snapshot, **kw):
        with self.pricing_stub:
            for s in self.ec2_stubs.values():
                s.activate()
            try:
                return refresh_aws(
                    base,
                    pricing_client=self.pricing,
                    ec2_client_factory=self.factory,
                    today=TODAY,
                    **kw,
                )
            finally:
                for s in self.ec2_stubs.values():
                    s.deactivate()

    def assert_done(self) -> None:
        self.pricing_stub.assert_no_pending_responses()
        for s in self.ec2_stubs.values():
            s.assert_no_pending_responses()


@pytest.fixture
def aws() -> Aws:
    return Aws()


@pytest.fixture
def result(aws: Aws, base: Snapshot, sleeps):
    aws.add_standard_pages()
    aws.add_standard_spot()
    res = aws.run(base, regions=[REGION], sleep=sleeps)
    aws.assert_done()
    return res


def _page_with(page: dict, index: int, mutate) -> dict:
    page = copy.deepcopy(page)
    doc = json.loads(page["PriceList"][index])
    mutate(doc)
    page["PriceList"][index] = json.dumps(doc, separators=(",", ":"))
    return page


# --------------------------------------------------------------------------- success


def test_counts_and_pagination(result, sleeps):
    assert (result.added, result.updated, result.unchanged, result.removed) == (1, 2, 1, 1)
    assert result.skipped == 0
    assert sleeps.calls == []
    keys = {o.key for o in result.snapshot.offerings if o.provider == "aws"}
    # page 1 (p4d, g5) and page 2 (p5, g6e) both made it in
    assert {
        "aws/us-east-1/p4d.24xlarge",
        "aws/us-east-1/g5.xlarge",
        "aws/us-east-1/p5.48xlarge",
        "aws/us-east-1/g6e.xlarge",
    } <= keys


def test_on_demand_prices_and_new_source(result):
    snap = result.snapshot
    p4d = snap.offering("aws/us-east-1/p4d.24xlarge")
    assert p4d.on_demand_hourly == pytest.approx(21.957642)
    assert result.source.id == "aws-price-list-api-2026-11-24"
    assert result.source.name == "AWS Price List API"
    assert result.source.date == result.source.retrieved == "2026-11-24"
    assert result.source.url.startswith("https://api.pricing.us-east-1.amazonaws.com")
    assert "2026-11-20T18:09:41Z" in (result.source.note or "")
    assert [s.id for s in result.extra_sources] == ["aws-ec2-spot-price-history-2026-11-24"]
    ids = {s.id for s in snap.sources}
    assert {"aws-price-list-api-2026-11-24", "aws-ec2-spot-price-history-2026-11-24"} <= ids
    # hardware and old provenance kept, new sources appended
    assert p4d.interconnect == "nvlink+efa-400" and p4d.gpu_count == 8
    assert p4d.sources == [  # sorted, as the build writes them
        "aws-ec2-spot-price-history-2026-11-24",
        "aws-price-list-api-2026-11-24",
        "test-aws-catalog",
        "test-aws-ri",
    ]


# (term months, payment option, class) -> (upfront, hourly, effective hourly)
P4D_RESERVED = {
    (12, "no_upfront", "standard"): (0.0, 13.921094, 13.921094),
    (12, "partial_upfront", "standard"): (58000.0, 6.621, 6.621 + 58000 / 8760),
    (12, "all_upfront", "standard"): (113700.0, None, 113700 / 8760),
    (36, "no_upfront", "standard"): (0.0, 9.427, 9.427),
    (36, "partial_upfront", "standard"): (112000.0, 4.262, 4.262 + 112000 / 26280),
    (36, "all_upfront", "standard"): (219500.0, None, 219500 / 26280),
    (12, "no_upfront", "convertible"): (0.0, 16.254, 16.254),
    (36, "all_upfront", "convertible"): (263000.0, None, 263000 / 26280),
}


def test_reserved_terms_and_effective_hourly(result):
    p4d = result.snapshot.offering("aws/us-east-1/p4d.24xlarge")
    reserved = {
        (c.term_months, c.payment_option, c.offering_class): c
        for c in p4d.commitments
        if c.kind == "reserved"
    }
    assert set(reserved) == set(P4D_RESERVED)
    for k, (upfront, hourly, effective) in P4D_RESERVED.items():
        c = reserved[k]
        assert c.upfront_usd == pytest.approx(upfront)
        assert c.hourly_usd == (pytest.approx(hourly) if hourly is not None else None)
        assert c.effective_hourly_usd == pytest.approx(effective, rel=1e-9)
        assert c.estimate is False
        assert c.source == "aws-price-list-api-2026-11-24" and c.date == "2026-11-24"
    # the old vantage-derived RI is replaced, not duplicated
    assert all(c.source != "test-aws-ri" for c in p4d.commitments)
    # concrete arithmetic check: 58000 / 8760 = 6.6210046 -> 13.2420046
    assert reserved[(12, "partial_upfront", "standard")].effective_hourly_usd == pytest.approx(
        13.24200457, abs=1e-8
    )


def test_spot_is_minimum_of_regular_zones(result):
    snap = result.snapshot
    # p4d: 1a 8.0087, 1b 9.112, 1d 7.7423; the Local Zone us-east-1-atl-2a (4.0) is excluded
    assert snap.offering("aws/us-east-1/p4d.24xlarge").spot_hourly == pytest.approx(7.7423)
    assert snap.offering("aws/us-east-1/g5.xlarge").spot_hourly == pytest.approx(0.3985)
    assert snap.offering("aws/us-east-1/g6e.xlarge").spot_hourly == pytest.approx(1.3326)
    # no spot entries at all -> no spot market
    assert snap.offering("aws/us-east-1/p5.48xlarge").spot_hourly is None


def test_unchanged_offering_keeps_other_commitment_kinds(result):
    p5 = result.snapshot.offering("aws/us-east-1/p5.48xlarge")
    assert p5.on_demand_hourly == 55.04
    assert [c.kind for c in p5.commitments] == ["capacity_block"]
    assert p5.commitments[0].effective_hourly_usd == 39.33


def test_new_gpu_type_added_when_identified(result):
    g6e = result.snapshot.offering("aws/us-east-1/g6e.xlarge")
    assert (g6e.gpu_model, g6e.gpu_count, g6e.accelerator_kind) == ("L40S", 1, "gpu")
    assert (g6e.vcpus, g6e.ram_gb) == (4.0, 32.0)
    assert g6e.gpu_memory_gb is None and g6e.interconnect is None  # not guessed
    assert g6e.on_demand_hourly == pytest.approx(1.861)
    assert [(c.term_months, c.payment_option, c.effective_hourly_usd) for c in g6e.commitments] == [
        (12, "no_upfront", pytest.approx(1.17243))
    ]
    assert any("g6e" in n and "Price List" in n for n in g6e.notes)


def test_unknown_gpu_reported_not_added(result):
    keys = {o.key for o in result.snapshot.offerings}
    assert "aws/us-east-1/g6f.large" not in keys
    msgs = [w for w in result.warnings if "g6f.large" in w]
    assert len(msgs) == 1 and "g6f" in msgs[0] and "not guessed" in msgs[0]


def test_removed_type_recorded_as_correction(result):
    keys = {o.key for o in result.snapshot.offerings}
    assert "aws/us-east-1/p3.2xlarge" not in keys
    (corr,) = [c for c in result.snapshot.corrections if c.action == "dropped_row"]
    assert corr.keys == ["aws/us-east-1/p3.2xlarge"]
    assert corr.source == "aws-price-list-api-2026-11-24" and corr.provider == "aws"
    assert any("p3.2xlarge" in w for w in result.warnings)


def test_other_offerings_untouched(result, base):
    snap = result.snapshot
    for provider in ("azure", "gcp"):
        assert offerings_of(snap, provider) == offerings_of(base, provider)
    # same provider, region outside the refresh
    assert offerings_of(snap, "aws", "us-west-2") == offerings_of(base, "aws", "us-west-2")
    assert snap.regions == base.regions and snap.gpus == base.gpus


def test_new_snapshot_validates_with_new_id(result, base, base_json):
    snap = result.snapshot
    again = Snapshot.model_validate_json(snapshot_json(snap))
    assert compute_snapshot_id(again) == snap.snapshot_id
    assert snap.snapshot_id != base.snapshot_id
    assert snap.snapshot_id.startswith("2026-11-24-")
    assert snap.created == "2026-11-24"
    assert snapshot_json(base) == base_json  # base object not modified


def test_all_regions_by_default_and_empty_region_kept(aws, base, sleeps):
    aws.add_standard_pages()
    # us-west-2: nothing listed at all -> its offerings are kept, with a warning (and no
    # per-type follow-up queries are made for a region that returned nothing)
    aws.add_products(recorded("aws", EMPTY), "instanceFamily", "GPU instance", region="us-west-2")
    aws.add_standard_spot()
    res = aws.run(base, sleep=sleeps)
    aws.assert_done()
    assert res.skipped == 1 and res.removed == 1
    assert offerings_of(res.snapshot, "aws", "us-west-2") == offerings_of(base, "aws", "us-west-2")
    assert any("us-west-2" in w and "no usable rows" in w for w in res.warnings)


def test_neuron_offerings_add_the_asic_family_query(aws, base, sleeps):
    inf2 = base.offering("aws/us-east-1/g5.xlarge").model_copy(
        update={
            "instance_type": "inf2.xlarge",
            "accelerator_kind": "neuron",
            "gpu_model": "Inferentia2",
            "commitments": [],
        }
    )
    from app.catalog.schema import GpuModel

    base = base.model_copy(
        update={
            "offerings": [*base.offerings, inf2],
            "gpus": [*base.gpus, GpuModel(name="Inferentia2", kind="neuron", vendor="AWS")],
        }
    )
    page1 = recorded("aws", PAGE1)
    aws.add_products(page1, "instanceFamily", "GPU instance")
    aws.add_products(
        recorded("aws", PAGE2), "instanceFamily", "GPU instance", token=page1["NextToken"]
    )
    aws.add_products(recorded("aws", EMPTY), "instanceFamily", "Machine Learning ASIC Instances")
    aws.add_products(recorded("aws", EMPTY), "instanceType", "inf2.xlarge")
    aws.add_products(recorded("aws", EMPTY), "instanceType", "p3.2xlarge")
    aws.add_standard_spot()
    res = aws.run(base, regions=[REGION], sleep=sleeps)
    aws.assert_done()
    assert res.removed == 2  # p3.2xlarge and inf2.xlarge no longer listed


# --------------------------------------------------------------------------- row problems


def test_unusable_row_is_skipped_with_correction_and_base_kept(aws, base, sleeps):
    def break_price(doc):
        term = next(iter(doc["terms"]["OnDemand"].values()))
        next(iter(term["priceDimensions"].values()))["pricePerUnit"] = {"USD": "n/a"}

    page1 = _page_with(recorded("aws", PAGE1), 1, break_price)  # g5.xlarge
    aws.add_standard_pages(page1=page1)
    stub = aws.ec2_stub(REGION)
    types = ["g6e.xlarge", "p4d.24xlarge", "p5.48xlarge"]
    stub.add_response("describe_spot_price_history", {"SpotPriceHistory": []}, spot_params(types))
    res = aws.run(base, regions=[REGION], sleep=sleeps)
    aws.assert_done()
    assert res.skipped == 1
    g5 = res.snapshot.offering("aws/us-east-1/g5.xlarge")
    assert g5 == base.offering("aws/us-east-1/g5.xlarge")
    (corr,) = [c for c in res.snapshot.corrections if "g5.xlarge" in c.keys[0]]
    assert corr.action == "dropped_row" and "not a number" in corr.reason
    assert any("g5.xlarge" in w and "kept the base prices" in w for w in res.warnings)


def test_unusable_reserved_term_is_dropped_alone(aws, base, sleeps):
    def break_term(doc):
        for term in doc["terms"]["Reserved"].values():
            if term["termAttributes"]["PurchaseOption"] == "Partial Upfront":
                term["termAttributes"]["LeaseContractLength"] = "2yr"

    page1 = _page_with(recorded("aws", PAGE1), 0, break_term)  # p4d: 1yr + 3yr partial
    aws.add_standard_pages(page1=page1)
    aws.add_standard_spot()
    res = aws.run(base, regions=[REGION], sleep=sleeps)
    p4d = res.snapshot.offering("aws/us-east-1/p4d.24xlarge")
    assert len([c for c in p4d.commitments if c.kind == "reserved"]) == 6
    assert p4d.on_demand_hourly == pytest.approx(21.957642)
    (corr,) = [c for c in res.snapshot.corrections if c.field == "commitments"]
    assert corr.action == "dropped_value" and "2yr" in corr.reason


def test_zero_on_demand_recorded_as_not_priced(aws, base, sleeps):
    def zero(doc):
        term = next(iter(doc["terms"]["OnDemand"].values()))
        next(iter(term["priceDimensions"].values()))["pricePerUnit"] = {"USD": "0.0000000000"}

    page2 = _page_with(recorded("aws", PAGE2), 0, zero)  # p5.48xlarge
    aws.add_standard_pages(page2=page2)
    aws.add_standard_spot()
    res = aws.run(base, regions=[REGION], sleep=sleeps)
    assert res.snapshot.offering("aws/us-east-1/p5.48xlarge").on_demand_hourly is None
    (corr,) = [c for c in res.snapshot.corrections if c.action == "dropped_value"]
    assert corr.field == "on_demand_hourly" and corr.raw_value == "0"


# --------------------------------------------------------------------------- failures


def test_malformed_page_raises(aws, base, base_json, sleeps):
    page1 = copy.deepcopy(recorded("aws", PAGE1))
    page1["PriceList"][0] = page1["PriceList"][0][:500]  # truncated JSON string
    aws.add_products(page1, "instanceFamily", "GPU instance")
    with pytest.raises(RefreshError, match="malformed page.*not valid JSON"):
        aws.run(base, regions=[REGION], sleep=sleeps)
    assert snapshot_json(base) == base_json


def test_page_two_malformed_fails_half_way_and_base_unchanged(aws, base, base_json, sleeps):
    page1 = recorded("aws", PAGE1)
    aws.add_products(page1, "instanceFamily", "GPU instance")
    aws.add_products(
        {"FormatVersion": "aws_v1", "PriceList": ['{"product": ']},
        "instanceFamily",
        "GPU instance",
        token=page1["NextToken"],
    )
    with pytest.raises(RefreshError, match="page 2") as exc:
        aws.run(base, regions=[REGION], sleep=sleeps)
    assert "refresh was aborted" in str(exc.value)
    aws.assert_done()
    assert snapshot_json(base) == base_json


def test_throttled_then_success(aws, base, sleeps):
    aws.pricing_stub.add_client_error(
        "get_products",
        service_error_code="ThrottlingException",
        service_message="Rate exceeded",
        http_status_code=400,
        expected_params=products_params("instanceFamily", "GPU instance"),
    )
    aws.add_standard_pages()
    aws.add_standard_spot()
    res = aws.run(base, regions=[REGION], sleep=sleeps)
    aws.assert_done()
    assert sleeps.calls == [1.0]
    assert res.added == 1 and res.updated == 2


def test_spot_request_limit_exceeded_is_retried(aws, base, sleeps):
    aws.add_standard_pages()
    aws.ec2_stub(REGION).add_client_error(
        "describe_spot_price_history",
        service_error_code="RequestLimitExceeded",
        http_status_code=503,
        expected_params=spot_params(SPOT_TYPES),
    )
    aws.add_standard_spot()
    res = aws.run(base, regions=[REGION], sleep=sleeps)
    aws.assert_done()
    assert sleeps.calls == [1.0]
    assert res.snapshot.offering("aws/us-east-1/g5.xlarge").spot_hourly == pytest.approx(0.3985)


def test_throttled_forever_fails_after_bounded_attempts(aws, base, base_json, sleeps):
    for _ in range(3):
        aws.pricing_stub.add_client_error(
            "get_products",
            service_error_code="ThrottlingException",
            http_status_code=400,
            expected_params=products_params("instanceFamily", "GPU instance"),
        )
    with pytest.raises(RefreshError, match="after 3 attempts.*ThrottlingException"):
        aws.run(base, regions=[REGION], sleep=sleeps, max_attempts=3)
    aws.assert_done()  # exactly 3 calls, no more
    assert sleeps.calls == [1.0, 2.0]
    assert snapshot_json(base) == base_json


def test_page_two_throttled_forever_base_unchanged(aws, base, base_json, sleeps):
    page1 = recorded("aws", PAGE1)
    aws.add_products(page1, "instanceFamily", "GPU instance")
    for _ in range(4):
        aws.pricing_stub.add_client_error(
            "get_products",
            service_error_code="ThrottlingException",
            http_status_code=400,
            expected_params=products_params(
                "instanceFamily", "GPU instance", token=page1["NextToken"]
            ),
        )
    with pytest.raises(RefreshError, match="throttling"):
        aws.run(base, regions=[REGION], sleep=sleeps, max_attempts=4)
    aws.assert_done()
    assert len(sleeps.calls) == 3
    assert snapshot_json(base) == base_json


def test_no_credentials_in_the_default_chain(monkeypatch, base, tmp_path):
    for var in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(RefreshError, match="AWS credentials not found: set AWS_PROFILE"):
        refresh_aws(base, today=TODAY)


def test_no_credentials_raised_by_the_client(monkeypatch, base, tmp_path):
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for var in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var, raising=False)
    # real client, no credentials; the endpoint is never reached (signing fails first)
    session = boto3.Session(region_name=REGION)
    pricing = session.client("pricing", endpoint_url="http://127.0.0.1:9")
    with pytest.raises(RefreshError, match="AWS credentials not found"):
        refresh_aws(
            base,
            regions=[REGION],
            pricing_client=pricing,
            ec2_client_factory=lambda r: None,
            today=TODAY,
        )


class _Unreachable:
    def get_products(self, **kwargs):
        raise EndpointConnectionError(endpoint_url="https://api.pricing.us-east-1.amazonaws.com/")


def test_connection_error_is_clear(base, sleeps):
    with pytest.raises(RefreshError, match="could not connect to AWS.*network") as exc:
        refresh_aws(
            base,
            regions=[REGION],
            pricing_client=_Unreachable(),
            ec2_client_factory=lambda r: None,
            today=TODAY,
            sleep=sleeps,
        )
    assert exc.value.provider == "aws"
    assert sleeps.calls == []  # no pointless retries


def test_access_denied_is_clear(aws, base):
    aws.pricing_stub.add_client_error(
        "get_products",
        service_error_code="AccessDeniedException",
        service_message="not authorized to perform: pricing:GetProducts",
        http_status_code=400,
    )
    with pytest.raises(RefreshError, match="rejected.*AccessDeniedException.*pricing:GetProducts"):
        aws.run(base, regions=[REGION])


def test_spot_not_permitted_keeps_base_spot(aws, base, sleeps):
    aws.add_standard_pages()
    aws.ec2_stub(REGION).add_client_error(
        "describe_spot_price_history",
        service_error_code="UnauthorizedOperation",
        service_message="You are not authorized to perform this operation.",
        http_status_code=403,
    )
    res = aws.run(base, regions=[REGION], sleep=sleeps)
    aws.assert_done()
    snap = res.snapshot
    assert snap.offering("aws/us-east-1/g5.xlarge").spot_hourly == 0.4328  # base value kept
    assert snap.offering("aws/us-east-1/g6e.xlarge").spot_hourly is None
    assert (
        "aws-ec2-spot-price-history-2026-11-24"
        not in snap.offering("aws/us-east-1/g5.xlarge").sources
    )
    assert "aws-ec2-spot-price-history-2026-11-24" not in {s.id for s in snap.sources}
    assert res.extra_sources == ()
    assert any("UnauthorizedOperation" in w for w in res.warnings)
    assert any("spot prices could not be refreshed" in w for w in res.warnings)


def test_region_not_in_base_is_rejected_before_any_call(aws, base):
    with pytest.raises(RefreshError, match="ap-east-2.*not in the base snapshot"):
        aws.run(base, regions=["ap-east-2"])


# --------------------------------------------------------------------------- mapping table


def test_family_table_uses_canonical_gpu_names():
    for family, name in AWS_FAMILY_ACCELERATOR.items():
        assert CANONICAL_ACCELERATORS.get(name) == "gpu", family
    assert accelerator_for_instance_type("p4d.24xlarge") == "A100-40GB"
    assert accelerator_for_instance_type("p6-b200.48xlarge") == "B200"
    assert accelerator_for_instance_type("g6f.large") is None
    assert accelerator_for_instance_type("inf2.xlarge") is None
