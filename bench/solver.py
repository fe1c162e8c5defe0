"""Solver benchmarks: requirements → plan on the bundled catalog, timed end to end.

Run with ``make bench`` (writes ``docs/benchmarks.md``) or
``.venv/bin/python bench/solver.py --quick`` for a smaller grid.

Each case builds a spec with 1–5 demand classes over 12–60 months, plans it against a few
offerings (one provider) or the whole bundled catalog, with and without dominance pruning,
with HiGHS and CBC, and records the median of several runs of: building the options and
the model, solving, and end to end (what ``make_plan`` without baselines does).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.catalog import load_snapshot  # noqa: E402
from app.planner.build import build_problem  # noqa: E402
from app.planner.options import PlannerSettings  # noqa: E402
from app.planner.solver import solve  # noqa: E402
from app.requirements.spec import WorkloadSpec  # noqa: E402

CLASS_TEMPLATES = [
    ("training", {"name": "pretrain", "reference_gpu": "H100", "gpu_hours": 40000, "deadline_days": 20,
                  "checkpointable": True, "min_gpu_memory_gb": 80, "interconnect": "multi_node"}),
    ("inference", {"name": "chat", "reference_gpu": "L4", "always_on_gpus": 6}),
    ("training", {"name": "finetune", "reference_gpu": "A100-80GB", "gpu_hours": 3000, "deadline_days": 7,
                  "checkpointable": False, "min_gpu_memory_gb": 40}),
    ("inference", {"name": "batch", "reference_gpu": "L4", "requests_per_second": 40, "per_gpu_rps": 5,
                   "mode": "batch", "interruptible": True, "duty_cycle": 0.5}),
    ("training", {"name": "vision", "reference_gpu": "L40S", "gpu_hours": 2000, "deadline_days": 14,
                  "checkpointable": True}),
]


def make_spec(classes: int, months: int) -> WorkloadSpec:
    training, inference = [], []
    for kind, tpl in CLASS_TEMPLATES[:classes]:
        (training if kind == "training" else inference).append(dict(tpl))
    return WorkloadSpec.model_validate({
        "schema_version": "1", "name": f"bench-{classes}c-{months}m",
        "lifecycle": {"start_month": "2027-01", "horizon_months": months,
                      "retraining_cadence": {"kind": "quarterly"}},
        "scale": {"inference_growth_pct_per_year": 40},
        "performance": {"training": training, "inference": inference},
    })


def run_case(snapshot, spec, *, providers, prune, solver, repeats, time_limit):
    settings = PlannerSettings(providers=providers, prune=prune, solver=solver, gap=1e-4, time_limit_s=time_limit)
    builds, solves, totals, result, built = [], [], [], None, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        built = build_problem(spec, snapshot, settings)
        t1 = time.perf_counter()
        result = solve(built.problem, solver=solver, gap=1e-4, time_limit=time_limit)
        t2 = time.perf_counter()
        builds.append(t1 - t0 + result.build_seconds)
        solves.append(result.solve_seconds)
        totals.append(t2 - t0)
        if result.status != "optimal":
            break  # stopped by the time limit: one run says enough
    return {
        "options": len(built.problem.options), "considered": built.options.considered,
        "status": result.status, "gap": result.gap, "objective": result.objective,
        "vars": result.stats.variables if result.stats else None,
        "ints": result.stats.integer_variables if result.stats else None,
        "build": statistics.median(builds), "solve": statistics.median(solves),
        "total": statistics.median(totals),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write", type=Path, help="Markdown file to write the results to.")
    ap.add_argument("--quick", action="store_true", help="Smaller grid, one repeat.")
    ap.add_argument("--time-limit", type=float, default=60.0, help="Solver time limit per solve (s).")
    args = ap.parse_args()
    snapshot = load_snapshot()
    repeats = 1 if args.quick else 3
    grid = []
    for months in ((12, 60) if args.quick else (12, 36, 60)):
        for classes in ((1, 3) if args.quick else (1, 3, 5)):
            for scope, providers in (("few (Lambda)", ["lambda"]), ("whole catalog", None)):
                grid.append((months, classes, scope, providers, True, "highs"))
    grid += [(60, 3, "whole catalog", None, True, "cbc"),
             (60, 3, "whole catalog", None, False, "highs"),
             (60, 3, "whole catalog", None, False, "cbc")]
    rows = []
    for months, classes, scope, providers, prune, solver in grid:
        spec = make_spec(classes, months)
        r = run_case(snapshot, spec, providers=providers, prune=prune, solver=solver,
                     repeats=1 if not prune else repeats, time_limit=args.time_limit)
        rows.append((months, classes, scope, prune, solver, r))
        print(f"{months:>3} mo {classes} cls {scope:<14} prune={prune!s:<5} {solver:<5} "
              f"options {r['options']:>5}/{r['considered']:<5} {r['status']:<8} "
              f"build {r['build']:.2f}s solve {r['solve']:.2f}s total {r['total']:.2f}s", flush=True)
    if args.write:
        write_markdown(args.write, rows, args.time_limit)


def write_markdown(path: Path, rows, time_limit: float) -> None:
    target = next(r for m, c, s, p, sv, r in rows if (m, c, s, p, sv) == (60, 3, "whole catalog", True, "highs"))
    unpruned_cbc = next(r for m, c, s, p, sv, r in rows if (m, c, s, p, sv) == (60, 3, "whole catalog", False, "cbc"))
    lines = [
        "# Benchmarks",
        "",
        "## Solver (`make bench`, `bench/solver.py`)",
        "",
        f"Measured {date.today().isoformat()} on {platform.machine()} with {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; median of 3 runs (1 run without pruning). "
        "End to end = options from the catalog, dominance pruning, model build, solve "
        "(what `make_plan` does before reporting, without baselines). Gap target 0.01 %; "
        f"solver time limit {time_limit:g} s per solve (a case stopped by it reports `feasible` "
        "with the gap reached, and runs once).",
        "",
        "| months | classes | offerings | pruning | solver | options in model / considered | integer vars | status | gap | build s | solve s | end to end s |",
        "|---:|---:|---|---|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    for months, classes, scope, prune, solver, r in rows:
        gap = "—" if r["gap"] is None else f"{r['gap']:.2e}"
        lines.append(f"| {months} | {classes} | {scope} | {'yes' if prune else 'no'} | {solver} | "
                     f"{r['options']} / {r['considered']} | {r['ints']} | {r['status']} | {gap} | "
                     f"{r['build']:.3f} | {r['solve']:.3f} | {r['total']:.3f} |")
    speedup = unpruned_cbc["total"] / target["total"] if target["total"] else float("nan")
    lines += [
        "",
        f"**Target case** (whole catalog, 60 months, 3 classes, HiGHS, pruning): "
        f"{target['status']}, gap {target['gap'] or 0:.2e}, median end to end **{target['total']:.2f} s** "
        f"(target ≤ 2 s). Without pruning on CBC: {unpruned_cbc['total']:.2f} s — "
        f"**{speedup:.1f}×** slower (target ≥ 10×; both figures are capped by the time limit "
        "when a case does not finish).",
        "",
    ]
    old = path.read_text() if path.exists() else ""
    marker = "## Solver (`make bench`"
    rest = ""
    if marker in old:
        after = old.split(marker, 1)[1]
        nxt = after.find("\n## ")
        rest = after[nxt:] if nxt >= 0 else ""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + rest)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
