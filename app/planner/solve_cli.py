"""``archplan solve``: solve a CapacityProblem file and show the plan.

Registered in :mod:`app.cli` as ``cli.command("solve")(solve_command)``.

Exit codes: 0 = solved (including a proven-infeasible problem, reported with its
explanation), 1 = the solver failed ("error"), 2 = bad input (the message names the field).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from app.planner.problem import ProblemInputError
from app.planner.problem_io import load_problem, problem_json_schema

if TYPE_CHECKING:  # the solver (PuLP) loads only when a command needs it
    from app.planner.solver import SolveResult

__all__ = ["solve_command"]


def _num(x: float | None, digits: int = 2) -> str:
    if x is None:
        return "-"
    if abs(x - round(x)) < 1e-9:
        return f"{round(x):,}"
    return f"{x:,.{digits}f}"


def _schedule(values: list[float], limit: int = 8) -> str:
    """'t0: 3, t5: 2' for the non-zero entries (shortened when long)."""
    items = [f"t{t}: {_num(v)}" for t, v in enumerate(values) if abs(v) > 1e-9]
    if len(items) > limit:
        items = [*items[:limit], f"... (+{len(items) - limit})"]
    return ", ".join(items) or "-"


def _print_human(result: SolveResult, console: Console, title: str) -> None:
    console.print(f"[bold]{title}[/bold]")
    status_style = {
        "optimal": "green",
        "feasible": "yellow",
        "infeasible": "red",
        "unbounded": "red",
        "error": "red",
    }[result.status]
    summary = Table(show_header=False, box=None, pad_edge=False)
    summary.add_row("status", f"[{status_style}]{result.status}[/{status_style}]")
    if result.message and result.message != result.status:
        summary.add_row("message", result.message)
    summary.add_row("solver", result.solver + (" (LP relaxation)" if result.relaxed else ""))
    if result.objective is not None:
        summary.add_row(f"objective ({result.objective_kind})", _num(result.objective))
        summary.add_row("bound", _num(result.bound))
        summary.add_row("gap", "-" if result.gap is None else f"{result.gap:.3%}")
        summary.add_row("total nominal cost", _num(result.total_nominal_cost))
        summary.add_row("NPV", _num(result.npv))
        if result.cost_after_horizon:
            summary.add_row("of which after the horizon", _num(result.cost_after_horizon))
    summary.add_row(
        "time",
        f"build {result.build_seconds:.3f}s, solve {result.solve_seconds:.3f}s, "
        f"total {result.total_seconds:.3f}s",
    )
    if result.stats is not None:
        s = result.stats
        summary.add_row(
            "model",
            f"{s.variables:,} variables ({s.integer_variables:,} integer), "
            f"{s.constraints:,} constraints, {s.nonzeros:,} nonzeros",
        )
    console.print(summary)

    if result.status == "infeasible":
        console.print()
        console.print(result.explanation or result.message, markup=False)
        return
    if not result.options:
        return
    table = Table(title="Plan", show_lines=False)
    for col in ("option", "kind", "bought (period: units)", "in service / used", "cost"):
        table.add_column(col, justify="right" if col == "cost" else "left")
    for o in result.options:
        if o.purchased_by_class is not None:
            bought = ", ".join(f"{c}: {_num(v)}" for c, v in o.purchased_by_class.items() if v)
            bought = f"t0 ({bought})" if bought else "-"
        else:
            bought = _schedule(o.purchased)
        used = _schedule(o.active)
        table.add_row(o.name, o.kind, bought, used, _num(o.cost))
    console.print(table)
    if result.cost_by_category:
        cats = Table(title="Cost by category", show_header=False)
        for k, v in result.cost_by_category.items():
            cats.add_row(k, _num(v))
        console.print(cats)


def solve_command(
    path: Path | None = typer.Argument(  # noqa: B008 (typer idiom)
        None, help="CapacityProblem file (.yaml, .yml or .json).", show_default=False
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    relax: bool = typer.Option(False, "--relax", help="Solve the LP relaxation."),
    schema: bool = typer.Option(
        False, "--schema", help="Print the JSON Schema of the problem format and exit."
    ),
    solver: str = typer.Option("highs", "--solver", help="highs (default) or cbc."),
    time_limit: float | None = typer.Option(
        None, "--time-limit", min=0.0, help="Seconds; a stopped run reports 'feasible'."
    ),
    gap: float | None = typer.Option(None, "--gap", min=0.0, help="Relative MIP gap to stop at."),
) -> None:
    """Solve a capacity-purchase problem and show the plan, bound and gap."""
    out = Console(soft_wrap=True)
    err = Console(stderr=True, soft_wrap=True)
    if schema:
        sys.stdout.write(json.dumps(problem_json_schema(), indent=2) + "\n")
        raise typer.Exit(0)
    if path is None:
        err.print("error: PATH is required (or use --schema)", markup=False)
        raise typer.Exit(2)
    if solver.strip().lower() not in ("highs", "cbc", "pulp_cbc_cmd"):
        err.print(f"error: --solver must be 'highs' or 'cbc', got {solver!r}", markup=False)
        raise typer.Exit(2)
    try:
        problem = load_problem(path)
    except ProblemInputError as exc:
        err.print(f"error: {path}: {exc}", markup=False)
        if json_out:
            payload = {
                "status": "input_error",
                "field": exc.path,
                "message": exc.message,
                "errors": [{"field": p, "message": m} for p, m in exc.errors],
            }
            sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        raise typer.Exit(2) from None
    from app.planner.solver import solve

    result = solve(problem, solver=solver, relax=relax, time_limit=time_limit, gap=gap)
    if json_out:
        sys.stdout.write(result.model_dump_json(indent=2) + "\n")
    else:
        _print_human(result, out, f"{problem.name} ({path})")
    if result.status == "error":
        raise typer.Exit(1)
