"""Refresh AWS EC2 accelerator prices from the AWS Price List API and EC2 spot history.

What is fetched
---------------
* **On-demand and Reserved Instance prices**: ``pricing.get_products`` (the Price List
  Query API, served from ``us-east-1``) with ``ServiceCode="AmazonEC2"`` and TERM_MATCH
  filters ``operatingSystem=Linux``, ``tenancy=Shared``, ``preInstalledSw=NA``,
  ``capacitystatus=Used`` and ``regionCode=<region>``, once per accelerated
  ``instanceFamily`` the base snapshot needs (``"GPU instance"`` for GPUs,
  ``"Machine Learning ASIC Instances"`` for Neuron/Gaudi, ``"FPGA Instances"`` for FPGAs).
  Instance types of the base snapshot that those family queries did not return are then
  queried one by one (``instanceType=<type>``), so a type is only dropped from the catalog
  when AWS really no longer lists it in that region (a region whose family queries return
  nothing at all is not queried further; its base offerings are kept, with a warning). Pages are followed with ``NextToken``.
  Each ``PriceList`` entry is a JSON *string* (product attributes + ``terms.OnDemand`` +
  ``terms.Reserved``); reserved terms map to ``CommitmentPrice(kind="reserved")`` with
  ``effective_hourly = hourly + upfront / term hours`` (1 yr = 8760 h, 3 yr = 26280 h).
* **Spot prices**: ``ec2.describe_spot_price_history`` per region with
  ``ProductDescriptions=["Linux/UNIX"]``, ``StartTime=now`` (= the price in effect now in
  every availability zone). ``spot_hourly`` is the **minimum across the region's regular
  availability zones** (``<region><letter>``): the planner can pick the cheapest zone, the
  same way a region-level on-demand price is used. Local Zone / Wavelength zones are
  excluded - they are separate locations with their own prices.

Credentials come from the standard AWS chain (``boto3.Session()``: env vars, profile,
SSO, instance role, ...). Nothing here writes anything anywhere.

Error handling (all-or-nothing: either a complete new snapshot or ``RefreshError``)
-------------------------------------------------------------------------------
* no credentials / rejected credentials / unknown profile -> ``RefreshError`` at once;
* endpoint unreachable (no network) -> ``RefreshError`` at once;
* throttling (``ThrottlingException``, ``RequestLimitExceeded``, ...) and 5xx errors ->
  retried with exponential backoff, at most ``max_attempts`` calls per page, then
  ``RefreshError`` (``sleep`` is injectable);
* a *page* that is unusable (no ``PriceList`` list, or an entry that is not a JSON object:
  a truncated/corrupt payload) -> ``RefreshError``: the transport cannot be trusted;
* a *row* that is valid JSON but lacks what we need (instance type, region, a parsable
  price) is skipped and recorded as a ``Correction`` plus a warning; if the key exists in
  the base snapshot its base prices are kept. A single reserved term that is unusable is
  dropped (correction) without dropping the row. A 0.00 USD on-demand price is recorded as
  "not priced" (``None``), never as zero;
* several products for one key with different on-demand prices -> that key is skipped
  (correction); we never pick one arbitrarily;
* spot history not permitted for a region (``UnauthorizedOperation``, ``OptInRequired``,
  ...) -> the base spot prices of that region are kept and a warning says so.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)

from app.catalog.gpus import (
    CANONICAL_ACCELERATORS,
    UnknownAcceleratorError,
    normalize_accelerator_name,
)
from app.catalog.refresh.common import (
    HOURS_PER_TERM_MONTHS,
    FreshData,
    FreshPrice,
    Hardware,
    RefreshError,
    RefreshResult,
    backoff_seconds,
    check_regions,
    merge_refresh,
    positive_price,
    resolve_new_hardware,
)
from app.catalog.schema import CommitmentPrice, Correction, Snapshot, Source

__all__ = [
    "AWS_FAMILY_ACCELERATOR",
    "PRICING_ENDPOINT",
    "accelerator_for_instance_type",
    "refresh_aws",
]

PROVIDER = "aws"
PRICING_REGION = "us-east-1"
PRICING_ENDPOINT = "https://api.pricing.us-east-1.amazonaws.com"
NO_CREDENTIALS_MESSAGE = (
    "AWS credentials not found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
    "(or configure another source of the standard AWS credential chain, e.g. SSO or an "
    "instance role). The refresh needs pricing:GetProducts and ec2:DescribeSpotPriceHistory."
)

#: Filters every get_products query carries (TERM_MATCH), in this order.
BASE_FILTERS: tuple[tuple[str, str], ...] = (
    ("operatingSystem", "Linux"),
    ("tenancy", "Shared"),
    ("preInstalledSw", "NA"),
    ("capacitystatus", "Used"),
)
#: Price List ``instanceFamily`` value to query for each accelerator kind in the base.
INSTANCE_FAMILY_FOR_KIND: dict[str, str] = {
    "gpu": "GPU instance",
    "neuron": "Machine Learning ASIC Instances",
    "hpu": "Machine Learning ASIC Instances",
    "fpga": "FPGA Instances",
}

#: AWS instance family -> accelerator (canonical name), per AWS's accelerated-computing
#: instance documentation. Used only for instance types the base snapshot does not know;
#: the GPU *count* then comes from the Price List ``gpu`` attribute. Families with
#: fractional GPUs (g6f, gr6f) or ambiguous parts are deliberately absent.
AWS_FAMILY_ACCELERATOR: dict[str, str] = {
    "p2": "K80",
    "p3": "V100-16GB",
    "p3dn": "V100-32GB",
    "p4d": "A100-40GB",
    "p4de": "A100-80GB",
    "p5": "H100",
    "p5e": "H200",
    "p5en": "H200",
    "p6-b200": "B200",
    "p6-b300": "B300",
    "g3": "M60",
    "g3s": "M60",
    "g4dn": "T4",
    "g4ad": "Radeon-Pro-V520",
    "g5": "A10G",
    "g5g": "T4",
    "g6": "L4",
    "gr6": "L4",
    "g6e": "L40S",
    "g7e": "RTX-PRO-6000",
}

THROTTLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "SlowDown",
    }
)
SERVER_ERROR_CODES = frozenset(
    {"InternalError", "InternalFailure", "InternalServerError", "ServiceUnavailable", "Unavailable"}
)
AUTH_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "AuthFailure",
        "AccessDeniedException",
        "AccessDenied",
        "UnauthorizedOperation",
    }
)
#: Codes for which spot prices of one region are given up (base spot kept, warning).
SPOT_SOFT_CODES = frozenset(
    {
        "OptInRequired",
        "AuthFailure",
        "UnauthorizedOperation",
        "AccessDenied",
        "AccessDeniedException",
    }
)

_PURCHASE_OPTION = {
    "no upfront": "no_upfront",
    "partial upfront": "partial_upfront",
    "all upfront": "all_upfront",
}
_LEASE_RE = re.compile(r"^\s*([13])\s*yr\s*$", re.IGNORECASE)
_BOX_USAGE_RE = re.compile(r"(^|-)BoxUsage:")
_MAX_PAGES = 1000
_SPOT_CHUNK = 100


def accelerator_for_instance_type(instance_type: str) -> str | None:
    """Canonical accelerator of an AWS instance type from its family, or None if unknown.

    >>> accelerator_for_instance_type("g6e.12xlarge")
    'L40S'
    >>> accelerator_for_instance_type("g6f.large") is None
    True
    """
    raw = AWS_FAMILY_ACCELERATOR.get(instance_family(instance_type))
    if raw is None:
        return None
    try:
        return normalize_accelerator_name(raw)
    except UnknownAcceleratorError:  # pragma: no cover - table is checked by tests
        return None


def instance_family(instance_type: str) -> str:
    """``'p4d.24xlarge'`` -> ``'p4d'``; ``'p6-b200.48xlarge'`` -> ``'p6-b200'``."""
    return instance_type.split(".", 1)[0]


# --------------------------------------------------------------------------- entry point


def refresh_aws(
    base: Snapshot,
    *,
    regions: list[str] | None = None,
    session: boto3.Session | None = None,
    pricing_client: Any = None,
    ec2_client_factory: Callable[[str], Any] | None = None,
    today: date | None = None,
    sleep: Callable[[float], None] = time.sleep,
    max_attempts: int = 5,
    now: Callable[[], datetime] | None = None,
) -> RefreshResult:
    """Refresh the AWS offerings of ``base`` (all its AWS regions, or ``regions``).

    Returns a new snapshot (``base`` is never modified) or raises :class:`RefreshError`.
    ``pricing_client``/``ec2_client_factory`` replace the boto3 clients (tests pass
    Stubber-wrapped clients); ``sleep`` and ``max_attempts`` bound throttling retries.
    """
    if max_attempts < 1:
        raise ValueError("max_attempts must be >= 1")
    today = today or date.today()
    scope = check_regions(base, PROVIDER, regions)
    if pricing_client is None or ec2_client_factory is None:
        session = session if session is not None else _default_session()
        _require_credentials(session)
        config = Config(
            retries={"mode": "standard", "max_attempts": 3},
            connect_timeout=10,
            read_timeout=60,
        )
        if pricing_client is None:
            pricing_client = _make_client(session, "pricing", PRICING_REGION, config)
        if ec2_client_factory is None:
            sess = session

            def ec2_client_factory(region: str) -> Any:
                return _make_client(sess, "ec2", region, config)

    fetcher = _AwsFetcher(
        base=base,
        scope=scope,
        pricing=pricing_client,
        ec2_factory=ec2_client_factory,
        today=today,
        caller=_Caller(sleep=sleep, max_attempts=max_attempts),
        now=now or (lambda: datetime.now(UTC)),
    )
    return merge_refresh(base, fetcher.fetch(), today=today)


def _default_session() -> boto3.Session:
    try:
        return boto3.Session()
    except ProfileNotFound as exc:
        raise RefreshError(f"AWS profile not found: {exc}", provider=PROVIDER) from exc


def _require_credentials(session: boto3.Session) -> None:
    try:
        creds = session.get_credentials()
    except ProfileNotFound as exc:
        raise RefreshError(f"AWS profile not found: {exc}", provider=PROVIDER) from exc
    except (CredentialRetrievalError, PartialCredentialsError) as exc:
        raise RefreshError(
            f"AWS credentials could not be loaded: {exc}", provider=PROVIDER
        ) from exc
    except BotoCoreError as exc:
        raise RefreshError(
            f"AWS credentials could not be loaded: {exc}", provider=PROVIDER
        ) from exc
    if creds is None:
        raise RefreshError(NO_CREDENTIALS_MESSAGE, provider=PROVIDER)


def _make_client(session: boto3.Session, service: str, region: str, config: Config) -> Any:
    try:
        return session.client(service, region_name=region, config=config)
    except (NoRegionError, BotoCoreError) as exc:
        raise RefreshError(
            f"could not create the AWS {service} client: {exc}", provider=PROVIDER
        ) from exc


# --------------------------------------------------------------------------- calling AWS


class _SoftFailure(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class _Caller:
    """Calls one AWS operation with bounded retries and maps errors to RefreshError."""

    sleep: Callable[[float], None]
    max_attempts: int

    def __call__(
        self, what: str, fn: Callable[..., dict], kwargs: dict, *, soft_codes: Iterable[str] = ()
    ) -> dict:
        soft = set(soft_codes)
        last = ""
        for attempt in range(1, self.max_attempts + 1):
            try:
                return fn(**kwargs)
            except (NoCredentialsError, PartialCredentialsError) as exc:
                raise RefreshError(NO_CREDENTIALS_MESSAGE, provider=PROVIDER) from exc
            except (EndpointConnectionError, ConnectTimeoutError) as exc:
                raise RefreshError(
                    f"could not connect to AWS for {what} ({exc}); check the network "
                    "connection / proxy settings and try again",
                    provider=PROVIDER,
                ) from exc
            except ReadTimeoutError as exc:
                last = f"read timeout ({exc})"
            except ClientError as exc:
                err = exc.response.get("Error", {})
                code = str(err.get("Code", "Unknown"))
                message = str(err.get("Message", "")).strip()
                if code in soft:
                    raise _SoftFailure(code, message) from exc
                if code in THROTTLE_CODES or code in SERVER_ERROR_CODES:
                    last = f"{code}" + (f": {message}" if message else "")
                elif code in AUTH_CODES:
                    raise RefreshError(
                        f"AWS rejected the request for {what} ({code}: {message}); check that "
                        "the credentials are valid and allow pricing:GetProducts and "
                        "ec2:DescribeSpotPriceHistory",
                        provider=PROVIDER,
                    ) from exc
                else:
                    raise RefreshError(
                        f"AWS {what} failed: {code}" + (f": {message}" if message else ""),
                        provider=PROVIDER,
                    ) from exc
            except BotoCoreError as exc:
                raise RefreshError(f"AWS {what} failed: {exc}", provider=PROVIDER) from exc
            if attempt < self.max_attempts:
                self.sleep(backoff_seconds(attempt))
        raise RefreshError(
            f"AWS {what} kept failing after {self.max_attempts} attempts ({last}); AWS is "
            "throttling or unavailable - try again later",
            provider=PROVIDER,
        )


# --------------------------------------------------------------------------- parsing


class _MalformedPage(Exception):
    pass


class _RowProblem(Exception):
    pass


@dataclass
class _Row:
    """One usable Price List product for (region, instance type)."""

    region: str
    instance_type: str
    sku: str
    on_demand: float | None
    on_demand_zero: bool
    reserved: dict[tuple[int, str, str | None], tuple[float, float | None]]
    attributes: dict[str, Any]
    publication_date: str | None
    term_problems: list[str] = field(default_factory=list)


def _parse_entry(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, str):
        raise _MalformedPage(f"PriceList entry is a {type(raw).__name__}, not a JSON string")
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise _MalformedPage(
            f"PriceList entry is not valid JSON ({exc.msg} at char {exc.pos})"
        ) from exc
    if not isinstance(doc, dict):
        raise _MalformedPage("PriceList entry is not a JSON object")
    return doc


def _is_relevant(attrs: dict[str, Any]) -> bool:
    """Re-check the server-side filters (and a few that cannot be filtered safely)."""
    for name, value in BASE_FILTERS:
        if name in attrs and attrs[name] != value:
            return False
    if attrs.get("licenseModel") not in (None, "No License required"):
        return False
    if attrs.get("marketoption") not in (None, "OnDemand"):
        return False
    usage = attrs.get("usagetype")
    return not (isinstance(usage, str) and not _BOX_USAGE_RE.search(usage))


def _usd(dim: dict[str, Any]) -> float:
    try:
        value = dim["pricePerUnit"]["USD"]
    except (KeyError, TypeError):
        raise _RowProblem("price dimension without pricePerUnit.USD") from None
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise _RowProblem(f"price {value!r} is not a number") from None
    if not math.isfinite(f) or f < 0:
        raise _RowProblem(f"price {value!r} is not a valid price")
    return f


def _dimensions(term: Any) -> list[dict[str, Any]]:
    if not isinstance(term, dict) or not isinstance(term.get("priceDimensions"), dict):
        raise _RowProblem("term without priceDimensions")
    dims = list(term["priceDimensions"].values())
    if not dims or not all(isinstance(d, dict) for d in dims):
        raise _RowProblem("term with empty or invalid priceDimensions")
    return dims


def _on_demand(terms: dict[str, Any]) -> float | None:
    od = terms.get("OnDemand")
    if od in (None, {}):
        return None
    if not isinstance(od, dict):
        raise _RowProblem("terms.OnDemand is not an object")
    prices = set()
    for term in od.values():
        for dim in _dimensions(term):
            if dim.get("unit") == "Hrs":
                prices.add(_usd(dim))
    if not prices:
        raise _RowProblem("OnDemand term without an hourly ('Hrs') price")
    if len(prices) > 1:
        raise _RowProblem(f"several different OnDemand hourly prices {sorted(prices)}")
    return prices.pop()


def _reserved_term(term: Any) -> tuple[tuple[int, str, str | None], tuple[float, float | None]]:
    attrs = term.get("termAttributes") if isinstance(term, dict) else None
    if not isinstance(attrs, dict):
        raise _RowProblem("reserved term without termAttributes")
    lease = _LEASE_RE.match(str(attrs.get("LeaseContractLength", "")))
    if not lease:
        raise _RowProblem(f"unknown LeaseContractLength {attrs.get('LeaseContractLength')!r}")
    months = 12 * int(lease.group(1))
    option = _PURCHASE_OPTION.get(str(attrs.get("PurchaseOption", "")).strip().lower())
    if option is None:
        raise _RowProblem(f"unknown PurchaseOption {attrs.get('PurchaseOption')!r}")
    klass = attrs.get("OfferingClass")
    klass = str(klass).strip().lower() if klass else None
    hourly: set[float] = set()
    upfront: set[float] = set()
    for dim in _dimensions(term):
        unit = dim.get("unit")
        if unit == "Hrs":
            hourly.add(_usd(dim))
        elif unit == "Quantity":
            upfront.add(_usd(dim))
        else:
            raise _RowProblem(f"reserved price dimension with unknown unit {unit!r}")
    if len(hourly) > 1 or len(upfront) > 1:
        raise _RowProblem("reserved term with several hourly or upfront prices")
    h = hourly.pop() if hourly else 0.0
    u = upfront.pop() if upfront else 0.0
    if h == 0 and u == 0:
        raise _RowProblem("reserved term with neither an hourly nor an upfront price")
    return (months, option, klass), (u, h if h > 0 else None)


@dataclass
class _AwsFetcher:
    base: Snapshot
    scope: list[str]
    pricing: Any
    ec2_factory: Callable[[str], Any]
    today: date
    caller: _Caller
    now: Callable[[], datetime]

    def __post_init__(self) -> None:
        t = self.today.isoformat()
        self.source = Source(
            id=f"aws-price-list-api-{t}",
            name="AWS Price List API",
            url=f"{PRICING_ENDPOINT} (GetProducts, ServiceCode=AmazonEC2)",
            date=t,
            date_note="Prices in effect when retrieved (the API serves the current price list).",
            retrieved=t,
            note="On-demand and Reserved Instance prices, Linux, shared tenancy, no "
            "pre-installed software. Reserved effective hourly = hourly + upfront / term hours "
            "(1 yr = 8760 h, 3 yr = 26280 h). Primary.",
        )
        self.spot_source = Source(
            id=f"aws-ec2-spot-price-history-{t}",
            name="AWS EC2 DescribeSpotPriceHistory API",
            url="https://ec2.<region>.amazonaws.com (DescribeSpotPriceHistory, "
            "ProductDescription Linux/UNIX)",
            date=t,
            date_note="Spot price in effect at retrieval time.",
            retrieved=t,
            note="spot_hourly = minimum current Linux/UNIX spot price across the region's "
            "regular availability zones (Local/Wavelength Zones excluded). Spot prices change "
            "continuously. Primary.",
        )
        self.corrections: list[Correction] = []
        self.warnings: list[str] = []
        self.unusable: dict[tuple[str, str], str] = {}
        self.publication_dates: set[str] = set()
        self._loc_to_region = {
            r.location: r.region for r in self.base.regions if r.provider == PROVIDER and r.location
        }

    # -- corrections ---------------------------------------------------------------

    def _correct(
        self,
        slug: str,
        keys: list[str],
        field_: str,
        action: str,
        reason: str,
        raw: str | None = None,
        new: str | None = None,
    ) -> None:
        c = Correction(
            id=f"{PROVIDER}-refresh-{self.today.isoformat()}-{slug}",
            provider=PROVIDER,
            keys=keys,
            field=field_,
            action=action,  # type: ignore[arg-type]
            raw_value=raw,
            new_value=new,
            reason=reason,
            source=self.source.id,
        )
        self.corrections.append(c)
        self.warnings.append(f"{PROVIDER}: {', '.join(keys)}: {reason}")

    # -- price list ----------------------------------------------------------------

    def _families(self) -> list[str]:
        kinds = {o.accelerator_kind for o in self.base.offerings if o.provider == PROVIDER}
        kinds.add("gpu")  # always look for GPU instances (new GPU types can be added)
        return sorted({INSTANCE_FAMILY_FOR_KIND[k] for k in kinds if k in INSTANCE_FAMILY_FOR_KIND})

    def _get_products(self, region: str, field_: str, value: str) -> list[dict[str, Any]]:
        filters = [
            {"Type": "TERM_MATCH", "Field": f, "Value": v}
            for f, v in (*BASE_FILTERS, ("regionCode", region), (field_, value))
        ]
        docs: list[dict[str, Any]] = []
        token: str | None = None
        seen_tokens: set[str] = set()
        for page_no in range(1, _MAX_PAGES + 1):
            kwargs: dict[str, Any] = {
                "ServiceCode": "AmazonEC2",
                "Filters": filters,
                "FormatVersion": "aws_v1",
                "MaxResults": 100,
            }
            if token:
                kwargs["NextToken"] = token
            what = f"Price List GetProducts ({region}, {field_}={value!r}, page {page_no})"
            resp = self.caller(what, self.pricing.get_products, kwargs)
            price_list = resp.get("PriceList") if isinstance(resp, dict) else None
            if not isinstance(price_list, list):
                raise RefreshError(
                    f"AWS {what} returned a malformed page (no PriceList list); the refresh "
                    "was aborted",
                    provider=PROVIDER,
                )
            try:
                docs.extend(_parse_entry(raw) for raw in price_list)
            except _MalformedPage as exc:
                raise RefreshError(
                    f"AWS {what} returned a malformed page: {exc}; the refresh was aborted",
                    provider=PROVIDER,
                ) from exc
            token = resp.get("NextToken") or None
            if token is None:
                return docs
            if token in seen_tokens:
                raise RefreshError(f"AWS {what} repeated a NextToken; aborting", provider=PROVIDER)
            seen_tokens.add(token)
        raise RefreshError(
            f"AWS Price List GetProducts ({region}, {field_}={value!r}) returned more than "
            f"{_MAX_PAGES} pages; aborting",
            provider=PROVIDER,
        )

    def _row(self, doc: dict[str, Any], region_wanted: str, index: int) -> _Row | None:
        product = doc.get("product")
        attrs = product.get("attributes") if isinstance(product, dict) else None
        sku = str((product.get("sku") if isinstance(product, dict) else None) or f"row-{index}")
        if not isinstance(attrs, dict):
            self._correct(
                f"no-attributes-{sku}".lower(),
                [f"aws price list product {sku}"],
                "row",
                "dropped_row",
                "Price List product without product.attributes; skipped.",
            )
            return None
        if not _is_relevant(attrs):
            return None
        instance_type = attrs.get("instanceType")
        region = attrs.get("regionCode") or self._loc_to_region.get(attrs.get("location"))
        if not instance_type or not region:
            self._correct(
                f"unidentified-{sku}".lower(),
                [f"aws price list product {sku}"],
                "row",
                "dropped_row",
                "Price List product without instanceType or a known regionCode/location; skipped.",
            )
            return None
        if region != region_wanted:
            return None
        key = f"{PROVIDER}/{region}/{instance_type}"
        pub = doc.get("publicationDate")
        terms = doc.get("terms")
        try:
            if not isinstance(terms, dict):
                raise _RowProblem("product without terms")
            on_demand = _on_demand(terms)
        except _RowProblem as exc:
            self.unusable[(region, instance_type)] = str(exc)
            self._correct(
                f"unusable-{instance_type}-{region}",
                [key],
                "row",
                "dropped_row",
                f"Price List row unusable ({exc}); skipped.",
            )
            return None
        row = _Row(
            region=region,
            instance_type=instance_type,
            sku=sku,
            on_demand=on_demand if on_demand else None,
            on_demand_zero=on_demand == 0,
            reserved={},
            attributes=attrs,
            publication_date=pub if isinstance(pub, str) else None,
        )
        reserved = terms.get("Reserved") or {}
        if not isinstance(reserved, dict):
            reserved = {}
            row.term_problems.append("terms.Reserved is not an object")
        for code, term in sorted(reserved.items()):
            try:
                k, v = _reserved_term(term)
            except _RowProblem as exc:
                row.term_problems.append(f"reserved term {code}: {exc}")
                continue
            if k in row.reserved and row.reserved[k] != v:
                row.term_problems.append(f"reserved term {code}: conflicting duplicate for {k}")
                row.reserved.pop(k)
                continue
            row.reserved[k] = v
        return row

    def _fetch_region(self, region: str, families: list[str]) -> list[_Row]:
        docs: list[dict[str, Any]] = []
        for fam in families:
            docs.extend(self._get_products(region, "instanceFamily", fam))
        seen = {
            d.get("product", {}).get("attributes", {}).get("instanceType")
            for d in docs
            if isinstance(d.get("product"), dict)
            and isinstance(d["product"].get("attributes"), dict)
        }
        base_types = sorted(
            {
                o.instance_type
                for o in self.base.offerings
                if o.provider == PROVIDER and o.region == region
            }
            - seen
        )
        # Base types the family queries did not return: ask for each by type, so a type is
        # only dropped when AWS really no longer lists it. Skipped when the region returned
        # nothing at all (the merge then keeps the region's base offerings, with a warning).
        if docs:
            for t in base_types:
                docs.extend(self._get_products(region, "instanceType", t))
        rows = []
        for i, d in enumerate(docs):
            row = self._row(d, region, i)
            if row is not None:
                rows.append(row)
                if row.publication_date:
                    self.publication_dates.add(row.publication_date)
        return rows

    def _combine(self, rows: list[_Row]) -> dict[tuple[str, str], FreshPrice]:
        by_key: dict[tuple[str, str], list[_Row]] = defaultdict(list)
        for r in rows:
            by_key[(r.region, r.instance_type)].append(r)
        prices: dict[tuple[str, str], FreshPrice] = {}
        for (region, itype), group in sorted(by_key.items()):
            key = f"{PROVIDER}/{region}/{itype}"
            if (region, itype) in self.unusable:
                continue  # another product for this key was unusable: keep base prices
            ods = {r.on_demand for r in group}
            if len(ods) > 1:
                reason = (
                    f"AWS lists {len(group)} products with different on-demand prices "
                    f"{sorted(str(p) for p in ods)}"
                )
                self.unusable[(region, itype)] = reason
                self._correct(
                    f"ambiguous-{itype}-{region}",
                    [key],
                    "on_demand_hourly",
                    "dropped_row",
                    f"{reason}; not choosing one, skipped.",
                )
                continue
            on_demand = ods.pop()
            if any(r.on_demand_zero for r in group):
                self._correct(
                    f"zero-on-demand-{itype}-{region}",
                    [key],
                    "on_demand_hourly",
                    "dropped_value",
                    "AWS lists an on-demand price of 0.00 USD; recorded as not priced.",
                    raw="0",
                    new=None,
                )
            reserved: dict[tuple[int, str, str | None], tuple[float, float | None]] = {}
            problems: list[str] = []
            for r in group:
                problems.extend(r.term_problems)
                for k, v in r.reserved.items():
                    if k in reserved and reserved[k] != v:
                        problems.append(f"conflicting reserved prices for {k}")
                        reserved[k] = (-1.0, None)  # poisoned, removed below
                    elif k not in reserved:
                        reserved[k] = v
            if problems:
                self._correct(
                    f"reserved-terms-{itype}-{region}",
                    [key],
                    "commitments",
                    "dropped_value",
                    "Some reserved terms were unusable and were dropped: " + "; ".join(problems),
                )
            commitments = []
            for (months, option, klass), (upfront, hourly) in sorted(
                reserved.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] or "")
            ):
                if upfront < 0:
                    continue
                effective = round((hourly or 0.0) + upfront / HOURS_PER_TERM_MONTHS[months], 8)
                commitments.append(
                    CommitmentPrice(
                        kind="reserved",
                        term_months=months,
                        payment_option=option,  # type: ignore[arg-type]
                        offering_class=klass,
                        upfront_usd=upfront,
                        hourly_usd=hourly,
                        effective_hourly_usd=effective,
                        estimate=False,
                        source=self.source.id,
                        date=self.today.isoformat(),
                    )
                )
            attrs = group[0].attributes
            hint, problem = self._hint(itype, attrs)
            prices[(region, itype)] = FreshPrice(
                region=region,
                instance_type=itype,
                on_demand_hourly=on_demand,
                reserved=commitments,
                sources=[self.source.id],
                hardware_hint=hint,
                hint_problem=problem,
            )
        return prices

    def _hint(
        self, instance_type: str, attrs: dict[str, Any]
    ) -> tuple[Hardware | None, str | None]:
        family = instance_family(instance_type)
        gpu_model = accelerator_for_instance_type(instance_type)
        raw_count = attrs.get("gpu")
        if gpu_model is None:
            return None, (
                f"no known accelerator for AWS instance family {family!r} "
                f"(Price List gpu attribute {raw_count!r}); not guessed"
            )
        try:
            count = int(str(raw_count))
        except (TypeError, ValueError):
            count = 0
        if count < 1 or str(count) != str(raw_count).strip():
            return None, (f"the Price List gpu attribute {raw_count!r} is not a whole GPU count")
        return Hardware(
            accelerator_kind=CANONICAL_ACCELERATORS[gpu_model],
            gpu_model=gpu_model,
            gpu_count=count,
            vcpus=_number(attrs.get("vcpu")),
            ram_gb=_number(attrs.get("memory"), unit="GiB"),
            origin=f"GPU {gpu_model} from the AWS instance family {family!r}, GPU count, vCPUs "
            "and memory from the Price List attributes; GPU memory and interconnect not "
            "recorded",
        ), None

    # -- spot ------------------------------------------------------------------------

    def _spot(self, region: str, types: list[str]) -> dict[str, float | None] | None:
        """Minimum current spot price per instance type; None if the region is not allowed."""
        if not types:
            return {}
        try:
            client = self.ec2_factory(region)
        except RefreshError:
            raise
        except Exception as exc:  # the factory is caller-provided
            raise RefreshError(
                f"could not create the AWS EC2 client for {region}: {exc}", provider=PROVIDER
            ) from exc
        latest: dict[tuple[str, str], tuple[datetime | str, float | None]] = {}
        bad: set[str] = set()
        start = self.now()
        for i in range(0, len(types), _SPOT_CHUNK):
            chunk = types[i : i + _SPOT_CHUNK]
            token: str | None = None
            seen_tokens: set[str] = set()
            for page_no in range(1, _MAX_PAGES + 1):
                kwargs: dict[str, Any] = {
                    "InstanceTypes": chunk,
                    "ProductDescriptions": ["Linux/UNIX"],
                    "StartTime": start,
                    "MaxResults": 1000,
                }
                if token:
                    kwargs["NextToken"] = token
                what = f"EC2 DescribeSpotPriceHistory ({region}, page {page_no})"
                try:
                    resp = self.caller(
                        what, client.describe_spot_price_history, kwargs, soft_codes=SPOT_SOFT_CODES
                    )
                except _SoftFailure as exc:
                    self.warnings.append(
                        f"{PROVIDER}/{region}: spot prices not available ({exc.code}: {exc}); "
                        "base spot prices kept for this region"
                    )
                    return None
                history = resp.get("SpotPriceHistory") if isinstance(resp, dict) else None
                if not isinstance(history, list):
                    raise RefreshError(
                        f"AWS {what} returned a malformed page (no "
                        "SpotPriceHistory list); aborting",
                        provider=PROVIDER,
                    )
                for e in history:
                    if not isinstance(e, dict):
                        raise RefreshError(
                            f"AWS {what} returned a malformed entry; aborting", provider=PROVIDER
                        )
                    itype, az = e.get("InstanceType"), e.get("AvailabilityZone")
                    if itype not in chunk or not isinstance(az, str):
                        continue
                    if not re.fullmatch(re.escape(region) + r"[a-z]", az):
                        continue  # Local Zone / Wavelength Zone
                    try:
                        price = positive_price(e.get("SpotPrice"))
                    except (TypeError, ValueError):
                        bad.add(itype)
                        continue
                    ts = e.get("Timestamp") or ""
                    prev = latest.get((itype, az))
                    if prev is None or _ts(ts) > _ts(prev[0]):
                        latest[(itype, az)] = (ts, price)
                token = resp.get("NextToken") or None
                if token is None:
                    break
                if token in seen_tokens:
                    raise RefreshError(
                        f"AWS {what} repeated a NextToken; aborting", provider=PROVIDER
                    )
                seen_tokens.add(token)
        out: dict[str, float | None] = {}
        for itype in types:
            zone_prices = [p for (t, _), (_, p) in latest.items() if t == itype and p is not None]
            if itype in bad and not zone_prices:
                self.warnings.append(
                    f"{PROVIDER}/{region}/{itype}: spot price entries unusable; base spot kept"
                )
                continue
            out[itype] = min(zone_prices) if zone_prices else None
        return out

    # -- all -------------------------------------------------------------------------

    def fetch(self) -> FreshData:
        families = self._families()
        prices: dict[tuple[str, str], FreshPrice] = {}
        for region in self.scope:
            rows = self._fetch_region(region, families)
            prices.update(self._combine(rows))
        base_keys = {
            (o.region, o.instance_type) for o in self.base.offerings if o.provider == PROVIDER
        }
        for region in self.scope:
            keys = sorted(k for k in prices if k[0] == region)
            wanted = [
                k[1]
                for k in keys
                if k in base_keys or resolve_new_hardware(self.base, PROVIDER, prices[k])[0]
            ]
            spot = self._spot(region, wanted)
            if spot is None:
                continue
            for itype, price in spot.items():
                fp = prices[(region, itype)]
                fp.spot_known = True
                fp.spot_hourly = price
                if price is not None:
                    fp.sources.append(self.spot_source.id)
        if self.publication_dates:
            newest = max(self.publication_dates)
            self.source = self.source.model_copy(
                update={"note": f"{self.source.note} Price list publicationDate {newest}."}
            )
        # the spot source is recorded only if some spot price was actually taken from it
        spot_used = any(self.spot_source.id in fp.sources for fp in prices.values())
        return FreshData(
            provider=PROVIDER,
            regions=list(self.scope),
            prices=prices,
            unusable=dict(self.unusable),
            sources=[self.source, self.spot_source] if spot_used else [self.source],
            corrections=self.corrections,
            warnings=self.warnings,
        )


def _ts(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat() if value.tzinfo else value.isoformat()
    return str(value)


def _number(value: Any, unit: str | None = None) -> float | None:
    """'96' -> 96.0, '1152 GiB' -> 1152.0; None for 'NA'/missing/other units."""
    if value is None:
        return None
    text = str(value).strip().replace(",", "")
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)", text)
    if not m:
        return None
    if m.group(2) and (unit is None or m.group(2) != unit):
        return None
    f = float(m.group(1))
    return f if f > 0 else None
