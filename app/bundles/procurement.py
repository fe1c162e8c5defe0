"""The purchase schedule as procurement tools read it: CSV and JSON with the same rows."""

from __future__ import annotations

import csv
import io
import json

from app.planner.plan import Plan

COLUMNS = ["provider", "region", "item", "quantity", "purchase_option", "term_months",
           "payment_option", "purchase_month", "upfront_usd", "monthly_usd", "total_usd"]


def schedule_rows(plan: Plan) -> list[dict]:
    """One row per purchase (reservations, servers) and per pay-per-use line."""
    rows = []
    for s in plan.schedule:
        rows.append({
            "provider": s.provider, "region": s.region, "item": s.item, "quantity": s.quantity,
            "purchase_option": s.kind, "term_months": s.term_months,
            "payment_option": s.payment_option or ("capex" if s.kind == "private" else ""),
            "purchase_month": s.purchase_month, "upfront_usd": round(s.upfront_usd * s.quantity, 2),
            "monthly_usd": round(s.monthly_usd * s.quantity, 2), "total_usd": s.total_usd,
        })
    months = len(plan.months) or 1
    for u in plan.usage:
        first = next((plan.months[i] for i, h in enumerate(u.gpu_hours_by_month) if h > 0), plan.months[0] if plan.months else "")
        rows.append({
            "provider": u.provider, "region": u.region, "item": u.item,
            "quantity": round(u.instance_hours, 2), "purchase_option": u.kind, "term_months": 0,
            "payment_option": "per instance-hour", "purchase_month": first, "upfront_usd": 0.0,
            "monthly_usd": round(u.cost_usd / months, 2), "total_usd": u.cost_usd,
        })
    return rows


def schedule_csv(plan: Plan) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in schedule_rows(plan):
        writer.writerow(row)
    return buf.getvalue()


def schedule_json(plan: Plan, *, plan_id: str) -> str:
    return json.dumps({"plan_id": plan_id, "snapshot_id": plan.snapshot_id, "currency": "USD",
                       "columns": COLUMNS, "rows": schedule_rows(plan)}, indent=2, sort_keys=True) + "\n"
