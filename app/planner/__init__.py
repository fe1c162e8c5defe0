"""Capacity planning: demand profiles, the generic CapacityProblem and its MILP solver.

The core API (imported lazily, so that importing one submodule does not load PuLP)::

    from app.planner import CapacityProblem, load_problem, solve
    result = solve(load_problem("case.yaml"))          # HiGHS; solver="cbc" for CBC
    result.status, result.objective, result.bound, result.gap

See :mod:`app.planner.problem` (the format), :mod:`app.planner.solver` (the model's
math and conventions) and :mod:`app.planner.problem_io` (files and JSON Schema).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.planner.problem import CapacityProblem, Option, ProblemInputError
    from app.planner.problem_io import load_problem, parse_problem, problem_json_schema
    from app.planner.solver import Shortfall, SolveResult, solve

_EXPORTS = {
    "CapacityProblem": "app.planner.problem",
    "Option": "app.planner.problem",
    "ProblemInputError": "app.planner.problem",
    "load_problem": "app.planner.problem_io",
    "parse_problem": "app.planner.problem_io",
    "problem_json_schema": "app.planner.problem_io",
    "Shortfall": "app.planner.solver",
    "SolveResult": "app.planner.solver",
    "solve": "app.planner.solver",
}

__all__ = [
    "CapacityProblem",
    "Option",
    "ProblemInputError",
    "Shortfall",
    "SolveResult",
    "load_problem",
    "parse_problem",
    "problem_json_schema",
    "solve",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'app.planner' has no attribute {name!r}")
    return getattr(import_module(module), name)
