"""Helpers: a spec as the wizard's form would post it, and reading the HTML answers."""

from __future__ import annotations

import html as htmllib
import json
import re
from typing import Any
from urllib.parse import urlencode

from fastapi.testclient import TestClient

from app.requirements.examples import load_example
from app.web import wizard as w

FORM = {"content-type": "application/x-www-form-urlencoded"}
HX = {"HX-Request": "true"}


def example_values(name: str = "research-burst-deadline") -> tuple[dict[str, Any], dict[str, Any]]:
    return w.values_from_data(load_example(name).model_dump(mode="json"))


def items(values: dict[str, Any], carry: dict[str, Any] | None = None, **extra: str) -> list[tuple[str, str]]:
    """Name/value pairs in the order a browser sends them (checkboxes: hidden false, then true)."""
    out: list[tuple[str, str]] = []
    for name, value in values.items():
        f = w.field_for(name)
        if f is not None and f.kind == "multi":
            out += [(name, v) for v in value]
        elif f is not None and f.kind == "check":
            out.append((name, "false"))
            if value == "true":
                out.append((name, "true"))
        else:
            out.append((name, value))
    if carry:
        out.append(("_carry", json.dumps(carry)))
    out += list(extra.items())
    return out


def post(client: TestClient, url: str, pairs: list[tuple[str, str]], *, htmx: bool = False, **kw):
    headers = {**FORM, **(HX if htmx else {})}
    return client.post(url, content=urlencode(pairs), headers=headers, **kw)


def issues(html: str) -> dict[str, str]:
    """target -> message of the errors fragment's items (target "" = the summary only)."""
    found = re.findall(r'<li data-target="([^"]*)" data-kind="[^"]*" data-id="[^"]*" data-message="([^"]*)"', html)
    return {t: htmllib.unescape(m) for t, m in found}


def input_value(html: str, name: str) -> str | None:
    m = re.search(rf'<input type="text" id="[^"]+" name="{re.escape(name)}" value="([^"]*)"', html)
    return htmllib.unescape(m.group(1)) if m else None
