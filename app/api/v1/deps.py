"""What every ``/api/v1`` router shares: the caller, the database session, problem
documentation, cursor pagination, entity tags and ``Idempotency-Key`` handling.

* :data:`Caller`: an API key (``Authorization: Bearer ap_…``) or a signed-in browser (with
  ``X-CSRF-Token`` on writes) — :func:`app.auth.api_principal`, declared to OpenAPI as the
  security schemes ``api_key`` and ``browser_session``.
* :func:`problems`: the ``responses=`` of a route, each an ``application/problem+json``
  :class:`Problem` (RFC 9457).
* Cursors are opaque strings naming the listing they were made for and the last id seen.
* :func:`idempotent` runs a POST under its ``Idempotency-Key`` (see
  :mod:`app.services.idempotency`).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Header, Query, Request, Security
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyCookie, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from app.auth import SESSION_COOKIE, api_principal, client_ip, get_db
from app.problems import PROBLEM_MEDIA_TYPE, problem_response
from app.services import accounts as acc
from app.services import idempotency as idem

__all__ = [
    "Caller",
    "CursorParam",
    "Db",
    "IdempotencyKey",
    "LimitParam",
    "Problem",
    "Result",
    "decode_cursor",
    "encode_cursor",
    "etag_matches",
    "idempotent",
    "problems",
    "record",
]

# --------------------------------------------------------------------------- caller and session

Db = Annotated[Session, Depends(get_db)]

bearer_scheme = HTTPBearer(
    auto_error=False, scheme_name="api_key", bearerFormat="ap_…",
    description=("A workspace API key, created on the workspace's API keys page: "
                 "`Authorization: Bearer ap_…`. The read scope reads; read + write also writes."),
)
session_scheme = APIKeyCookie(
    name=SESSION_COOKIE, auto_error=False, scheme_name="browser_session",
    description="A signed-in browser (e.g. these docs); writes also need the `X-CSRF-Token` header.",
)


def current_principal(request: Request, session: Db, _bearer: Annotated[Any, Security(bearer_scheme)],
                      _cookie: Annotated[Any, Security(session_scheme)]) -> acc.Principal:
    """The caller (401 problem without valid credentials)."""
    principal = api_principal(request, session)
    request.state.principal = principal
    return principal


Caller = Annotated[acc.Principal, Depends(current_principal)]


def record(request: Request, session: Session, principal: acc.Principal, action: str, *,
           workspace_id: int, target: str, **detail: Any) -> None:
    """An audit event for an API action, with the key (or user) as actor."""
    acc.record(session, principal, action, workspace_id=workspace_id, target=target,
               detail={"via": "api", **detail}, ip=client_ip(request))


# --------------------------------------------------------------------------- problems


class FieldError(BaseModel):
    field: str = Field(description="Where: `spec.lifecycle.horizon_months`, `query.limit`, `header.idempotency-key`…",
                       examples=["spec.lifecycle.horizon_months"])
    message: str = Field(examples=["Input should be less than or equal to 60"])
    type: str | None = Field(default=None, examples=["less_than_equal"])


class Problem(BaseModel):
    """An RFC 9457 problem: every error of this API."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "type": "about:blank", "title": "Validation failed", "status": 422,
        "detail": "The request is not valid; see `errors` for each field.", "instance": "/api/v1/workspaces/1/designs",
        "errors": [{"field": "spec.lifecycle.horizon_months", "message": "Input should be less than or equal to 60",
                    "type": "less_than_equal"}],
    }]})

    type: str = Field("about:blank", description="A URI naming the kind of problem.")
    title: str = Field(description="Short, the same for every problem of this status.", examples=["Not Found"])
    status: int = Field(description="The HTTP status code.", examples=[404])
    detail: str | None = Field(default=None, description="What went wrong here, for people.")
    instance: str | None = Field(default=None, description="The request path.")
    errors: list[FieldError] | None = Field(default=None, description="Validation problems, one per field.")


_PROBLEM_TEXT = {
    400: "The body could not be read (not UTF-8 encoded JSON).",
    304: "Not modified: the representation matches `If-None-Match` (no body).",
    401: "No credentials, or an unknown or revoked API key.",
    403: "Not allowed: a read-only key or a viewer writing, or a browser write without `X-CSRF-Token`.",
    404: "No such resource, or it belongs to a workspace the caller cannot reach.",
    409: "Conflict with the resource's state.",
    413: "The request body is larger than the server accepts.",
    422: "The request is not valid: `errors` names each field.",
    429: "Too many requests for this key (or address); retry after `Retry-After` seconds.",
    503: "The database is unavailable; retry after `Retry-After` seconds.",
}
_HEADERS = {
    401: {"WWW-Authenticate": {"description": "`Bearer realm=\"archplan\"`", "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}},
    503: {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}},
}
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def problems(*codes: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: the given problem statuses plus 401, 422, 429 and 503.

    ``descriptions`` overrides a status's text (``_409="…"``).
    """
    out: dict[int | str, dict[str, Any]] = {}
    for code in sorted({401, 422, 429, 503, *codes}):
        entry: dict[str, Any] = {"description": descriptions.get(f"_{code}", _PROBLEM_TEXT[code])}
        if code != 304:
            entry["content"] = {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_REF}}
        if code in _HEADERS:
            entry["headers"] = _HEADERS[code]
        out[code] = entry
    return out


#: A write's problems besides the common ones: not allowed, not found, body too large; with a
#: JSON body also 400 (unreadable body).
WRITE_PROBLEMS = (403, 404, 413)
BODY_PROBLEMS = (400, *WRITE_PROBLEMS)


class ApiProblem(Exception):
    """A problem a handler raises (its response is built by :func:`problem_handler`)."""

    def __init__(self, status: int, detail: str, *, errors: list[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None, title: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.errors, self.headers, self.title = status, detail, errors, headers, title

    def response(self, request: Request) -> JSONResponse:
        return problem_response(self.status, self.detail, title=self.title, instance=request.url.path,
                                headers=self.headers, errors=self.errors)


def invalid(field_name: str, message: str, type_: str = "value_error") -> ApiProblem:
    return ApiProblem(422, "The request is not valid; see `errors` for each field.", title="Validation failed",
                      errors=[{"field": field_name, "message": message, "type": type_}])


# --------------------------------------------------------------------------- pagination

LimitParam = Annotated[int, Query(ge=1, le=100, description="Items per page (1-100).")]
CursorParam = Annotated[str | None, Query(max_length=200, description="`next_cursor` of the previous page.")]
#: Ids in paths and queries: positive and within a 32-bit integer column.
MAX_ID = 2**31 - 1


def encode_cursor(listing: str, last_id: int) -> str:
    raw = json.dumps({"l": listing, "i": last_id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, listing: str) -> int | None:
    """The last id of the page a cursor continues; :class:`ApiProblem` 422 if it is not ours."""
    if cursor is None:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not (isinstance(data, dict) and isinstance(data.get("l"), str) and type(data.get("i")) is int):
            raise ValueError
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise invalid("query.cursor", "not a cursor returned by this API") from None
    if data["l"] != listing:
        raise invalid("query.cursor", "the cursor belongs to another listing")
    return data["i"]


def page(items: list[Any], limit: int, listing: str, last_id: Callable[[Any], int]) -> tuple[list[Any], str | None]:
    """``items`` fetched with ``limit + 1``: the page and the cursor of the next one (or None)."""
    if len(items) > limit:
        items = items[:limit]
        return items, encode_cursor(listing, last_id(items[-1]))
    return items, None


# --------------------------------------------------------------------------- entity tags


IfNoneMatch = Annotated[str | None, Header(
    max_length=1000, description="Entity tags of a copy the client has: 304 when one matches.")]


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """``If-None-Match`` (weak comparison, as RFC 9110 asks for GET) against ``etag``."""
    if not if_none_match:
        return False
    wanted = etag.removeprefix("W/")
    for tag in if_none_match.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") == wanted:
            return True
    return False


def tagged(data: bytes, media_type: str, etag: str, if_none_match: str | None,
           headers: dict[str, str] | None = None) -> Response:
    """``data`` with its ETag, or 304 when the client's copy matches."""
    out = {"ETag": etag, "Cache-Control": "private, no-cache", "Vary": "Accept, Authorization, Cookie",
           **(headers or {})}
    if etag_matches(if_none_match, etag):
        out.pop("Content-Disposition", None)
        return Response(status_code=304, headers=out)
    return Response(content=data, media_type=media_type, headers=out)


def json_bytes(model: BaseModel) -> bytes:
    return model.model_dump_json().encode("utf-8")


# --------------------------------------------------------------------------- idempotency

_KEY_RE = re.compile(r"^[\x21-\x7e]{1,200}$")

IdempotencyKey = Annotated[str | None, Header(
    max_length=idem.MAX_KEY_CHARS,
    description=("Makes the POST safe to retry: a request repeated with the same key (and body) gets the "
                 "first response again instead of doing the work twice. 1-200 visible ASCII characters, "
                 "e.g. a UUID; kept 24 hours."),
    examples=["0b5d8f0e-2f7e-4c36-9d0f-5a1c3b7e9a21"],
)]


@dataclass
class Result:
    """What a POST handler's work produced: status, body model and headers (e.g. Location)."""

    status_code: int
    body: BaseModel | None
    headers: dict[str, str] = field(default_factory=dict)

    def content(self) -> Any:
        return jsonable_encoder(self.body) if self.body is not None else None


def _respond(status_code: int, body: Any, headers: dict[str, str]) -> Response:
    if status_code == 204 or body is None:
        return Response(status_code=status_code, headers=headers)
    return JSONResponse(body, status_code=status_code, headers=headers)


def idempotent(request: Request, session: Session, principal: acc.Principal, key: str | None,
               body: BaseModel | None, work: Callable[[], Result]) -> Response:
    """Run ``work`` once per ``Idempotency-Key``: a retry with the same key and body gets the
    stored first response (with ``Idempotent-Replayed: true``); another body under the same
    key is a 422 problem; a retry while the first is still running, a 409 problem."""
    if key is None:
        result = work()
        return _respond(result.status_code, result.content(), result.headers)
    if not _KEY_RE.match(key):
        raise invalid("header.idempotency-key", "use 1-200 visible ASCII characters (e.g. a UUID)")
    body_json = jsonable_encoder(body) if body is not None else None
    request_hash = idem.fingerprint(request.method, request.url.path, body_json)
    try:
        stored = idem.begin(session, principal.actor, key, method=request.method, path=request.url.path,
                            request_hash=request_hash)
    except idem.KeyReused as exc:
        raise ApiProblem(422, str(exc), title="Idempotency-Key reused",
                         errors=[{"field": "header.idempotency-key", "message": str(exc),
                                  "type": "idempotency_key_reused"}]) from None
    except idem.KeyInProgress as exc:
        raise ApiProblem(409, str(exc), headers={"Retry-After": "1"}) from None
    if stored is not None:
        return _respond(stored.status_code, stored.body, {**stored.headers, "Idempotent-Replayed": "true"})
    try:
        result = work()
    except BaseException:
        idem.abandon(session, principal.actor, key)
        raise
    content = result.content()
    if 200 <= result.status_code < 300:
        idem.finish(session, principal.actor, key, status_code=result.status_code, body=content,
                    headers=result.headers)
    else:
        idem.abandon(session, principal.actor, key)
    return _respond(result.status_code, content, result.headers)
