"""Refresh Azure GPU VM prices from the public Azure Retail Prices API.

What is fetched
---------------
``GET https://prices.azure.com/api/retail/prices?api-version=2023-01-01-preview`` with
``meterRegion='primary'`` and, per refreshed region, the OData filter::

    serviceName eq 'Virtual Machines' and armRegionName eq '<region>'
        and contains(armSkuName, 'Standard_N')

(N-series = the NC/ND/NV/NG GPU families; filter values are case-sensitive in this API
version). ``NextPageLink`` is followed until it is null. The API is unauthenticated.

Item mapping (``Items[]``):

* ``productName`` containing ``Windows`` -> skipped (we price Linux);
  ``type == "DevTestConsumption"`` -> skipped (Dev/Test subscriptions only);
  ``skuName`` containing ``Low Priority`` -> skipped (legacy Batch/VMSS low-priority);
* ``type == "Consumption"`` -> on-demand ``retailPrice`` per hour, or the spot price when
  ``skuName`` contains ``Spot``;
* ``type == "Reservation"`` with ``reservationTerm`` ``"1 Year"``/``"3 Years"`` ->
  ``CommitmentPrice(kind="reserved", payment_option="all_upfront",
  upfront_usd=unitPrice, effective_hourly_usd=unitPrice / term hours)``. For reservations
  ``unitPrice`` is the **whole-term** price (even though ``unitOfMeasure`` says
  ``"1 Hour"``). Azure also lets you pay a reservation monthly at the same total (no
  surcharge), so the effective hourly cost is the same either way; we record the upfront
  form because that is what the API states.

Savings-plan rates (the ``savingsPlan`` array of consumption items) are not imported.

The API does not state a VM size's GPU model or count, so an armSkuName the base snapshot
does not know in any region is reported in the warnings and not added.

Error handling (all-or-nothing: a complete new snapshot or ``RefreshError``)
---------------------------------------------------------------------------
* HTTP 429 -> wait ``Retry-After`` (seconds or HTTP date; a wait longer than
  ``RETRY_AFTER_CAP`` fails at once) else exponential backoff; 5xx and timeouts ->
  backoff; at most ``max_attempts`` requests per page, then ``RefreshError``;
* other 4xx (e.g. a rejected filter) -> ``RefreshError`` with the status and a body excerpt;
* connection failures (``httpx.ConnectError``: no network / DNS) -> ``RefreshError`` at once;
* a body that is not JSON, lacks an ``Items`` list, has non-object items, a non-USD
  currency or a ``NextPageLink`` outside ``https://prices.azure.com`` -> ``RefreshError``;
* an item that lacks what we need (armSkuName/armRegionName, a numeric price, an hourly
  unit, a known reservation term) is skipped and recorded as a ``Correction``; if that
  leaves a base offering without its on-demand row, the base prices are kept.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from app.catalog.refresh.common import (
    HOURS_PER_TERM_MONTHS,
    FreshData,
    FreshPrice,
    RefreshError,
    RefreshResult,
    backoff_seconds,
    check_regions,
    merge_refresh,
    positive_price,
)
from app.catalog.schema import CommitmentPrice, Correction, Snapshot, Source

__all__ = ["API_URL", "API_VERSION", "build_filter", "refresh_azure"]

PROVIDER = "azure"
API_URL = "https://prices.azure.com/api/retail/prices"
API_VERSION = "2023-01-01-preview"
API_HOST = "prices.azure.com"
#: Longest Retry-After we are willing to sleep; a longer one fails the refresh at once.
RETRY_AFTER_CAP = 60.0
_MAX_PAGES = 2000
_TERMS = {"1 Year": 12, "3 Years": 36}
_RESERVATION_NOTE = (
    "Azure reservation: the Retail Prices API states the whole-term price; monthly payment "
    "is also possible at the same total (no surcharge)."
)


def build_filter(region: str) -> str:
    """OData ``$filter`` for the N-series (GPU) Linux/Windows VM meters of one region."""
    if "'" in region:
        raise ValueError(f"invalid Azure region name {region!r}")
    return (
        "serviceName eq 'Virtual Machines' and "
        f"armRegionName eq '{region}' and contains(armSkuName, 'Standard_N')"
    )


def refresh_azure(
    base: Snapshot,
    *,
    client: httpx.Client | None = None,
    regions: list[str] | None = None,
    today: date | None = None,
    sleep: Callable[[float], None] = time.sleep,
    max_attempts: int = 5,
) -> RefreshResult:
    """Refresh the Azure offerings of ``base`` (all its Azure regions, or ``regions``).

    Returns a new snapshot (``base`` is never modified) or raises :class:`RefreshError`.
    Pass ``client`` to control transport/proxies (tests pass an ``httpx.MockTransport``).
    """
    if max_attempts < 1:
        raise ValueError("max_attempts must be >= 1")
    today = today or date.today()
    scope = check_regions(base, PROVIDER, regions)
    own = client is None
    http = client or httpx.Client(
        timeout=httpx.Timeout(60.0, connect=10.0),
        headers={"User-Agent": "archplan-catalog-refresh"},
        follow_redirects=False,
    )
    try:
        fetcher = _AzureFetcher(
            base=base, scope=scope, http=http, today=today, sleep=sleep, max_attempts=max_attempts
        )
        fresh = fetcher.fetch()
    finally:
        if own:
            http.close()
    return merge_refresh(base, fresh, today=today)


# --------------------------------------------------------------------------- HTTP


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _check_next_link(link: Any) -> str | None:
    if link in (None, ""):
        return None
    if not isinstance(link, str):
        raise RefreshError(
            "Azure Retail Prices API returned a non-string NextPageLink", provider=PROVIDER
        )
    try:
        url = httpx.URL(link)
    except (httpx.InvalidURL, TypeError) as exc:
        raise RefreshError(
            f"Azure Retail Prices API returned an invalid NextPageLink: {exc}", provider=PROVIDER
        ) from exc
    if url.scheme != "https" or url.host != API_HOST:
        raise RefreshError(
            f"Azure Retail Prices API returned a NextPageLink outside https://{API_HOST} "
            f"({link!r}); not following it",
            provider=PROVIDER,
        )
    return link


# --------------------------------------------------------------------------- parsing


@dataclass
class _Candidates:
    on_demand: list[tuple[str, float | None]] = field(default_factory=list)
    spot: list[tuple[str, float | None]] = field(default_factory=list)
    reserved: dict[int, list[tuple[str, float]]] = field(default_factory=lambda: defaultdict(list))
    broken: set[str] = field(default_factory=set)  # "on_demand" / "spot" / "reserved-12" ...


class _ItemProblem(Exception):
    def __init__(self, category: str, reason: str) -> None:
        super().__init__(reason)
        self.category = category


def _pick(values: list[tuple[str, Any]]) -> tuple[bool, Any]:
    """Latest ``effectiveStartDate`` wins; (False, None) if the latest ones disagree."""
    latest = max(v[0] for v in values)
    chosen = {v[1] for v in values if v[0] == latest}
    if len(chosen) > 1:
        return False, sorted(chosen, key=lambda x: (x is None, x))
    return True, chosen.pop()


@dataclass
class _AzureFetcher:
    base: Snapshot
    scope: list[str]
    http: httpx.Client
    today: date
    sleep: Callable[[float], None]
    max_attempts: int

    def __post_init__(self) -> None:
        t = self.today.isoformat()
        self.source = Source(
            id=f"azure-retail-prices-api-{t}",
            name="Azure Retail Prices API",
            url=f"{API_URL}?api-version={API_VERSION}",
            date=t,
            date_note="Prices in effect when retrieved (the API serves current retail prices).",
            retrieved=t,
            note="Linux pay-as-you-go (Consumption), Spot and 1/3-year Reservation prices of "
            "N-series VMs, primary meter regions, USD. Reservation prices are whole-term "
            "prices (effective hourly = price / 8760 h or 26280 h). Primary.",
        )
        self.corrections: list[Correction] = []
        self.warnings: list[str] = []
        self.unusable: dict[tuple[str, str], str] = {}

    def _correct(
        self,
        slug: str,
        keys: list[str],
        field_: str,
        action: str,
        reason: str,
        raw: str | None = None,
    ) -> None:
        self.corrections.append(
            Correction(
                id=f"{PROVIDER}-refresh-{self.today.isoformat()}-{slug}",
                provider=PROVIDER,
                keys=keys,
                field=field_,
                action=action,  # type: ignore[arg-type]
                raw_value=raw,
                reason=reason,
                source=self.source.id,
            )
        )
        self.warnings.append(f"{PROVIDER}: {', '.join(keys)}: {reason}")

    # -- HTTP ----------------------------------------------------------------------

    def _get(self, url: str, params: dict[str, str] | None, what: str) -> httpx.Response:
        last = ""
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = self.http.get(url, params=params)
            except httpx.ConnectError as exc:
                raise RefreshError(
                    f"could not connect to {API_HOST} for {what} ({exc}); check the network "
                    "connection / proxy settings and try again",
                    provider=PROVIDER,
                ) from exc
            except httpx.TimeoutException as exc:
                last = f"timeout ({type(exc).__name__})"
                wait = backoff_seconds(attempt)
            except httpx.TransportError as exc:
                raise RefreshError(
                    f"Azure Retail Prices API {what} failed: {exc}", provider=PROVIDER
                ) from exc
            else:
                status = response.status_code
                if status == 200:
                    return response
                if status == 429:
                    asked = _retry_after(response)
                    if asked is not None and asked > RETRY_AFTER_CAP:
                        raise RefreshError(
                            f"Azure Retail Prices API is throttling ({what}: HTTP 429, "
                            f"Retry-After {asked:.0f} s); try again later",
                            provider=PROVIDER,
                        )
                    last = "HTTP 429 Too Many Requests"
                    wait = asked if asked is not None else backoff_seconds(attempt)
                elif status >= 500:
                    last = f"HTTP {status}"
                    wait = backoff_seconds(attempt)
                else:
                    body = response.text[:300].strip()
                    raise RefreshError(
                        f"Azure Retail Prices API rejected {what}: HTTP {status}"
                        + (f": {body}" if body else ""),
                        provider=PROVIDER,
                    )
            if attempt < self.max_attempts:
                self.sleep(min(wait, RETRY_AFTER_CAP))
        raise RefreshError(
            f"Azure Retail Prices API {what} kept failing after {self.max_attempts} attempts "
            f"({last}); try again later",
            provider=PROVIDER,
        )

    def _fetch_items(self, region: str) -> list[dict[str, Any]]:
        url: str | None = API_URL
        params: dict[str, str] | None = {
            "api-version": API_VERSION,
            "meterRegion": "'primary'",
            "$filter": build_filter(region),
        }
        items: list[dict[str, Any]] = []
        seen: set[str] = set()
        for page_no in range(1, _MAX_PAGES + 1):
            assert url is not None
            what = f"request for {region} (page {page_no})"
            response = self._get(url, params, what)
            try:
                data = response.json()
            except ValueError as exc:
                raise RefreshError(
                    f"Azure Retail Prices API returned a malformed page for {what} (not JSON); "
                    "the refresh was aborted",
                    provider=PROVIDER,
                ) from exc
            page_items = data.get("Items") if isinstance(data, dict) else None
            if not isinstance(page_items, list) or not all(isinstance(i, dict) for i in page_items):
                raise RefreshError(
                    f"Azure Retail Prices API returned a malformed page for {what} (no Items "
                    "list of objects); the refresh was aborted",
                    provider=PROVIDER,
                )
            currency = data.get("BillingCurrency")
            if currency not in (None, "USD"):
                raise RefreshError(
                    f"Azure Retail Prices API returned {currency} prices, expected USD",
                    provider=PROVIDER,
                )
            items.extend(page_items)
            link = _check_next_link(data.get("NextPageLink"))
            if link is None:
                return items
            if link in seen:
                raise RefreshError(
                    "Azure Retail Prices API repeated a NextPageLink; aborting", provider=PROVIDER
                )
            seen.add(link)
            url, params = link, None
        raise RefreshError(
            f"Azure Retail Prices API returned more than {_MAX_PAGES} pages for {region}; aborting",
            provider=PROVIDER,
        )

    # -- items ---------------------------------------------------------------------

    def _classify(
        self, item: dict[str, Any], region: str, cands: dict[str, _Candidates], index: int
    ) -> None:
        if item.get("serviceName") not in (None, "Virtual Machines"):
            return
        currency = item.get("currencyCode")
        if currency not in (None, "USD"):
            raise RefreshError(
                f"Azure Retail Prices API returned a {currency} price, expected USD",
                provider=PROVIDER,
            )
        if "Windows" in str(item.get("productName") or ""):
            return
        kind = item.get("type")
        if kind == "DevTestConsumption":
            return
        sku_name = str(item.get("skuName") or "")
        if "Low Priority" in sku_name:
            return
        if item.get("isPrimaryMeterRegion") is False:
            return
        arm, item_region = item.get("armSkuName"), item.get("armRegionName")
        if not arm or not item_region:
            ident = item.get("meterId") or item.get("skuId") or f"item-{index}"
            self._correct(
                f"unidentified-{ident}".lower(),
                [f"azure retail price item {ident}"],
                "row",
                "dropped_row",
                "Retail Prices item without armSkuName/armRegionName; skipped.",
            )
            return
        if item_region != region:
            return
        try:
            tier = float(item.get("tierMinimumUnits") or 0)
        except (TypeError, ValueError):
            tier = 0.0
        if tier > 0:
            return  # tiered (volume) meter: not a VM hourly price
        c = cands.setdefault(arm, _Candidates())
        start = str(item.get("effectiveStartDate") or "")
        try:
            if kind == "Consumption":
                category = "spot" if "Spot" in sku_name else "on_demand"
                if item.get("unitOfMeasure") != "1 Hour":
                    raise _ItemProblem(
                        category, f"unit {item.get('unitOfMeasure')!r} is not '1 Hour'"
                    )
                try:
                    price = positive_price(item.get("retailPrice"))
                except (TypeError, ValueError):
                    raise _ItemProblem(
                        category, f"retailPrice {item.get('retailPrice')!r} is not a number"
                    ) from None
                getattr(c, category).append((start, price))
            elif kind == "Reservation":
                months = _TERMS.get(str(item.get("reservationTerm")))
                if months is None:
                    raise _ItemProblem(
                        "reserved", f"unknown reservationTerm {item.get('reservationTerm')!r}"
                    )
                try:
                    total = positive_price(item.get("unitPrice"))
                except (TypeError, ValueError):
                    raise _ItemProblem(
                        f"reserved-{months}", f"unitPrice {item.get('unitPrice')!r} is not a number"
                    ) from None
                if total is None:
                    raise _ItemProblem(f"reserved-{months}", "reservation price is 0")
                c.reserved[months].append((start, total))
        except _ItemProblem as exc:
            c.broken.add(exc.category)
            self._correct(
                f"{exc.category}-{arm}-{region}".lower(),
                [f"{PROVIDER}/{region}/{arm}"],
                "row",
                "dropped_row",
                f"Retail Prices {kind} item unusable ({exc}); skipped.",
            )

    def _combine(
        self, region: str, cands: dict[str, _Candidates]
    ) -> dict[tuple[str, str], FreshPrice]:
        out: dict[tuple[str, str], FreshPrice] = {}
        t = self.today.isoformat()
        for arm, c in sorted(cands.items()):
            key = f"{PROVIDER}/{region}/{arm}"
            if not c.on_demand and "on_demand" in c.broken:
                self.unusable[(region, arm)] = "its pay-as-you-go price item was unusable"
                continue
            if not (c.on_demand or c.spot or c.reserved):
                continue
            on_demand = None
            if c.on_demand:
                ok, on_demand = _pick(c.on_demand)
                if not ok:
                    reason = f"several current pay-as-you-go prices {on_demand}"
                    self.unusable[(region, arm)] = reason
                    self._correct(
                        f"ambiguous-{arm}-{region}".lower(),
                        [key],
                        "on_demand_hourly",
                        "dropped_row",
                        f"{reason}; not choosing one, skipped.",
                    )
                    continue
                if on_demand is None:
                    self._correct(
                        f"zero-on-demand-{arm}-{region}".lower(),
                        [key],
                        "on_demand_hourly",
                        "dropped_value",
                        "Azure lists a pay-as-you-go price of 0.00 USD; recorded as not priced.",
                        raw="0",
                    )
            spot_known = "spot" not in c.broken or bool(c.spot)
            spot = None
            if c.spot:
                ok, spot = _pick(c.spot)
                if not ok:
                    self._correct(
                        f"ambiguous-spot-{arm}-{region}".lower(),
                        [key],
                        "spot_hourly",
                        "flagged",
                        f"several current spot prices {spot}; base spot kept.",
                    )
                    spot_known, spot = False, None
            reserved: list[CommitmentPrice] = []
            for months in (12, 36):
                values = c.reserved.get(months) or []
                if not values:
                    continue
                ok, total = _pick(values)
                if not ok:
                    self._correct(
                        f"ambiguous-reserved-{months}-{arm}-{region}".lower(),
                        [key],
                        "commitments",
                        "dropped_value",
                        f"several current {months}-month reservation prices {total}; dropped.",
                    )
                    continue
                reserved.append(
                    CommitmentPrice(
                        kind="reserved",
                        term_months=months,
                        payment_option="all_upfront",
                        upfront_usd=total,
                        hourly_usd=None,
                        effective_hourly_usd=round(total / HOURS_PER_TERM_MONTHS[months], 8),
                        estimate=False,
                        source=self.source.id,
                        date=t,
                        note=_RESERVATION_NOTE,
                    )
                )
            out[(region, arm)] = FreshPrice(
                region=region,
                instance_type=arm,
                on_demand_hourly=on_demand,
                reserved=reserved,
                spot_hourly=spot,
                spot_known=spot_known,
                sources=[self.source.id],
                hardware_hint=None,
                hint_problem="the Azure Retail Prices API does not state the GPU model or count "
                "and the base snapshot does not know this VM size; not guessed",
            )
        return out

    def fetch(self) -> FreshData:
        prices: dict[tuple[str, str], FreshPrice] = {}
        for region in self.scope:
            items = self._fetch_items(region)
            cands: dict[str, _Candidates] = {}
            for i, item in enumerate(items):
                self._classify(item, region, cands, i)
            prices.update(self._combine(region, cands))
        return FreshData(
            provider=PROVIDER,
            regions=list(self.scope),
            prices=prices,
            unusable=dict(self.unusable),
            sources=[self.source],
            corrections=self.corrections,
            warnings=self.warnings,
        )
