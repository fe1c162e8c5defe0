"""2-4 plans side by side: the headline figures as numbers, the best of each marked, and each
plan's difference against the first.

The same figures as the comparison page (total cost, NPV, run-rate, gap, savings against the
all on-demand baseline and against the best single strategy, the purchase mix), without any
formatting: the REST API returns them as they are, a page formats them for people. No
FastAPI and no database here: callers load the plans (checking access) and pass them in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from app.planner.plan import Plan

__all__ = [
    "KINDS",
    "MAX_PLANS",
    "MIN_PLANS",
    "Figure",
    "compare_figures",
    "is_solved",
    "purchase_mix",
]

MIN_PLANS, MAX_PLANS = 2, 4
KINDS = ("reserved", "private", "on_demand", "spot")
Better = Literal["lower", "higher"]


@dataclass
class Figure:
    key: str
    label: str
    unit: Literal["usd", "ratio"]
    better: Better | None
    values: list[float | None]
    difference: list[float | None] = field(default_factory=list)
    difference_pct: list[float | None] = field(default_factory=list)
    best: list[int] = field(default_factory=list)


def _f(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def is_solved(plan: Plan | None) -> bool:
    return plan is not None and plan.status in ("optimal", "feasible") and _f(plan.total_cost) is not None


def purchase_mix(plan: Plan | None) -> dict[str, float]:
    """Purchase option -> share of the plan's GPU-months (0-1)."""
    if plan is None or not plan.gpus_by_kind_month:
        return {}
    totals = {k: sum(v) for k, v in plan.gpus_by_kind_month.items()}
    every = sum(totals.values())
    return {k: (totals[k] / every if every else 0.0) for k in KINDS if k in totals}


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def _mark(fig: Figure) -> Figure:
    values = fig.values
    present = [v for v in values if v is not None]
    if fig.better and len(present) >= 2 and not _close(max(present), min(present)):
        target = min(present) if fig.better == "lower" else max(present)
        fig.best = [i for i, v in enumerate(values) if v is not None and _close(v, target)]
    first = values[0] if values else None
    fig.difference, fig.difference_pct = [], []
    for v in values:
        if v is None or first is None:
            fig.difference.append(None)
            fig.difference_pct.append(None)
            continue
        delta = round(v - first, 6)
        fig.difference.append(delta)
        fig.difference_pct.append(round(delta / abs(first) * 100, 4) if abs(first) > 1e-9 else None)
    return fig


def _saving(plan: Plan, baseline: str | None) -> float | None:
    entry = plan.savings.get(baseline) if baseline else None
    return _f(entry.get("usd")) if entry else None


def compare_figures(plans: Sequence[Plan | None]) -> list[Figure]:
    """The figures of ``plans`` (None: a stored plan that could not be read), first plan as reference."""
    solved = [is_solved(p) for p in plans]

    def row(key: str, label: str, get: Callable[[Plan], float | None], unit: Literal["usd", "ratio"] = "usd",
            better: Better | None = "lower") -> Figure:
        values = [_f(get(p)) if ok and p is not None else None for p, ok in zip(plans, solved, strict=True)]
        return _mark(Figure(key=key, label=label, unit=unit, better=better, values=values))

    figures = [
        row("total_cost", "Total cost", lambda p: p.total_cost),
        row("npv", "NPV", lambda p: p.npv),
        row("monthly_run_rate", "Monthly run-rate", lambda p: p.monthly_run_rate),
        row("gap", "Optimality gap", lambda p: p.gap, unit="ratio"),
        row("savings_vs_all_on_demand", "Saves against all on-demand",
            lambda p: _saving(p, "all_on_demand"), better="higher"),
        row("savings_vs_best_single_strategy", "Saves against the best single strategy",
            lambda p: _saving(p, p.best_single_strategy), better="higher"),
    ]
    mixes = [purchase_mix(p) if ok else {} for p, ok in zip(plans, solved, strict=True)]
    for kind in KINDS:
        if any(kind in m for m in mixes):
            values = [m.get(kind, 0.0) if ok else None for m, ok in zip(mixes, solved, strict=True)]
            figures.append(_mark(Figure(key=f"share_{kind}", label=f"Share of GPU-months: {kind.replace('_', '-')}",
                                        unit="ratio", better=None, values=values)))
    return figures
