"""Azure refresh against an httpx.MockTransport replaying recorded (synthetic, real-format)
Retail Prices API pages. No network."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable

import httpx
import pytest

from app.catalog.refresh import RefreshError, refresh_azure
from app.catalog.refresh.azure import API_URL, API_VERSION, build_filter
from app.catalog.schema import Snapshot, compute_snapshot_id, snapshot_json
from tests.catalog_refresh.conftest import TODAY, offerings_of, recorded

PAGE1 = "retail_prices_eastus_page1.json"
PAGE2 = "retail_prices_eastus_page2.json"
EMPTY = "retail_prices_empty.json"
A100 = "azure/eastus/Standard_NC24ads_A100_v4"
T4 = "azure/eastus/Standard_NC4as_T4_v3"
ND = "azure/eastus/Standard_ND96asr_v4"

Responder = Callable[[httpx.Request], httpx.Response]


class Server:
    """Serves recorded pages by region and ``$skip``; records every request."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.pages: dict[tuple[str, str | None], list[Responder]] = {}

    def on(self, region: str, skip: str | None, *responders: Responder) -> None:
        self.pages.setdefault((region, skip), []).extend(responders)

    def standard(self, page1: dict | None = None, page2: dict | None = None) -> None:
        self.on("eastus", None, json_page(page1 or recorded("azure", PAGE1)))
        self.on("eastus", "1000", json_page(page2 or recorded("azure", PAGE2)))

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        flt = request.url.params.get("$filter", "")
        region = flt.split("armRegionName eq '")[1].split("'")[0]
        queue = self.pages.get((region, request.url.params.get("$skip")))
        assert queue, f"unexpected request {request.url}"
        return queue.pop(0)(request) if len(queue) > 1 else queue[0](request)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self.handler))


def json_page(body: dict) -> Responder:
    return lambda request: httpx.Response(200, json=body)


def status(code: int, headers: dict | None = None, text: str = "") -> Responder:
    return lambda request: httpx.Response(code, headers=headers, text=text)


@pytest.fixture
def server() -> Server:
    return Server()


def run(server: Server, base: Snapshot, **kw):
    kw.setdefault("regions", ["eastus"])
    with server.client() as client:
        return refresh_azure(base, client=client, today=TODAY, **kw)


@pytest.fixture
def result(server, base, sleeps):
    server.standard()
    return run(server, base, sleep=sleeps)


# --------------------------------------------------------------------------- success


def test_request_and_next_page_link(result, server):
    assert len(server.requests) == 2
    first, second = server.requests
    assert str(first.url).startswith(API_URL)
    assert first.url.params["api-version"] == API_VERSION
    assert first.url.params["meterRegion"] == "'primary'"
    assert (
        first.url.params["$filter"]
        == build_filter("eastus")
        == (
            "serviceName eq 'Virtual Machines' and armRegionName eq 'eastus' and "
            "contains(armSkuName, 'Standard_N')"
        )
    )
    # the second request is exactly the NextPageLink of page 1
    link = recorded("azure", PAGE1)["NextPageLink"]
    assert second.url == httpx.URL(link)


def test_counts(result):
    assert (result.added, result.updated, result.unchanged, result.removed) == (1, 2, 0, 0)
    assert result.skipped == 0


def test_consumption_spot_and_skipped_rows(result):
    a100 = result.snapshot.offering(A100)
    # Linux pay-as-you-go, not the Windows (3.857) or DevTest row
    assert a100.on_demand_hourly == pytest.approx(3.673)
    # Spot row, not the Low Priority row (0.7346)
    assert a100.spot_hourly == pytest.approx(0.444433)
    t4 = result.snapshot.offering(T4)
    assert (t4.on_demand_hourly, t4.spot_hourly) == (pytest.approx(0.526), pytest.approx(0.062699))


def test_reservations_are_whole_term_all_upfront(result):
    a100 = result.snapshot.offering(A100)
    by_term = {c.term_months: c for c in a100.commitments}
    assert set(by_term) == {12, 36}
    one, three = by_term[12], by_term[36]
    assert (one.kind, one.payment_option, one.offering_class) == ("reserved", "all_upfront", None)
    assert one.upfront_usd == 20270.0 and one.hourly_usd is None
    assert one.effective_hourly_usd == pytest.approx(20270.0 / 8760)
    assert three.upfront_usd == 40540.0
    assert three.effective_hourly_usd == pytest.approx(40540.0 / 26280)
    assert three.effective_hourly_usd == pytest.approx(1.54261796, abs=1e-8)
    assert "same total" in (one.note or "")
    assert one.source == result.source.id == "azure-retail-prices-api-2026-11-24"
    assert one.date == "2026-11-24" and one.estimate is False


def test_new_sku_added_with_hardware_from_base(result):
    nd = result.snapshot.offering(ND)
    assert (nd.gpu_model, nd.gpu_count, nd.interconnect) == ("A100-40GB", 8, "nvlink+ib-1600")
    assert nd.on_demand_hourly == pytest.approx(27.197)
    assert nd.spot_hourly == pytest.approx(2.99167)
    assert nd.commitments == []
    assert nd.sources == ["azure-retail-prices-api-2026-11-24"]
    assert any("azure/westus2/Standard_ND96asr_v4" in n for n in nd.notes)


def test_unknown_sku_reported_not_added(result):
    assert "azure/eastus/Standard_NC6s_v3" not in {o.key for o in result.snapshot.offerings}
    (msg,) = [w for w in result.warnings if "Standard_NC6s_v3" in w]
    assert "does not state the GPU model" in msg and "not guessed" in msg


def test_source_recorded(result):
    src = result.snapshot.source("azure-retail-prices-api-2026-11-24")
    assert src.name == "Azure Retail Prices API"
    assert src.url == f"{API_URL}?api-version={API_VERSION}"
    assert src.date == src.retrieved == "2026-11-24"
    assert result.extra_sources == ()


def test_other_offerings_untouched_and_new_id(result, base, base_json):
    snap = result.snapshot
    for provider in ("aws", "gcp"):
        assert offerings_of(snap, provider) == offerings_of(base, provider)
    assert offerings_of(snap, "azure", "westus2") == offerings_of(base, "azure", "westus2")
    assert (
        compute_snapshot_id(Snapshot.model_validate_json(snapshot_json(snap)))
        == snap.snapshot_id
        != base.snapshot_id
    )
    assert snapshot_json(base) == base_json


def test_all_regions_by_default_empty_region_kept(server, base, sleeps):
    server.standard()
    server.on("westus2", None, json_page(recorded("azure", EMPTY)))
    res = run(server, base, regions=None, sleep=sleeps)
    assert res.skipped == 2
    assert offerings_of(res.snapshot, "azure", "westus2") == offerings_of(base, "azure", "westus2")
    assert any("azure/westus2" in w and "no usable rows" in w for w in res.warnings)


def test_sku_no_longer_listed_is_removed(server, base, sleeps):
    page2 = copy.deepcopy(recorded("azure", PAGE2))
    page2["Items"] = [i for i in page2["Items"] if i["armSkuName"] != "Standard_NC4as_T4_v3"]
    page1 = copy.deepcopy(recorded("azure", PAGE1))
    page1["Items"] = [i for i in page1["Items"] if i["armSkuName"] != "Standard_NC4as_T4_v3"]
    server.standard(page1, page2)
    res = run(server, base, sleep=sleeps)
    assert res.removed == 1 and T4 not in {o.key for o in res.snapshot.offerings}
    assert any(c.keys == [T4] and c.action == "dropped_row" for c in res.snapshot.corrections)


def test_unusable_item_skipped_and_base_kept(server, base, sleeps):
    page1 = copy.deepcopy(recorded("azure", PAGE1))
    for item in page1["Items"]:
        if item["armSkuName"] == "Standard_NC4as_T4_v3" and item["skuName"] == "NC4as T4 v3":
            item["retailPrice"] = "call us"
    server.standard(page1=page1)
    res = run(server, base, sleep=sleeps)
    assert res.snapshot.offering(T4) == base.offering(T4)
    assert res.skipped == 1
    corr = [c for c in res.snapshot.corrections if c.keys == [T4]]
    assert corr and "not a number" in corr[0].reason
    assert any(T4 in w and "kept the base prices" in w for w in res.warnings)


# --------------------------------------------------------------------------- failures


def test_malformed_page_two_fails_and_base_unchanged(server, base, base_json, sleeps):
    server.on("eastus", None, json_page(recorded("azure", PAGE1)))
    server.on("eastus", "1000", lambda r: httpx.Response(200, text='{"Items": [ {"retail'))
    with pytest.raises(RefreshError, match="malformed page.*not JSON") as exc:
        run(server, base, sleep=sleeps)
    assert "refresh was aborted" in str(exc.value)
    assert len(server.requests) == 2
    assert snapshot_json(base) == base_json


def test_missing_items_fails(server, base, sleeps):
    server.on("eastus", None, json_page({"BillingCurrency": "USD", "NextPageLink": None}))
    with pytest.raises(RefreshError, match="no Items list"):
        run(server, base, sleep=sleeps)


def test_throttled_then_success_honours_retry_after(server, base, sleeps):
    server.on(
        "eastus", None, status(429, {"Retry-After": "2"}), json_page(recorded("azure", PAGE1))
    )
    server.on("eastus", "1000", json_page(recorded("azure", PAGE2)))
    res = run(server, base, sleep=sleeps)
    assert sleeps.calls == [2.0]
    assert len(server.requests) == 3
    assert res.updated == 2


def test_server_error_then_success(server, base, sleeps):
    server.on("eastus", None, status(503), json_page(recorded("azure", PAGE1)))
    server.on("eastus", "1000", json_page(recorded("azure", PAGE2)))
    run(server, base, sleep=sleeps)
    assert sleeps.calls == [1.0]


def test_throttled_forever_bounded(server, base, base_json, sleeps):
    server.on("eastus", None, status(429))
    with pytest.raises(RefreshError, match="after 4 attempts.*429"):
        run(server, base, sleep=sleeps, max_attempts=4)
    assert len(server.requests) == 4
    assert sleeps.calls == [1.0, 2.0, 4.0]
    assert snapshot_json(base) == base_json


def test_page_two_throttled_forever_base_unchanged(server, base, base_json, sleeps):
    server.on("eastus", None, json_page(recorded("azure", PAGE1)))
    server.on("eastus", "1000", status(429, {"Retry-After": "1"}))
    with pytest.raises(RefreshError, match="page 2.*429"):
        run(server, base, sleep=sleeps, max_attempts=3)
    assert len(server.requests) == 1 + 3
    assert snapshot_json(base) == base_json


def test_retry_after_too_long_fails_at_once(server, base, sleeps):
    server.on("eastus", None, status(429, {"Retry-After": "3600"}))
    with pytest.raises(RefreshError, match="Retry-After 3600"):
        run(server, base, sleep=sleeps)
    assert len(server.requests) == 1 and sleeps.calls == []


def test_client_error_is_reported(server, base, sleeps):
    server.on("eastus", None, status(400, text='{"Error": "Invalid OData filter"}'))
    with pytest.raises(RefreshError, match="HTTP 400.*Invalid OData filter"):
        run(server, base, sleep=sleeps)


def test_connection_error_is_clear(base, sleeps):
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno -3] Temporary failure in name resolution", request=request)

    with (
        httpx.Client(transport=httpx.MockTransport(refuse)) as client,
        pytest.raises(RefreshError, match="could not connect to prices.azure.com") as exc,
    ):
        refresh_azure(base, client=client, regions=["eastus"], today=TODAY, sleep=sleeps)
    assert exc.value.provider == "azure" and sleeps.calls == []


def test_next_page_link_to_another_host_is_refused(server, base, sleeps):
    page1 = copy.deepcopy(recorded("azure", PAGE1))
    page1["NextPageLink"] = "https://evil.example.com/api/retail/prices?$skip=1000"
    server.on("eastus", None, json_page(page1))
    with pytest.raises(RefreshError, match="outside https://prices.azure.com"):
        run(server, base, sleep=sleeps)


def test_non_usd_currency_fails(server, base, sleeps):
    page1 = copy.deepcopy(recorded("azure", PAGE1))
    page1["Items"][0]["currencyCode"] = "EUR"
    server.standard(page1=page1)
    with pytest.raises(RefreshError, match="EUR"):
        run(server, base, sleep=sleeps)


def test_nothing_usable_fails(server, base, sleeps):
    server.on("eastus", None, json_page(recorded("azure", EMPTY)))
    with pytest.raises(RefreshError, match="no usable azure prices"):
        run(server, base, sleep=sleeps)


def test_fixtures_are_marked_synthetic():
    for name in (PAGE1, PAGE2, EMPTY):
        from tests.catalog_refresh.conftest import RECORDED

        doc = json.loads((RECORDED / "azure" / name).read_text())
        assert doc["_note"].startswith("SYNTHETIC TEST FIXTURE")


def test_windows_and_devtest_prices_never_used(server, base, sleeps):
    """Without a Linux pay-as-you-go row the on-demand price is 'not priced', even though
    Windows and Dev/Test rows for the same SKU are listed."""
    page1 = copy.deepcopy(recorded("azure", PAGE1))
    linux = next(i for i in page1["Items"] if i["skuName"] == "NC4as T4 v3")
    page1["Items"].remove(linux)
    page1["Items"].append({**linux, "type": "DevTestConsumption", "retailPrice": 0.40})
    server.standard(page1=page1)
    res = run(server, base, sleep=sleeps)
    t4 = res.snapshot.offering(T4)
    assert t4.on_demand_hourly is None  # not 0.71 (Windows) nor 0.40 (Dev/Test)
    assert t4.spot_hourly == pytest.approx(0.062699)
    assert [c.term_months for c in t4.commitments] == [12]
