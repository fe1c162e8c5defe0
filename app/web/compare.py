"""``/compare``: the latest plans of 2-4 designs side by side.

``GET /compare`` lists the designs that have a plan (checkboxes) and those that do not (with
a hint to plan them); ``GET /compare?ids=1&ids=2…`` shows one table of the headline figures —
the best value of each row marked, every other column's difference against the first in
per cent — and two overlaid charts (monthly cost, cumulative cost), so variants of one
workload ("cloud only", "hybrid", "private") can be weighed at a glance.

The choice lists the current workspace's designs; a design in the URL is looked up in its
own workspace (:mod:`app.services.access`), so one the user may not see is a 404.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from sqlmodel import Session

from app.models import Design
from app.models import Plan as PlanRow
from app.planner.plan import Plan
from app.services import access
from app.services import accounts as acc
from app.services import designs as svc
from app.web.deps import DbSession, FormGuard, PageUser
from app.web.designs import BASELINE_LABELS, HELPERS, KIND_LABELS
from app.web.templating import templates

router = APIRouter(include_in_schema=False, dependencies=[FormGuard])
log = logging.getLogger("archplan.web.compare")

SessionDep = DbSession
MIN_DESIGNS, MAX_DESIGNS = 2, 4
KINDS = ("reserved", "private", "on_demand", "spot")


@dataclass
class Column:
    design: Design
    row: PlanRow
    plan: Plan | None

    @property
    def solved(self) -> bool:
        return self.plan is not None and self.plan.status in ("optimal", "feasible") and self.plan.total_cost is not None


@dataclass
class Cell:
    text: str
    value: float | None = None
    note: str = ""  # small text under the value
    diff: str = ""  # "+12.3 %" against the first column
    diff_class: str = ""  # good | bad | ""
    best: bool = False
    differs: bool = False
    html_kind: str = ""  # status | snapshot | plan: rendered specially by the template
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Row:
    key: str
    label: str
    cells: list[Cell]
    better: str | None = None  # lower | higher | None
    help: str = ""
    group: str = ""


# --------------------------------------------------------------------------- figures


def _f(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def _mix(plan: Plan | None) -> dict[str, tuple[float, float]]:
    """Purchase option -> (share of GPU-months, average GPUs)."""
    if plan is None or not plan.gpus_by_kind_month:
        return {}
    totals = {k: sum(v) for k, v in plan.gpus_by_kind_month.items()}
    allv = sum(totals.values())
    months = max(1, len(plan.months))
    return {k: (totals[k] / allv if allv else 0.0, totals[k] / months) for k in KINDS if k in totals}


def _mark(row: Row, fmt_diff: str = "pct") -> Row:
    """Mark the best values and the differences against the first column."""
    values = [c.value for c in row.cells]
    present = [v for v in values if v is not None]
    if row.better and len(present) >= 2 and max(present) - min(present) > 1e-9 * max(1.0, abs(max(present))):
        best = min(present) if row.better == "lower" else max(present)
        for c in row.cells:
            c.best = c.value is not None and abs(c.value - best) <= 1e-9 * max(1.0, abs(best))
    first = values[0] if values else None
    for c in row.cells[1:]:
        if c.value is None or first is None:
            c.differs = c.value != first
            continue
        delta = c.value - first
        c.differs = abs(delta) > 1e-9 * max(1.0, abs(first))
        if not c.differs:
            c.diff = "same" if fmt_diff else ""
            continue
        if fmt_diff == "pct":
            if abs(first) < 1e-9:
                continue
            pct = delta / abs(first) * 100
            c.diff = f"{'+' if pct > 0 else '−'}{abs(pct):,.1f} %"
        elif fmt_diff == "pp":
            c.diff = f"{'+' if delta > 0 else '−'}{abs(delta) * 100:,.0f} pp"
        if row.better:
            worse = delta > 0 if row.better == "lower" else delta < 0
            c.diff_class = "bad" if worse else "good"
    return row


def _money_row(key: str, label: str, cols: list[Column], get, better: str | None = "lower",
               help: str = "", note=None) -> Row:
    money = HELPERS["money"]
    cells = []
    for c in cols:
        v = _f(get(c.plan)) if c.solved else None
        cells.append(Cell(text=money(v), value=v, note=note(c.plan) if note and c.solved else ""))
    return _mark(Row(key=key, label=label, cells=cells, better=better, help=help))


def build_rows(cols: list[Column]) -> list[Row]:
    money, pct = HELPERS["money"], HELPERS["pct"]
    rows: list[Row] = []
    rows.append(Row(key="status", label="Plan", cells=[
        Cell(text=c.row.status, html_kind="plan", extra={"design": c.design, "row": c.row}) for c in cols]))
    rows.append(_money_row("total_cost", "Total cost", cols, lambda p: p.total_cost,
                           help="Nominal USD over the horizon, commitments for their full term.",
                           note=lambda p: f"{len(p.months)} months"))
    rows.append(_money_row("npv", "NPV", cols, lambda p: p.npv,
                           help="Present value of the cash flows at each design's discount rate.",
                           note=lambda p: f"at {p.discount_rate_annual * 100:.1f} %/year"))
    rows.append(_money_row("run_rate", "Monthly run-rate", cols, lambda p: p.monthly_run_rate,
                           help="Average cost per month in the horizon."))
    gap_cells = []
    for c in cols:
        v = round(_f(c.plan.gap), 4) if c.solved and _f(c.plan.gap) is not None else None  # as shown: 0.01 %
        gap_cells.append(Cell(text=pct(v, 2, 100) if v is not None else "—", value=v))
    rows.append(_mark(Row(key="gap", label="Optimality gap", cells=gap_cells, better="lower",
                          help="How far the plan may be from the proven optimum (0 % = optimal)."), fmt_diff=""))

    def saving(key: str):
        def get(p: Plan) -> float | None:
            s = p.savings.get(key) if key != "best" else (p.savings.get(p.best_single_strategy)
                                                             if p.best_single_strategy else None)
            return s.get("usd") if s else None

        def note(p: Plan) -> str:
            s = p.savings.get(key) if key != "best" else (p.savings.get(p.best_single_strategy)
                                                             if p.best_single_strategy else None)
            return f"{s['pct']:.1f} % less" if s and s.get("pct") is not None else "no baseline"
        return get, note

    get, note = saving("all_on_demand")
    rows.append(_money_row("savings_od", "Saves against all on-demand", cols, get, better="higher",
                           help="All on-demand baseline minus this plan.", note=note))
    best_cells = []
    for c in cols:
        p = c.plan
        if c.solved and p.best_single_strategy:
            label = BASELINE_LABELS.get(p.best_single_strategy, p.best_single_strategy.replace("_", " "))
            best_cells.append(Cell(text=label, note=money(p.baselines.get(p.best_single_strategy))))
        else:
            best_cells.append(Cell(text="—"))
    first = best_cells[0].text if best_cells else ""
    for cell in best_cells[1:]:
        cell.differs = cell.text != first
    rows.append(Row(key="best_single", label="Best single strategy", cells=best_cells,
                    help="The cheapest plan that uses one purchase option only."))
    get, note = saving("best")
    rows.append(_money_row("savings_best", "Saves against the best single strategy", cols, get, better="higher",
                           note=note))
    mixes = [_mix(c.plan) if c.solved else {} for c in cols]
    for k in KINDS:
        if not any(k in m for m in mixes):
            continue
        cells = []
        for m in mixes:
            share, avg = m.get(k, (0.0, 0.0))
            cells.append(Cell(text=f"{share * 100:.0f} %", value=share, note=f"avg {avg:,.1f} GPUs"))
        for cell, c in zip(cells, cols, strict=True):
            if not c.solved:
                cell.text, cell.value, cell.note = "—", None, ""
        row = _mark(Row(key=f"mix_{k}", label=KIND_LABELS.get(k, k), cells=cells, group="mix",
                        help="Share of GPU-months bought this way."), fmt_diff="pp")
        rows.append(row)
    horizon = [Cell(text=f"{c.plan.months[0]} – {c.plan.months[-1]}" if c.plan and c.plan.months else "—")
               for c in cols]
    for cell in horizon[1:]:
        cell.differs = cell.text != horizon[0].text
    rows.append(Row(key="horizon", label="Horizon", cells=horizon))
    snaps = [Cell(text=c.row.snapshot_id, html_kind="snapshot") for c in cols]
    for cell in snaps[1:]:
        cell.differs = cell.text != snaps[0].text
    rows.append(Row(key="snapshot", label="Price snapshot", cells=snaps,
                    help="Plans priced from different snapshots are not like for like."))
    return rows


def _cumulative(values: list[float]) -> list[float]:
    out, acc = [], 0.0
    for v in values:
        acc += v
        out.append(round(acc, 2))
    return out


def chart_data(cols: list[Column]) -> dict[str, Any]:
    months = sorted({m for c in cols if c.solved for m in c.plan.months})
    series = []
    for i, c in enumerate(cols):
        if not c.solved:
            continue
        by_month = dict(zip(c.plan.months, c.plan.cost_by_month, strict=False))
        cum = dict(zip(c.plan.months, _cumulative(c.plan.cost_by_month), strict=False))
        series.append({"index": i, "label": c.design.name,
                       "monthly": [by_month.get(m) for m in months],
                       "cumulative": [cum.get(m) for m in months]})
    return {"months": months, "series": series}


# --------------------------------------------------------------------------- page


def _render(request: Request, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    return templates.TemplateResponse(request, "compare/compare.html",
                                      {"active": "compare", **HELPERS, "kind_labels": KIND_LABELS, **context},
                                      status_code=status)


def _latest_plan(session: Session, design: Design) -> PlanRow | None:
    latest = svc.list_plans(session, design.id, limit=1)
    return svc.get_plan(session, design.id, latest[0].id) if latest else None


@router.get("/compare", response_class=HTMLResponse)
def compare(request: Request, session: SessionDep, web: PageUser,
            ids: Annotated[list[str], Query()] = []):  # noqa: B006
    ws = web.workspace
    acc.require_role(session, web.principal, ws.id)
    designs = svc.list_designs(session, ws.id)
    planned = [d for d in designs if d.last_plan is not None]
    unplanned = [d for d in designs if d.last_plan is None]
    ctx: dict[str, Any] = {"planned": planned, "unplanned": unplanned, "selected": [], "errors": [],
                           "can_edit": web.can("editor"),
                           "columns": [], "rows": [], "chart": None, "min": MIN_DESIGNS, "max": MAX_DESIGNS}
    if not ids:
        return _render(request, ctx)

    wanted: list[int] = []
    errors: list[str] = []
    for raw in ids:
        if raw.isdigit() and len(raw) < 12:
            if int(raw) not in wanted:
                wanted.append(int(raw))
        elif raw.strip():
            errors.append(f"“{raw[:40]}” is not a design number.")
    ctx["selected"] = wanted
    if not errors and not MIN_DESIGNS <= len(wanted) <= MAX_DESIGNS:
        errors.append(f"Choose between {MIN_DESIGNS} and {MAX_DESIGNS} designs to compare "
                      f"(you chose {len(wanted)}).")
    if errors:
        ctx["errors"] = errors
        return _render(request, ctx, status=422)

    cols: list[Column] = []
    for did in wanted:
        try:
            design = access.design_for(session, web.principal, did)
        except acc.NotFound:
            design = None
        if design is None:
            return templates.TemplateResponse(request, "designs/not_found.html",
                                              {"active": "compare", "what": "design"}, status_code=404)
        row = _latest_plan(session, design)
        if row is None:
            errors.append(f"“{design.name}” has no plan yet: open it and press Plan first.")
            continue
        try:
            plan = Plan.model_validate(row.result)
        except ValidationError:
            log.warning("stored plan %s does not validate; compared without figures", row.id)
            plan = None
        cols.append(Column(design=design, row=row, plan=plan))
    if errors:
        ctx["errors"] = errors
        return _render(request, ctx, status=422)

    ctx.update(columns=cols, rows=build_rows(cols), chart=chart_data(cols),
               unsolved=[c for c in cols if not c.solved])
    return _render(request, ctx)
