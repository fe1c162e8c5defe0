"""The architecture diagram of a planned design, as Mermaid flowchart source.

:func:`architecture_mermaid` is a pure function — spec and plan in, text out — drawn in the
browser by ``static/js/plan-diagram.js`` (Mermaid with ``securityLevel: 'strict'``). The
design's parts are grouped in subgraphs: data sources, their data quality checks, the
pipeline stages (with their ``depends_on`` edges), training runs, serving, storage, the
orchestrator, and the compute the plan chose (provider, region, capacity type, instance or
server, GPUs and counts).

Every piece of text from the spec or the plan goes through :func:`mermaid_text`, which
turns it into one line and replaces every character Mermaid (or the HTML label it becomes)
could read as syntax by a Mermaid entity code (``#35;`` for ``#``, ``#quot;`` for ``"``…).
Node ids are generated (``src1``, ``st2``…), never taken from user text, and each group
shows at most :data:`MAX_NODES` nodes.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Literal

from app.planner.plan import Plan
from app.requirements.spec import WorkloadSpec

__all__ = ["MAX_NODES", "architecture_mermaid", "mermaid_text"]

MAX_NODES = 12
MAX_PIECE = 80
HOURS_PER_MONTH = 730.0

#: Characters replaced by Mermaid entity codes (decimal, or the names Mermaid knows).
_ENTITIES = {
    "#": "#35;", '"': "#quot;", "'": "#39;", "`": "#96;", ";": "#59;", ":": "#58;", "%": "#37;",
    "&": "#amp;", "<": "#lt;", ">": "#gt;", "[": "#91;", "]": "#93;", "(": "#40;", ")": "#41;",
    "{": "#123;", "}": "#125;", "|": "#124;", "\\": "#92;", "=": "#61;", "~": "#126;", "*": "#42;",
    "_": "#95;", "$": "#36;", "@": "#64;", "^": "#94;",
}

PROVIDERS = {"aws": "AWS", "gcp": "Google Cloud", "azure": "Azure", "lambda": "Lambda"}
KINDS = {"reserved": "Reserved", "private": "Own servers", "on_demand": "On-demand", "spot": "Spot"}
KIND_ORDER = {"reserved": 0, "private": 1, "on_demand": 2, "spot": 3}
SHAPES = {"box": ("[", "]"), "rounded": ("(", ")"), "stadium": ("([", "])"), "cylinder": ("[(", ")]"),
          "hexagon": ("{{", "}}"), "subroutine": ("[[", "]]")}


def mermaid_text(value: object, max_chars: int = MAX_PIECE) -> str:
    """``value`` as inert text inside a quoted Mermaid label: one line, at most
    ``max_chars`` characters (before escaping), syntax characters as entity codes."""
    text = " ".join(str(value).split())
    text = "".join(ch for ch in text if ch.isprintable())
    if len(text) > max_chars:
        text = text[: max_chars - 1].rstrip() + "…"
    return "".join(_ENTITIES.get(ch, ch) for ch in text)


def _label(*lines: object, bold_first: bool = True) -> str:
    """A quoted label; the first line in bold; empty lines left out."""
    parts = [mermaid_text(x) for x in lines if x not in (None, "")]
    if bold_first and parts:
        parts[0] = f"<b>{parts[0]}</b>"
    return '"' + "<br/>".join(parts) + '"'


def _num(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() or abs(value) >= 100 else f"{value:,.1f}"


@dataclass
class _Graph:
    direction: str = "LR"
    lines: list[str] = field(default_factory=list)
    groups: set[str] = field(default_factory=set)
    edges: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lines.append(f"flowchart {self.direction}")

    def group(self, gid: str, title: str, nodes: list[tuple[str, str]], more: int = 0, shape: str = "box") -> None:
        if not nodes:
            return
        self.groups.add(gid)
        self.lines.append(f'  subgraph {gid} ["{mermaid_text(title)}"]')
        # Nodes of a group without edges between them stack vertically rather than widening
        # the page (Mermaid ignores this in groups with edges to outside nodes).
        self.lines.append("    direction LR")
        left, right = SHAPES[shape]
        for nid, label in nodes:
            self.lines.append(f"    {nid}{left}{label}{right}")
        if more:
            self.lines.append(f'    {gid}_more["+ {more} more"]')
        self.lines.append("  end")

    def edge(self, a: str, b: str, arrow: str = "-->", text: str | None = None) -> None:
        label = f'|"{mermaid_text(text)}"|' if text else ""
        self.edges.append(f"  {a} {arrow}{label} {b}")


def _quality_lines(q) -> list[str]:
    out = []
    if q.completeness_min_pct is not None:
        out.append(f"completeness ≥ {_num(q.completeness_min_pct)} %")
    if q.freshness_max_hours is not None:
        out.append(f"fresher than {_num(q.freshness_max_hours)} h")
    if q.row_count_min is not None:
        out.append(f"at least {q.row_count_min:,} rows")
    if q.columns:
        out.append(f"{len(q.columns)} column check{'s' if len(q.columns) != 1 else ''}")
    return out or ["schema checks"]


def _compute(plan: Plan) -> list[tuple[tuple, list[str]]]:
    """(sort key, label lines) per (capacity type, provider, region, item) the plan uses."""
    T = max(len(plan.months), 1)
    committed: dict[tuple, list[int]] = {}
    bought: dict[tuple, int] = defaultdict(int)
    terms: dict[tuple, set[int]] = defaultdict(set)
    info: dict[tuple, tuple[str, float]] = {}
    for s in plan.schedule:
        key = (s.kind, s.provider, s.region, s.item)
        info[key] = (s.gpu_model, s.gpus_per_unit)
        bought[key] += s.quantity
        terms[key].add(s.term_months)
        held = committed.setdefault(key, [0] * T)
        start = s.purchase_period + s.lead_time_months
        for t in range(max(0, start), min(T, start + s.term_months)):
            held[t] += s.quantity
    out: list[tuple[tuple, list[str]]] = []
    for key, held in committed.items():
        kind, provider, region, item = key
        gpu_model, per_unit = info[key]
        peak = max(held) if held else 0
        if kind == "private":
            head = f"Own servers · {region}"
            count = f"{bought[key]:,} server{'s' if bought[key] != 1 else ''} bought"
        else:
            head = f"{PROVIDERS.get(provider, provider)} · {region}"
            term = "/".join(str(m) for m in sorted(terms[key]))
            count = f"up to {peak:,} reserved at once ({term}-month term)"
        out.append(((KIND_ORDER.get(kind, 9), provider, region, item),
                    [head, f"{KINDS.get(kind, kind)} · {item}", f"{_num(per_unit)}× {gpu_model} each", count]))
    usage: dict[tuple, list] = {}
    for u in plan.usage:
        key = (u.kind, u.provider, u.region, u.item)
        agg = usage.setdefault(key, [u.gpu_model, u.gpus_per_unit, 0.0, [0.0] * T])
        agg[2] += u.instance_hours
        for t, gh in enumerate(u.gpu_hours_by_month[:T]):
            agg[3][t] += gh
    for key, (gpu_model, per_unit, hours, gpu_hours) in usage.items():
        kind, provider, region, item = key
        busiest = math.ceil(max(gpu_hours or [0.0]) / HOURS_PER_MONTH / max(per_unit, 1e-9) - 1e-9)
        out.append(((KIND_ORDER.get(kind, 9), provider, region, item), [
            f"{PROVIDERS.get(provider, provider)} · {region}", f"{KINDS.get(kind, kind)} · {item}",
            f"{_num(per_unit)}× {gpu_model} each",
            f"{_num(round(hours))} instance-hours, ≈ {max(busiest, 1):,} running in the busiest month",
        ]))
    out.sort(key=lambda x: x[0])
    return out


def architecture_mermaid(spec: WorkloadSpec, plan: Plan, direction: Literal["LR", "TB"] = "LR") -> str:
    """Mermaid ``flowchart`` source of the design's architecture with the plan's compute:
    left to right (``LR``, wide screens) or top to bottom (``TB``, narrow ones)."""
    if direction not in ("LR", "TB"):
        raise ValueError(f"direction must be LR or TB, not {direction!r}")
    arch = spec.architecture
    g = _Graph(direction)

    sources = arch.data_sources[:MAX_NODES]
    src_ids = {s.name: f"src{i}" for i, s in enumerate(sources, 1)}
    g.group("g_sources", "Data sources", [
        (src_ids[s.name], _label(
            s.name, f"{s.kind} · {s.format} · {_num(s.size_gb)} GB"
            + (f" (+{_num(s.growth_gb_per_month)} GB/month)" if s.growth_gb_per_month else ""),
            s.location, f"jurisdiction {s.jurisdiction}" if s.jurisdiction else None,
            "personal data" if s.contains_personal_data else None))
        for s in sources], max(0, len(arch.data_sources) - MAX_NODES), shape="cylinder")

    checked = [s for s in arch.data_sources if s.quality is not None]
    dq_ids = {s.name: f"dq{i}" for i, s in enumerate(checked[:MAX_NODES], 1)}
    g.group("g_quality", "Data quality checks", [
        (dq_ids[s.name], _label(f"{s.name} checks", *_quality_lines(s.quality))) for s in checked[:MAX_NODES]
    ], max(0, len(checked) - MAX_NODES), shape="hexagon")
    for name, dq in dq_ids.items():
        if name in src_ids:
            g.edge(src_ids[name], dq, "-.->")

    runs = spec.performance.training[:MAX_NODES]
    run_ids = {r.name: f"tr{i}" for i, r in enumerate(runs, 1)}
    cadence = spec.lifecycle.retraining_cadence

    def _cadence(r) -> str | None:
        c = r.retraining_cadence or cadence
        if c.kind == "once":
            return "runs once"
        return f"every {c.n} months" if c.kind == "every_n_months" else f"retrained {c.kind}"

    g.group("g_training", "Training", [
        (run_ids[r.name], _label(
            r.name, f"{r.reference_gpu} reference · {_num(r.deadline_days)}-day deadline",
            "multi-node" if r.interconnect == "multi_node" else None,
            "checkpointable" if r.checkpointable else "not checkpointable", _cadence(r)))
        for r in runs], max(0, len(spec.performance.training) - MAX_NODES))

    serving_cfg = {c.service: c for c in arch.serving}
    services = spec.performance.inference[:MAX_NODES]
    svc_ids = {s.name: f"sv{i}" for i, s in enumerate(services, 1)}

    def _serving(s) -> list[str | None]:
        c = serving_cfg.get(s.name)
        lines: list[str | None] = [s.name, f"{s.reference_gpu} reference · {s.mode.replace('_', '-')}"]
        if c is not None:
            a = c.autoscaling
            lines.append(f"{c.framework} · {a.min_replicas}–{a.max_replicas} replicas")
        return lines

    g.group("g_serving", "Serving", [(svc_ids[s.name], _label(*_serving(s))) for s in services],
            max(0, len(spec.performance.inference) - MAX_NODES), shape="rounded")

    stages = arch.pipeline.stages[:MAX_NODES]
    st_ids = {s.name: f"st{i}" for i, s in enumerate(stages, 1)}
    g.group("g_pipeline", "Pipeline stages", [
        (st_ids[s.name], _label(s.name, s.kind)) for s in stages
    ], max(0, len(arch.pipeline.stages) - MAX_NODES), shape="stadium")
    for s in stages:
        for dep in s.depends_on:
            if dep in st_ids:
                g.edge(st_ids[dep], st_ids[s.name])
        if s.source and s.source in src_ids:
            if s.kind == "validate" and s.source in dq_ids:
                g.edge(dq_ids[s.source], st_ids[s.name], "-.->")
            elif s.kind == "ingest":
                g.edge(src_ids[s.source], st_ids[s.name])
        if s.training_run and s.training_run in run_ids:
            g.edge(st_ids[s.name], run_ids[s.training_run])
        if s.service and s.service in svc_ids:
            g.edge(st_ids[s.name], svc_ids[s.service])

    buckets = arch.storage[:MAX_NODES]
    g.group("g_storage", "Storage", [
        (f"bk{i}", _label(b.name, f"{b.purpose} · {b.storage_class.replace('_', ' ')}",
                          f"kept {b.retention_days} days" if b.retention_days else "kept indefinitely",
                          "versioned" if b.versioning else None))
        for i, b in enumerate(buckets, 1)
    ], max(0, len(arch.storage) - MAX_NODES), shape="cylinder")

    o = arch.orchestrator
    g.group("g_orchestration", "Orchestration", [("orch", _label(
        f"{o.kind.capitalize()} DAG", spec.name, f"schedule {o.schedule}" if o.schedule else "triggered by hand",
        f"{o.retries} retr{'ies' if o.retries != 1 else 'y'} per task"))], shape="subroutine")

    compute = _compute(plan)
    nodes = [(f"cp{i}", _label(*lines)) for i, (_key, lines) in enumerate(compute[:MAX_NODES], 1)]
    if not nodes:
        nodes = [("cp0", _label("No GPU capacity", "the requirements create no GPU demand"))]
    g.group("g_compute", "Compute (this plan)", nodes, max(0, len(compute) - MAX_NODES))

    if "g_pipeline" in g.groups:
        g.edge("orch", "g_pipeline", "-.->", "schedules")
        if "g_storage" in g.groups:
            g.edge("g_pipeline", "g_storage", "<-.->", "reads and writes")
    for gid in ("g_training", "g_serving"):
        if gid in g.groups:
            g.edge(gid, "g_compute", "==>", "runs on")
    return "\n".join(g.lines + g.edges) + "\n"
