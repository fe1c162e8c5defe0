"""``archplan plan``: requirements file in, plan out (table or JSON)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from app.catalog.schema import Snapshot, load_snapshot
from app.planner.demand import DemandError
from app.planner.options import PlannerSettings
from app.requirements.spec import SpecError, load_spec

if TYPE_CHECKING:  # the solver (PuLP) loads only when a command needs it
    from app.planner.plan import Plan

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _money(x: float | None) -> str:
    return "—" if x is None else f"${x:,.0f}"


def _print_plan(plan: Plan) -> None:
    head = Table(title=f"Plan for {plan.spec_name}", show_header=False, title_justify="left")
    head.add_column(style="bold")
    head.add_column()
    head.add_row("Status", plan.status + (f" (gap {plan.gap:.4%})" if plan.gap is not None else ""))
    head.add_row("Total cost (nominal)", _money(plan.total_cost))
    head.add_row(f"NPV ({plan.discount_rate_annual:.0%}/yr)", _money(plan.npv))
    head.add_row("Proven lower bound", _money(plan.bound) + f" ({plan.objective_kind})")
    head.add_row("Monthly run-rate", _money(plan.monthly_run_rate))
    if plan.cost_after_horizon:
        head.add_row("Committed past the horizon", _money(plan.cost_after_horizon))
    head.add_row("Price snapshot", plan.snapshot_id)
    head.add_row("Options", f"{plan.options_considered} considered, {plan.options_pruned} pruned, "
                 f"{plan.options_in_model} in the model")
    head.add_row("Time", f"{plan.total_seconds:.2f} s (solve {plan.solve_seconds:.2f} s)")
    console.print(head)
    if plan.explanation:
        console.print(plan.explanation, style="yellow")
        return
    if plan.baselines:
        t = Table(title="Baselines", title_justify="left")
        t.add_column("strategy")
        t.add_column("cost", justify="right")
        t.add_column("plan saves", justify="right")
        reasons = []
        for name, d in plan.baseline_details.items():
            s = plan.savings.get(name)
            t.add_row(d.label + (" ★" if name == plan.best_single_strategy else ""), _money(d.total_cost),
                      f"{_money(s['usd'])} ({s['pct']:.1f} %)" if s else "cannot meet the requirements")
            if d.reason:
                reasons.append(f"{d.label}: {d.reason}")
        console.print(t)
        for r in reasons:
            console.print(f"  {r}", style="dim")
    if plan.cost_by_category:
        t = Table(title="Cost by category", title_justify="left")
        t.add_column("category")
        t.add_column("cost", justify="right")
        for k, v in plan.cost_by_category.items():
            t.add_row(k.replace("_", " "), _money(v))
        console.print(t)
    if plan.schedule:
        t = Table(title="Purchase schedule", title_justify="left")
        for col in ("month", "what", "where", "qty", "term", "upfront/unit", "monthly/unit", "total"):
            t.add_column(col, justify="right" if col in ("qty", "upfront/unit", "monthly/unit", "total") else "left")
        for s in plan.schedule:
            t.add_row(s.purchase_month, f"{s.kind} {s.item}", f"{s.provider}/{s.region}", str(s.quantity),
                      f"{s.term_months} mo", _money(s.upfront_usd), _money(s.monthly_usd), _money(s.total_usd))
        console.print(t)
    if plan.usage:
        t = Table(title="Pay-per-use capacity", title_justify="left")
        for col in ("option", "GPU-hours", "cost"):
            t.add_column(col, justify="left" if col == "option" else "right")
        for u in plan.usage[:15]:
            t.add_row(u.option, f"{sum(u.gpu_hours_by_month):,.0f}", _money(u.cost_usd))
        console.print(t)
    for w in plan.warnings:
        console.print(f"! {w}", style="yellow")


def plan_command(
    spec_path: Path = typer.Argument(..., help="WorkloadSpec YAML or JSON file (see examples/)."),
    json_out: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
    snapshot_path: Path | None = typer.Option(None, "--snapshot", help="Price snapshot file (default: bundled)."),
    solver: str = typer.Option("highs", help="highs or cbc."),
    time_limit: float = typer.Option(60.0, help="Solver time limit in seconds."),
    objective: str = typer.Option("npv", help="npv or nominal."),
    with_sensitivity: bool = typer.Option(False, "--sensitivity", help="Also run the sensitivity scenarios."),
    with_tradeoff: bool = typer.Option(False, "--tradeoff", help="Also compute the cost-versus-deadline curve."),
    max_gpus_per_region: int | None = typer.Option(None, help="Cap on GPUs per cloud region."),
    fx: list[str] = typer.Option(
        [], "--fx", help="Exchange rate to USD for sites priced in another currency, e.g. --fx EUR=1.0411."),
    staff_fte_per_server: float | None = typer.Option(
        None, help="Operations staff per owned server (default 0.05, an assumption)."),
) -> None:
    """Plan GPU capacity for a requirements file: schedule, costs, baselines."""
    try:
        spec = load_spec(spec_path)
    except SpecError as exc:
        err.print(f"[red]Invalid requirements:[/red] {exc}")
        raise typer.Exit(2) from exc
    except OSError as exc:
        err.print(f"[red]Cannot read {spec_path}:[/red] {exc.strerror or exc}")
        raise typer.Exit(2) from exc
    try:
        rates = {}
        for item in fx:
            cur, _, rate = item.partition("=")
            rates[cur.strip().upper()] = float(rate)
        extra_settings = {} if staff_fte_per_server is None else {"private_staff_fte_per_server": staff_fte_per_server}
        settings = PlannerSettings(solver=solver, time_limit_s=time_limit, objective=objective,
                                   max_gpus_per_region=max_gpus_per_region, fx_usd_per=rates,
                                   **extra_settings)
    except ValueError as exc:
        err.print(f"[red]Invalid option:[/red] {exc}")
        raise typer.Exit(2) from exc
    from app.planner.analysis import deadline_tradeoff, sensitivity
    from app.planner.plan import make_plan

    snapshot = _snapshot(snapshot_path)
    try:
        plan = make_plan(spec, snapshot, settings)
    except DemandError as exc:
        err.print(f"[red]Invalid requirements:[/red] {exc}")
        raise typer.Exit(2) from exc
    extra: dict = {}
    if with_sensitivity and plan.status in ("optimal", "feasible"):
        extra["sensitivity"] = sensitivity(spec, snapshot, settings).model_dump()
    if with_tradeoff:
        extra["tradeoff"] = [p.model_dump() for p in deadline_tradeoff(spec, snapshot, settings)]
    if json_out:
        print(json.dumps({**plan.model_dump(mode="json"), **extra}, indent=2))
        return
    _print_plan(plan)
    if "sensitivity" in extra:
        t = Table(title="Sensitivity", title_justify="left")
        for col in ("scenario", "status", "objective", "change"):
            t.add_column(col, justify="left" if col in ("scenario", "status") else "right")
        for s in extra["sensitivity"]["scenarios"]:
            t.add_row(s["label"], s["status"], _money(s["objective"]),
                      "—" if s["change_pct"] is None else f"{s['change_pct']:+.1f} %")
        console.print(t)
    if "tradeoff" in extra:
        t = Table(title="Cost versus deadline", title_justify="left")
        for col in ("factor", "deadlines (days)", "peak GPUs", "status", "total cost"):
            t.add_column(col)
        for p in extra["tradeoff"]:
            t.add_row(f"×{p['factor']:g}", ", ".join(f"{k} {v:g}" for k, v in p["deadline_days"].items()),
                      str(p["peak_gpus"]), p["status"], _money(p["total_cost"]))
        console.print(t)


def _snapshot(path: Path | None) -> Snapshot:
    try:
        return load_snapshot(path) if path else load_snapshot()
    except (OSError, ValueError) as exc:
        err.print(f"[red]Cannot load the price snapshot:[/red] {exc}")
        raise typer.Exit(2) from exc
