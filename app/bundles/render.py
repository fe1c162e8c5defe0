"""Rendering primitives for bundles: one Jinja environment with StrictUndefined, and an
encoder per target format so that user text is always data, never code.

Templates receive values only through these filters (``| hcl``, ``| yaml``, ``| py``,
``| json``, ``| md``, ``| dockerfile_label``); a design named ``a"b\\n${x}{{ y }}`` or
``'; rm -rf /`` renders as an inert string in every format.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATE_ROOT = Path(__file__).resolve().parents[2] / "templates" / "bundles"


def hcl(value: Any) -> str:
    """An HCL (Terraform) literal: strings quoted and escaped, interpolation disabled."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)  # quotes, backslashes, control chars
        return text.replace("${", "$${").replace("%{", "%%{")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(hcl(v) for v in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{hcl(str(k))} = {hcl(v)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    raise TypeError(f"cannot encode {type(value).__name__} as HCL")


def yaml_scalar(value: Any) -> str:
    """A YAML flow value: JSON is valid YAML, and it never starts a tag, anchor or block."""
    return json.dumps(value, ensure_ascii=False)


def py(value: Any) -> str:
    """A Python literal (``repr`` of plain data)."""
    if isinstance(value, (str, int, float, bool, type(None), list, tuple, dict)):
        return repr(value)
    raise TypeError(f"cannot encode {type(value).__name__} as a Python literal")


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>&])")


def md(value: Any) -> str:
    """Markdown text: every markup character escaped, newlines folded."""
    text = " ".join(str(value).split())
    return _MD_SPECIAL.sub(r"\\\1", text)


def dockerfile_label(value: Any) -> str:
    """A Dockerfile LABEL value: a quoted string on one line, ``$`` escaped so the builder
    does not expand variables in it."""
    return json.dumps(" ".join(str(value).split()), ensure_ascii=False).replace("$", "\\$")


def environment(subdir: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATE_ROOT / subdir)),
        undefined=StrictUndefined,
        autoescape=False,  # each value is encoded for its format by a filter
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(hcl=hcl, yaml=yaml_scalar, py=py, json=lambda v: json.dumps(v, ensure_ascii=False),
                       md=md, dockerfile_label=dockerfile_label)
    return env


def render(subdir: str, template: str, **context: Any) -> str:
    return environment(subdir).get_template(template).render(**context)
