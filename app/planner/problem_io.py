"""Reading and writing :class:`~app.planner.problem.CapacityProblem` files (YAML or JSON).

* :func:`load_problem` -- a ``.yaml``/``.yml``/``.json`` file (the published reference
  cases load unmodified);
* :func:`parse_problem` -- an already-parsed mapping;
* :func:`dump_problem` / :func:`problem_to_dict` -- write a problem back (round-trips);
* :func:`problem_json_schema` -- JSON Schema of the format (accepting the aliases such as
  ``max_vms`` that the reference cases use).

Every input error is raised as :class:`~app.planner.problem.ProblemInputError`, whose
``path`` names the offending field, e.g. ``options[1].term_periods`` or ``demand.a[3]``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import AliasChoices, BaseModel, ValidationError

from app.planner.problem import CapacityProblem, ProblemInputError

__all__ = [
    "ProblemInputError",
    "dump_problem",
    "load_problem",
    "parse_problem",
    "problem_json_schema",
    "problem_to_dict",
]

# pydantic adds these to error locations for unions / validators; they are not field names
_TAG = re.compile(
    r"^(function-(after|before|wrap|plain)\[.*\]|list\[.*\]|dict\[.*\]|union\[.*\]|"
    r"literal\[.*\]|nullable\[.*\]|constrained-.*|lax-or-strict\[.*\]|json-or-python\[.*\]|"
    r"float|int|str|bool|is-instance\[.*\])$"
)


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and _TAG.match(part):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


def _from_validation_error(exc: ValidationError) -> ProblemInputError:
    errors: list[tuple[str, str]] = []
    for e in exc.errors(include_url=False):
        ctx = e.get("ctx") or {}
        inner = ctx.get("error")
        if isinstance(inner, ProblemInputError):
            errors.extend(inner.errors)
            continue
        msg = e.get("msg", "invalid value")
        msg = msg.removeprefix("Value error, ")
        if e.get("type") == "extra_forbidden":
            msg = "unknown field (not part of the CapacityProblem format)"
        elif e.get("type") == "missing":
            msg = "field required"
        errors.append((_path(tuple(e.get("loc", ()))), msg))
    if not errors:
        errors = [("", str(exc))]
    path, msg = errors[0]
    return ProblemInputError(path, msg, errors=errors)


def parse_problem(data: Any) -> CapacityProblem:
    """Validate a parsed mapping into a :class:`CapacityProblem`."""
    if not isinstance(data, dict):
        raise ProblemInputError("", f"a problem must be a mapping, got {type(data).__name__}")
    try:
        return CapacityProblem.model_validate(data)
    except ValidationError as exc:
        raise _from_validation_error(exc) from None


def load_problem(path: str | Path) -> CapacityProblem:
    """Load a problem from a YAML (``.yaml``/``.yml``) or JSON (``.json``) file.

    Other suffixes are parsed as YAML (a superset of JSON).
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProblemInputError("", f"cannot read {p}: {exc.strerror or exc}") from None
    try:
        if p.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            data = yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise ProblemInputError("", f"{p}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ProblemInputError("", f"{p}: invalid YAML{where}: {exc}") from None
    return parse_problem(data)


def problem_to_dict(problem: CapacityProblem, *, exclude_defaults: bool = True) -> dict[str, Any]:
    """A JSON-compatible mapping that :func:`parse_problem` reads back to an equal problem."""
    return problem.model_dump(mode="json", exclude_defaults=exclude_defaults, exclude_none=True)


def dump_problem(problem: CapacityProblem, path: str | Path) -> None:
    """Write ``problem`` as JSON (``.json``) or YAML (anything else)."""
    p = Path(path)
    data = problem_to_dict(problem)
    if p.suffix.lower() == ".json":
        p.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    else:
        p.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


def _add_aliases(schema: dict[str, Any], model: type[BaseModel], seen: set[type]) -> None:
    """Let the schema accept validation aliases (``max_vms`` for ``max_units`` ...)."""
    if model in seen:
        return
    seen.add(model)
    target = schema.get("$defs", {}).get(
        model.__name__, schema if model is CapacityProblem else None
    )
    for name, f in model.model_fields.items():
        alias = f.validation_alias
        if target is not None and isinstance(alias, AliasChoices):
            props = target.get("properties", {})
            if name in props:
                for choice in alias.choices:
                    if isinstance(choice, str) and choice != name and choice not in props:
                        props[choice] = {
                            **props[name],
                            "description": f"Alias of `{name}`.",
                        }
        ann = f.annotation
        for sub in _models_in(ann):
            _add_aliases(schema, sub, seen)


def _models_in(ann: Any) -> list[type[BaseModel]]:
    out: list[type[BaseModel]] = []
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return [ann]
    for arg in getattr(ann, "__args__", ()) or ():
        out.extend(_models_in(arg))
    return out


def problem_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of the CapacityProblem file format."""
    schema = CapacityProblem.model_json_schema(mode="validation")
    _add_aliases(schema, CapacityProblem, set())
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://archplan.dev/schemas/capacity-problem.json"
    return schema
