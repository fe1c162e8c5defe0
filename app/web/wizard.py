"""The requirement wizard: a WorkloadSpec as a guided form, validated and estimated live.

Routes
======
* ``GET  /designs/new/wizard`` (``?example=<name>`` to start from a bundled example) and
  ``POST /designs/new/wizard`` — create a design from the form (303 to the design page)
* ``GET  /designs/{id}/wizard`` and ``POST /designs/{id}/wizard`` — edit a design's spec
* ``POST /designs/wizard/validate`` — the errors fragment (htmx, on input)
* ``POST /designs/wizard/estimate`` — the live estimate panel (htmx, on input)
* ``POST /designs/wizard/rows`` — add or remove a row of a repeatable group (the group's
  fragment, for htmx). Without JavaScript the row buttons post the form to the save URL
  with ``_op``, which re-renders the page with the change and saves nothing.

Form fields are named by their path in the spec (``performance.training[0].deadline_days``),
so validation issues map to fields directly; an issue on something that is not a field
(a row, a group, the document) goes to the nearest container, or to the summary. The
same :class:`WorkloadSpec` validation runs as for the YAML editor, the API and the CLI.

Values the form does not show — data-quality rules of data sources and free-form stage
options — travel in a hidden ``_carry`` field (JSON) and are merged back by name.

Access: signed-in users only. A new design goes into the current workspace, an edited one
stays in its own; both need the role ``editor`` there (viewers get 403). Every POST carries
the CSRF token (form field, or the header htmx sends).
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, get_args

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, ValidationError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from app.auth import CSRF_HEADER, WebUser
from app.jurisdictions import Jurisdiction
from app.models import Design
from app.requirements.examples import load_example
from app.requirements.spec import (
    DataFormat,
    DataSource,
    Framework,
    InferenceService,
    Lifecycle,
    ServingFramework,
    SpecIssue,
    StageKind,
    StorageClass,
    TrainingRun,
    WorkloadSpec,
    issues_from_validation_error,
)
from app.services import access
from app.services import accounts as acc
from app.services import designs as svc
from app.services import estimate as est_svc
from app.web.deps import UNSAFE_METHODS, DbSession, PageUser, audit, form_guard
from app.web.designs import HELPERS
from app.web.templating import templates


async def _guard(request: Request) -> None:
    """The pages' guard (same origin, CSRF token). A form without the header is read first
    with the wizard's own limits (it has many fields), so the guard finds it parsed."""
    if request.method in UNSAFE_METHODS and CSRF_HEADER not in request.headers:
        await _form(request)
    await form_guard(request)


router = APIRouter(include_in_schema=False, dependencies=[Depends(_guard)])
log = logging.getLogger("archplan.web.wizard")

SessionDep = DbSession

MAX_FORM_FIELDS = 6000
MAX_VALUE_CHARS = 20_000
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _desc(model: type[BaseModel], name: str) -> str:
    """A field's description from the schema (one source of truth where it reads well)."""
    return (model.model_fields[name].description or "").rstrip(".") + "."


def _choices(values: Iterable[str], labels: dict[str, str] | None = None) -> tuple[tuple[str, str], ...]:
    labels = labels or {}
    return tuple((v, labels.get(v, v.replace("_", " "))) for v in values)


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class F:
    """One form field. ``key`` is its path inside the section (or inside a group's row)."""

    key: str
    label: str
    kind: str = "text"  # text textarea number int select check multi csv month gpu
    help: str = ""
    options: tuple[tuple[str, str], ...] = ()
    placeholder: str = ""
    scaled: bool = False  # numbers: accept k/M/B/T suffixes (7B = 7e9)
    blank_none: bool = False  # blank means null (not "use the default")
    int_items: bool = False  # multi: the values are integers
    dict_index: bool = False  # "[n]" in the name is a dict key, not a list index
    datalist: str | None = None
    wide: bool = False
    show_when: str | None = None  # "field.path=value": shown only then (JS; always shown without it)


@dataclass(frozen=True)
class Grid:
    fields: tuple[F, ...]
    legend: str | None = None
    help: str = ""
    path: str | None = None  # container path for errors (and its DOM id)
    show_when: str | None = None
    compact: bool = False


@dataclass(frozen=True)
class Group:
    path: str
    title: str
    item: str
    fields: tuple[F, ...]
    help: str = ""
    max_items: int = 100
    new_row: dict[str, Any] = field(default_factory=dict)
    name_key: str | None = "name"  # the field whose value titles a row, and the prefix of new names
    name_prefix: str = "item"


@dataclass(frozen=True)
class Section:
    id: str
    number: int
    title: str
    question: str
    intro: str
    blocks: tuple[Grid | Group, ...]


GPU_LIST = "gpu-models"
PRECISIONS = _choices(("bf16", "fp8"), {"bf16": "BF16", "fp8": "FP8"})
CADENCES = _choices(("once", "monthly", "quarterly", "yearly", "every_n_months"),
                    {"every_n_months": "every n months"})

TRAINING = Group(
    path="performance.training", title="Training runs", item="Training run", name_prefix="train",
    help="Jobs that must finish by a deadline, repeated at the retraining cadence. Size each run "
         "EITHER with GPU-hours OR with parameters × tokens (6·N·D FLOPs).",
    new_row={"reference_gpu": "H100", "deadline_days": "30", "interconnect": "none", "precision": "bf16",
             "checkpointable": "false"},
    fields=(
        F("name", "Name", help="Identifier used in the generated bundles: lowercase letters, digits and '-'."),
        F("reference_gpu", "Reference GPU", "gpu", datalist=GPU_LIST,
          help=_desc(TrainingRun, "reference_gpu") + " The planner may still buy any other eligible GPU; "
               "work converts by peak dense throughput."),
        F("gpu_hours", "GPU-hours per run", "number", placeholder="e.g. 1500",
          help=_desc(TrainingRun, "gpu_hours") + " Measured or from a pilot; cost grows linearly with it."),
        F("model_params", "Parameters (N)", "number", scaled=True, placeholder="e.g. 7B",
          help="Trainable parameters for 6·N·D sizing; 7B, 70B or 7e9 are accepted."),
        F("training_tokens", "Tokens per run (D)", "number", scaled=True, placeholder="e.g. 300B",
          help="Tokens processed per run; work = 6·N·D FLOPs at the reference GPU's peak × utilization."),
        F("utilization", "Utilization (MFU)", "number", placeholder="0.40",
          help="Model FLOPs utilization for 6·N·D sizing only, 0–1; blank = 0.40 (Llama 3 405B: "
               "38–43 % on H100). Lower utilization means more GPU-hours."),
        F("deadline_days", "Deadline (days)", "number",
          help="Each run must finish within this many days. Shorter deadlines need more GPUs at once "
               "(GPU-hours ÷ deadline hours), which raises the peak and can make commitments idle."),
        F("min_gpu_memory_gb", "Min. GPU memory (GB)", "number", placeholder="0",
          help="GPUs with less memory are not eligible."),
        F("interconnect", "Interconnect", "select",
          options=(("none", "single node"), ("multi_node", "multi-node fabric")),
          help="Multi-node runs need 8-GPU NVLink nodes with a fast fabric: fewer offerings qualify."),
        F("precision", "Precision", "select", options=PRECISIONS,
          help="Throughput figure used to size and convert the work; FP8 needs FP8-capable GPUs."),
        F("checkpointable", "Checkpointable (may run on spot)", "check",
          help=_desc(TrainingRun, "checkpointable") + " Spot is cheaper but adds the interruption overhead."),
        F("start_month", "First run", "month", placeholder="YYYY-MM",
          help="Month of the first run; blank = the horizon start."),
        F("retraining_cadence.kind", "Repeats", "select", options=(("", "as the lifecycle default"), *CADENCES),
          help="Overrides the lifecycle cadence for this run; each repeat adds the same work again."),
        F("retraining_cadence.n", "Every n months", "int", placeholder="n",
          help="Months between runs, only with “every n months”."),
    ),
)

INFERENCE = Group(
    path="performance.inference", title="Inference services", item="Inference service", name_prefix="serve",
    help="Model serving, sized EITHER as a fixed number of GPUs OR as requests/s ÷ requests/s per GPU; "
         "the load grows and varies as set under Scale.",
    new_row={"reference_gpu": "L4", "mode": "latency_bound", "precision": "bf16", "interruptible": "false"},
    fields=(
        F("name", "Name", help="Identifier used in the generated bundles: lowercase letters, digits and '-'."),
        F("reference_gpu", "Reference GPU", "gpu", datalist=GPU_LIST,
          help="GPU the throughput figures refer to; other GPUs are sized by peak throughput."),
        F("mode", "Mode", "select", options=(("latency_bound", "latency-bound (always on)"), ("batch", "batch")),
          help="Latency-bound services run on whole GPUs all the time and never on spot; batch services "
               "may run part-time and, if interruptible, on spot."),
        F("always_on_gpus", "Fixed GPUs", "int", placeholder="e.g. 4",
          help="Reference GPUs at go-live, before growth and seasonality."),
        F("requests_per_second", "Requests/s", "number", placeholder="e.g. 120",
          help=_desc(InferenceService, "requests_per_second") + " GPUs = ceil(requests/s ÷ requests/s per GPU)."),
        F("per_gpu_rps", "Requests/s per GPU", "number", placeholder="e.g. 45",
          help=_desc(InferenceService, "per_gpu_rps")),
        F("min_gpu_memory_gb", "Min. GPU memory (GB)", "number", placeholder="0",
          help="GPUs with less memory are not eligible."),
        F("precision", "Precision", "select", options=PRECISIONS, help="Throughput figure used to convert between GPUs."),
        F("duty_cycle", "Duty cycle", "number", placeholder="1",
          help=_desc(InferenceService, "duty_cycle") + " 0.25 = 6 h a day; cost scales with it."),
        F("interruptible", "Interruptible (may run on spot)", "check",
          help=_desc(InferenceService, "interruptible")),
        F("start_month", "Go-live", "month", placeholder="YYYY-MM",
          help=_desc(InferenceService, "start_month") + " Nothing is paid before it."),
    ),
)

SCALE_DOWN = Group(
    path="scale.scale_down", title="Scale-down steps", item="Step", name_key=None,
    help="From a month on, inference load is multiplied by a factor (the latest step in effect wins; "
         "steps are not cumulative). Load that falls makes long commitments idle.",
    max_items=60,
    fields=(
        F("from_month", "From month", "month", placeholder="YYYY-MM", help="First month of the step."),
        F("factor", "Load factor", "number", placeholder="e.g. 0.5", help="0 = off, 0.5 = half, 1 = unchanged."),
    ),
)

DATA_SOURCES = Group(
    path="architecture.data_sources", title="Data sources", item="Data source", name_prefix="source",
    help="Input data sets. They shape the generated pipeline and its data checks; they do not change the GPU plan. "
         "Data-quality rules already in the requirements are kept (edit them as YAML).",
    max_items=200,
    new_row={"kind": "private", "format": "parquet", "size_gb": "0", "contains_personal_data": "false"},
    fields=(
        F("name", "Name", help="Identifier: lowercase letters, digits and '-'."),
        F("kind", "Kind", "select", options=_choices(("public", "private"))),
        F("format", "Format", "select", options=_choices(get_args(DataFormat))),
        F("size_gb", "Size (GB)", "number", help=_desc(DataSource, "size_gb")),
        F("growth_gb_per_month", "Growth (GB/month)", "number", placeholder="0"),
        F("location", "Location", wide=True, placeholder="s3://bucket/prefix", help=_desc(DataSource, "location")),
        F("jurisdiction", "Jurisdiction", "select",
          options=(("", "not stated"), *_choices(get_args(Jurisdiction))),
          help="Where the data resides today. Private data must sit in an allowed jurisdiction."),
        F("contains_personal_data", "Contains personal data", "check"),
    ),
)

STAGES = Group(
    path="architecture.pipeline.stages", title="Pipeline stages", item="Stage", name_prefix="stage",
    help="Steps of the ML pipeline, run in dependency order (they become Airflow tasks). Link ingest/validate "
         "stages to a data source, train stages to a training run and deploy stages to a service.",
    max_items=200,
    new_row={"kind": "ingest"},
    fields=(
        F("name", "Name", help="Identifier: lowercase letters, digits and '-'."),
        F("kind", "Kind", "select", options=_choices(get_args(StageKind))),
        F("depends_on", "Depends on", "csv", placeholder="e.g. ingest-corpus",
          help="Names of earlier stages, comma-separated."),
        F("source", "Data source", datalist="source-names", help="Ingest and validate stages only."),
        F("training_run", "Training run", datalist="run-names", help="Train stages only."),
        F("service", "Service", datalist="service-names", help="Deploy stages only."),
    ),
)

STORAGE = Group(
    path="architecture.storage", title="Storage buckets", item="Bucket", name_prefix="bucket",
    help="Object-store locations the generated infrastructure creates.",
    new_row={"purpose": "other", "storage_class": "standard", "versioning": "false"},
    fields=(
        F("name", "Name", help="Identifier: lowercase letters, digits and '-'."),
        F("purpose", "Purpose", "select",
          options=_choices(("raw", "features", "checkpoints", "models", "logs", "other"))),
        F("storage_class", "Storage class", "select", options=_choices(get_args(StorageClass))),
        F("retention_days", "Retention (days)", "int", placeholder="keep forever"),
        F("versioning", "Versioning", "check"),
    ),
)

SERVING = Group(
    path="architecture.serving", title="Serving deployments", item="Deployment", name_key="service",
    help="How each inference service is deployed (Helm chart with autoscaling).",
    new_row={"framework": "vllm", "autoscaling.min_replicas": "1", "autoscaling.max_replicas": "1",
             "autoscaling.target_gpu_utilization_pct": "70"},
    fields=(
        F("service", "Service", datalist="service-names", help="Name of an inference service above."),
        F("framework", "Framework", "select", options=_choices(get_args(ServingFramework))),
        F("autoscaling.min_replicas", "Min. replicas", "int",
          help="0 lets a batch service scale to zero; latency-bound services need at least 1."),
        F("autoscaling.max_replicas", "Max. replicas", "int"),
        F("autoscaling.target_gpu_utilization_pct", "Target GPU utilization (%)", "number"),
    ),
)

SECTIONS: tuple[Section, ...] = (
    Section("performance", 1, "Performance", "What has to be computed?",
            "Training runs and inference services are the GPU demand. Everything else constrains how it is bought.",
            (TRAINING, INFERENCE)),
    Section("scale", 2, "Scale", "How does the load change?",
            "Growth, seasonal peaks, scale-down steps and retirement shape inference demand month by month; "
            "they decide whether committed capacity stays busy.",
            (
                Grid((
                    F("scale.inference_growth_pct_per_year", "Inference growth (% per year)", "number", placeholder="0",
                      help="Compound growth of inference load from each service's go-live. Growing load favours "
                           "short or staggered commitments."),
                    F("scale.retire_month", "Retire in", "month", placeholder="YYYY-MM",
                      help="First month with no demand at all; runs must finish before it. Commitments past it "
                           "are wasted, so long terms become unattractive."),
                )),
                Grid((
                    F("scale.seasonality.mode", "Seasonal pattern", "select",
                      options=(("none", "none"), ("peak", "peak months"), ("multipliers", "a factor per month")),
                      help="Month-of-year load multipliers for inference. Peaks are met with on-demand or extra capacity."),
                    F("scale.seasonality.peak_months", "Peak months", "multi",
                      options=tuple((str(i + 1), m) for i, m in enumerate(MONTHS)), int_items=True,
                      show_when="scale.seasonality.mode=peak", wide=True),
                    F("scale.seasonality.peak_factor", "Peak factor", "number", placeholder="e.g. 1.8",
                      help="Load multiplier in the peak months.", show_when="scale.seasonality.mode=peak"),
                ), legend="Seasonality", path="scale.seasonality"),
                Grid(tuple(F(f"scale.seasonality.multipliers[{i + 1}]", m, "number", placeholder="1", dict_index=True)
                           for i, m in enumerate(MONTHS)),
                     legend="Factor per month", help="Blank = 1.0 (no change in that month).",
                     path="scale.seasonality.multipliers", show_when="scale.seasonality.mode=multipliers",
                     compact=True),
                SCALE_DOWN,
            )),
    Section("lifecycle", 3, "Lifecycle", "Over which period, and how often is the model retrained?",
            "The horizon decides which commitments can pay off; the cadence repeats every training run.",
            (
                Grid((
                    F("lifecycle.start_month", "Start month", "month", placeholder="YYYY-MM",
                      help=_desc(Lifecycle, "start_month")),
                    F("lifecycle.horizon_months", "Horizon (months)", "int",
                      help="Months planned, 1–60. Horizons of a year or more let 1- and 3-year reservations "
                           "and own servers pay off."),
                    F("lifecycle.retraining_cadence.kind", "Retraining cadence", "select", options=CADENCES,
                      help="Default for every training run; a run may override it."),
                    F("lifecycle.retraining_cadence.n", "Every n months", "int", placeholder="n",
                      help="Months between runs, only with “every n months”."),
                )),
            )),
    Section("cost", 4, "Cost", "What may it cost, and how may it be paid?",
            "Budgets are hard limits; the discount rate and payment rules decide between paying now and paying later.",
            (
                Grid((
                    F("cost.total_budget", "Total budget (USD)", "number", placeholder="no cap",
                      help="Cap over the whole horizon. If no plan fits, the planner reports the shortfall."),
                    F("cost.monthly_budget", "Monthly budget (USD)", "number", placeholder="no cap",
                      help="Cap on any single month's cash spend, upfront payments included; it steers the plan "
                           "away from large upfront purchases."),
                    F("cost.discount_rate_annual", "Discount rate (per year)", "number",
                      help="0.08 = 8 %. The rate for the NPV the planner minimises: higher rates favour paying "
                           "later (on-demand, no upfront). Replace the 0.08 default with your cost of capital."),
                    F("cost.upfront_payments_allowed", "Upfront payments allowed", "check",
                      help="Prepaid (all/partial upfront) reservations are usually cheaper per hour."),
                    F("cost.capex_allowed", "Own servers allowed (capex)", "check",
                      help="May the plan buy and operate own GPU servers? Needed for private-only workloads."),
                )),
            )),
    Section("compliance", 5, "Security & compliance", "Where and on what may it run?",
            "Each rule removes regions or offerings from the candidates; stricter rules can only raise the cost.",
            (
                Grid((
                    F("compliance.data_classification", "Data classification", "select",
                      options=_choices(("public", "internal", "confidential", "restricted", "phi", "pci"),
                                       {"phi": "PHI (health data)", "pci": "PCI (cardholder data)"}),
                      help="PHI requires the HIPAA framework, PCI requires PCI-DSS."),
                    F("compliance.gdpr_transfer_mechanism", "GDPR transfer mechanism", "select",
                      options=(("none", "none"), ("dpf", "EU-US Data Privacy Framework"),
                               ("scc", "Standard Contractual Clauses"), ("bcr", "Binding Corporate Rules")),
                      help="Legal basis for GDPR transfers outside the EEA and adequacy countries."),
                    F("compliance.frameworks", "Frameworks", "multi", wide=True,
                      options=_choices(get_args(Framework)),
                      help="Capacity must be attested for these (GDPR works through jurisdictions instead); "
                           "fewer regions qualify."),
                    F("compliance.allowed_jurisdictions", "Allowed jurisdictions", "multi", wide=True,
                      options=_choices(get_args(Jurisdiction)),
                      help="None ticked = any (GDPR defaults to EU and NO, FedRAMP to US)."),
                    F("compliance.allowed_regions", "Allowed regions", "csv", wide=True,
                      placeholder="e.g. aws/eu-central-1, gcp/europe-west4",
                      help="Cloud region keys provider/region, comma-separated; blank = any."),
                    F("compliance.private_only", "Own servers only", "check",
                      help="No public cloud at all; needs own servers allowed under Cost."),
                    F("compliance.dedicated_tenancy", "Dedicated tenancy", "check",
                      help="No shared hardware. The catalog has no dedicated cloud prices, so only own servers qualify."),
                )),
            )),
    Section("data", 6, "Data & pipeline", "Which data feeds it, and how is it deployed?",
            "These parts do not change the GPU plan; they generate the Terraform, Helm and Airflow bundles.",
            (
                DATA_SOURCES,
                STAGES,
                Grid((
                    F("architecture.orchestrator.schedule", "Schedule", blank_none=True, placeholder="manual",
                      help="Cron (5 fields) or @hourly, @daily, @weekly, @monthly, @yearly, @once; blank = triggered by hand."),
                    F("architecture.orchestrator.retries", "Retries per task", "int"),
                ), legend="Orchestrator (Airflow)", path="architecture.orchestrator"),
                STORAGE,
                SERVING,
            )),
)

HEAD_FIELDS = (
    F("name", "Name", help="Free text; the design is called this too.", wide=True),
    F("description", "Description", "textarea", wide=True,
      help="Free text: what the workload is for and where the numbers come from."),
)

GROUPS: dict[str, Group] = {b.path: b for s in SECTIONS for b in s.blocks if isinstance(b, Group)}
_IDX = re.compile(r"\[\d+\]")


def _index_fields() -> dict[str, F]:
    out = {f.key: f for f in HEAD_FIELDS}
    for s in SECTIONS:
        for b in s.blocks:
            if isinstance(b, Group):
                for f in b.fields:
                    out[f"{b.path}[].{f.key}"] = f
            else:
                for f in b.fields:
                    out[_IDX.sub("[]", f.key)] = f
    return out


FIELDS = _index_fields()
CONTAINERS = {b.path for s in SECTIONS for b in s.blocks if isinstance(b, Grid) and b.path}


def field_for(name: str) -> F | None:
    return FIELDS.get(_IDX.sub("[]", name))


# --------------------------------------------------------------------------- values <-> spec data

Values = dict[str, Any]  # field name -> str (or list[str] for multi)
_OMIT = object()
_NUM_RE = re.compile(r"^([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?)([kmbt])?$", re.IGNORECASE)
_SUFFIX = {"k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}


def _number(raw: str, f: F) -> Any:
    text = raw.strip().replace(",", "").replace("_", "").replace(" ", "").replace("\u202f", "")
    m = _NUM_RE.match(text)
    if not m or (m.group(2) and not f.scaled):
        return raw.strip()  # the schema reports it at this path
    value = float(m.group(1)) * (_SUFFIX[m.group(2).lower()] if m.group(2) else 1.0)
    if f.kind == "int":
        return int(value) if value.is_integer() and abs(value) < 1e15 else value
    return value


def _convert(f: F, raw: Any) -> Any:
    if f.kind == "multi":
        items = [v for v in (raw or []) if v != ""]
        if f.int_items:
            items = [int(v) if v.lstrip("-").isdigit() else v for v in items]
        return items
    if f.kind == "check":
        return raw == "true"
    text = str(raw or "")
    if not text.strip():
        return None if f.blank_none else _OMIT
    if f.kind in ("number", "int"):
        return _number(text, f)
    if f.kind == "csv":
        return [p for p in (s.strip() for s in re.split(r"[,\n]", text)) if p]
    if f.kind == "textarea":
        return text.replace("\r\n", "\n")
    return text.strip()


class _Rows(dict):
    """A list under construction: index -> item (becomes a list, in index order)."""


def _segments(name: str) -> list[str | int]:
    out: list[str | int] = []
    for part in name.split("."):
        m = re.fullmatch(r"([^\[\]]+)((?:\[\d+\])*)", part)
        if not m:
            out.append(part)
            continue
        out.append(m.group(1))
        out.extend(int(i) for i in re.findall(r"\[(\d+)\]", m.group(2)))
    return out


def _set(data: dict, name: str, value: Any, dict_index: bool = False) -> None:
    segs = _segments(name)
    node: Any = data
    for i, seg in enumerate(segs[:-1]):
        nxt = segs[i + 1]
        if seg not in node:
            node[seg] = _Rows() if isinstance(nxt, int) and not (dict_index and i + 1 == len(segs) - 1) else {}
        node = node[seg]
    if value is not _OMIT:
        node[segs[-1]] = value


def _finish(node: Any) -> Any:
    if isinstance(node, _Rows):
        return [_finish(node[k]) for k in sorted(node)]
    if isinstance(node, dict):
        return {k: _finish(v) for k, v in node.items()}
    return node


def _get(data: Any, name: str) -> Any:
    node = data
    for seg in _segments(name):
        if isinstance(node, list) and isinstance(seg, int):
            node = node[seg] if seg < len(node) else None
        elif isinstance(node, dict):
            node = node.get(seg, node.get(str(seg)) if isinstance(seg, int) else None)
        else:
            return None
        if node is None:
            return None
    return node


def group_counts(values: Values) -> dict[str, int]:
    counts = {g: 0 for g in GROUPS}
    for name in values:
        for g in GROUPS:
            if name.startswith(g + "["):
                m = re.match(r"\[(\d+)\]", name[len(g):])
                if m:
                    counts[g] = max(counts[g], int(m.group(1)) + 1)
    return counts


def values_from_form(form: FormData) -> Values:
    """The known fields of a posted form, as raw strings (lists for multi fields)."""
    values: Values = {}
    for name in dict.fromkeys(form.keys()):
        f = field_for(name)
        if f is None:
            continue
        items = [v[:MAX_VALUE_CHARS] for v in form.getlist(name) if isinstance(v, str)]
        if f.kind == "multi":
            values[name] = items
        elif f.kind == "check":
            values[name] = "true" if "true" in items else "false"
        else:
            values[name] = items[-1] if items else ""
    return values


def carry_from_form(form: FormData) -> dict[str, Any]:
    raw = form.get("_carry")
    if not isinstance(raw, str) or not raw or len(raw) > svc.MAX_YAML_BYTES:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def data_from_values(values: Values, carry: dict[str, Any] | None = None) -> dict[str, Any]:
    """The spec document the form describes (validated by the caller)."""
    data: dict[str, Any] = {"schema_version": "1"}
    for name, raw in values.items():
        f = field_for(name)
        if f is None or f.key == "scale.seasonality.mode":
            continue
        value = _convert(f, raw)
        if f.kind == "multi" and not value:
            value = _OMIT
        # A blank field still creates its row (and parents): an empty row reports what it lacks.
        _set(data, name, value, dict_index=f.dict_index)
    data = _finish(data)
    for path in GROUPS:  # a group without rows is an empty list, not a missing section
        if _get(data, path) is None:
            node = data
            *parents, last = path.split(".")
            for seg in parents:
                node = node.setdefault(seg, {})
            node[last] = []
    _post_process(data, values, carry or {})
    return data


def _post_process(data: dict[str, Any], values: Values, carry: dict[str, Any]) -> None:
    scale = data.setdefault("scale", {})
    mode = values.get("scale.seasonality.mode", "none")
    season = scale.get("seasonality") or {}
    if mode == "peak":
        scale["seasonality"] = {k: v for k, v in season.items() if k in ("peak_months", "peak_factor")}
    elif mode == "multipliers":
        scale["seasonality"] = {"multipliers": season.get("multipliers") or None}
    else:
        scale.pop("seasonality", None)
    if not scale:
        data.pop("scale")
    for run in (data.get("performance") or {}).get("training") or []:
        cadence = run.get("retraining_cadence")
        if isinstance(cadence, dict) and "kind" not in cadence:
            run.pop("retraining_cadence")
    arch = data.get("architecture") or {}
    quality = carry.get("quality") if isinstance(carry.get("quality"), dict) else {}
    for src in arch.get("data_sources") or []:
        if isinstance(src, dict) and src.get("name") in quality:
            src["quality"] = quality[src["name"]]
    options = carry.get("stage_options") if isinstance(carry.get("stage_options"), dict) else {}
    for stage in (arch.get("pipeline") or {}).get("stages") or []:
        if isinstance(stage, dict) and stage.get("name") in options:
            stage["options"] = options[stage["name"]]


def _fmt_number(value: Any, scaled: bool) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "" if value is None else str(value)
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    if scaled and abs(value) >= 1e3:
        for suffix, mult in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
            if abs(value) >= mult:
                text = f"{value / mult:.6g}"
                if float(text) * mult == value:
                    return text + suffix
                break
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _fmt(f: F, value: Any) -> Any:
    if f.kind == "multi":
        return [str(v) for v in value] if isinstance(value, list) else []
    if f.kind == "check":
        return "true" if value is True else "false"
    if value is None:
        return ""
    if f.kind in ("number", "int"):
        return _fmt_number(value, f.scaled)
    if f.kind == "csv":
        return ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)
    return str(value)


def values_from_data(data: dict[str, Any]) -> tuple[Values, dict[str, Any]]:
    """Form values (and the carried extras) of a spec document (as stored: JSON)."""
    values: Values = {}
    for f in HEAD_FIELDS:
        values[f.key] = _fmt(f, data.get(f.key))
    for s in SECTIONS:
        for b in s.blocks:
            if isinstance(b, Group):
                items = _get(data, b.path)
                for i, item in enumerate(items if isinstance(items, list) else []):
                    for f in b.fields:
                        values[f"{b.path}[{i}].{f.key}"] = _fmt(f, _get(item, f.key))
            else:
                for f in b.fields:
                    values[f.key] = _fmt(f, _get(data, f.key))
    season = _get(data, "scale.seasonality")
    if isinstance(season, dict) and season.get("multipliers"):
        values["scale.seasonality.mode"] = "multipliers"
    elif isinstance(season, dict) and (season.get("peak_months") or season.get("peak_factor")):
        values["scale.seasonality.mode"] = "peak"
    else:
        values["scale.seasonality.mode"] = "none"
    carry: dict[str, Any] = {}
    for src in _get(data, "architecture.data_sources") or []:
        if isinstance(src, dict) and src.get("quality") and isinstance(src.get("name"), str):
            carry.setdefault("quality", {})[src["name"]] = src["quality"]
    for stage in _get(data, "architecture.pipeline.stages") or []:
        if isinstance(stage, dict) and stage.get("options") and isinstance(stage.get("name"), str):
            carry.setdefault("stage_options", {})[stage["name"]] = stage["options"]
    return values, carry


def starter_data(today: datetime | None = None) -> dict[str, Any]:
    """A blank workload: one training run to fill in, next month's start, a year's horizon."""
    today = today or datetime.now(UTC)
    start = f"{today.year + today.month // 12:04d}-{today.month % 12 + 1:02d}"
    return {
        "schema_version": "1", "name": "", "description": "",
        "performance": {"training": [{"name": "train", "reference_gpu": "H100", "deadline_days": 30,
                                      "interconnect": "none", "precision": "bf16", "checkpointable": False}],
                        "inference": []},
        "lifecycle": {"start_month": start, "horizon_months": 12, "retraining_cadence": {"kind": "once"}},
        "cost": {"discount_rate_annual": 0.08, "upfront_payments_allowed": True, "capex_allowed": False},
        "compliance": {"data_classification": "internal", "gdpr_transfer_mechanism": "none"},
        "architecture": {"orchestrator": {"schedule": "@daily", "retries": 2}},
    }


def validate(data: dict[str, Any]) -> tuple[WorkloadSpec | None, list[SpecIssue]]:
    try:
        return WorkloadSpec.model_validate(data), []
    except ValidationError as exc:
        return None, issues_from_validation_error(exc)


# --------------------------------------------------------------------------- rows


def _rows(values: Values, group: Group) -> list[dict[str, Any]]:
    n = group_counts(values)[group.path]
    return [{f.key: values.get(f"{group.path}[{i}].{f.key}", [] if f.kind == "multi" else "")
             for f in group.fields} for i in range(n)]


def _put_rows(values: Values, group: Group, rows: list[dict[str, Any]]) -> None:
    for name in [k for k in values if k.startswith(group.path + "[")]:
        del values[name]
    for i, row in enumerate(rows):
        for key, v in row.items():
            values[f"{group.path}[{i}].{key}"] = v


def _new_name(group: Group, rows: list[dict[str, Any]]) -> str:
    taken = {r.get(group.name_key or "") for r in rows}
    n = len(rows) + 1
    while f"{group.name_prefix}-{n}" in taken:
        n += 1
    return f"{group.name_prefix}-{n}"


def apply_row_op(values: Values, op: str) -> tuple[str | None, str | None]:
    """Apply ``add:<group>`` or ``remove:<group>:<index>``; returns (group path, focus field id)."""
    kind, _, rest = op.partition(":")
    path, _, index = rest.partition(":")
    group = GROUPS.get(path)
    if group is None:
        return None, None
    rows = _rows(values, group)
    if kind == "add" and len(rows) < group.max_items:
        row: dict[str, Any] = {f.key: [] if f.kind == "multi" else ("false" if f.kind == "check" else "")
                               for f in group.fields}
        row.update(group.new_row)
        if group.name_key == "name":
            row["name"] = _new_name(group, rows)
        rows.append(row)
        _put_rows(values, group, rows)
        return path, field_id(f"{path}[{len(rows) - 1}].{group.fields[0].key}")
    if kind == "remove" and index.isdigit() and int(index) < len(rows):
        del rows[int(index)]
        _put_rows(values, group, rows)
        return path, "add-" + field_id(path)
    return path, None


# --------------------------------------------------------------------------- issues -> fields


def field_id(name: str) -> str:
    return "f-" + re.sub(r"[^A-Za-z0-9_]+", "-", name).strip("-")


def _targets(values: Values) -> set[str]:
    names = set(FIELDS) - {k for k in FIELDS if "[]" in k}
    names |= {k for k in values}
    names |= CONTAINERS | set(GROUPS)
    for g, n in group_counts(values).items():
        for i in range(n):
            names.add(f"{g}[{i}]")
            names |= {f"{g}[{i}].{f.key}" for f in GROUPS[g].fields}
    return names


def _ancestors(path: str) -> Iterable[str]:
    while path:
        yield path
        if path.endswith("]"):
            path = path[: path.rfind("[")]
        elif "." in path:
            path = path.rsplit(".", 1)[0]
        else:
            return


@dataclass
class IssueView:
    path: str
    target: str  # a field name or container path; "" = the summary only
    message: str
    where: str  # readable location
    kind: str = "value_error"  # the pydantic error type ("missing", "cross_field", …)

    @property
    def dom_id(self) -> str:
        """The target's element id without its ``f-`` prefix ("" for the summary)."""
        return field_id(self.target)[2:] if self.target else ""


def _where(target: str) -> str:
    if not target:
        return "Requirements"
    parts = []
    for g, group in GROUPS.items():
        if target.startswith(g + "["):
            m = re.match(r"\[(\d+)\]\.?(.*)", target[len(g):])
            if m:
                f = next((f for f in group.fields if f.key == m.group(2)), None)
                parts = [f"{group.item} {int(m.group(1)) + 1}"] + ([f.label] if f else [])
                return " › ".join(parts)
        if target == g:
            return group.title
    f = field_for(target)
    if f is not None:
        return f.label
    return {"scale.seasonality": "Seasonality", "scale.seasonality.multipliers": "Factor per month",
            "architecture.orchestrator": "Orchestrator"}.get(target, target)


def map_issues(issues: list[SpecIssue], values: Values) -> list[IssueView]:
    targets = _targets(values)
    mode = values.get("scale.seasonality.mode")
    out = []
    for issue in issues:
        path = issue.path
        if path == "scale.seasonality.multipliers" and mode == "peak":
            path = "scale.seasonality.peak_months"
        target = next((p for p in _ancestors(path) if p in targets), "")
        out.append(IssueView(path=issue.path, target=target, message=issue.message, where=_where(target),
                             kind=issue.type))
    return out


def errors_by_target(views: list[IssueView]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for v in views:
        if v.target:
            out.setdefault(v.target, []).append(v.message)
    return out


# --------------------------------------------------------------------------- view model


@dataclass
class FieldView:
    name: str
    id: str
    f: F
    value: Any
    errors: list[str]
    autofocus: bool = False

    @property
    def label(self) -> str:
        return self.f.label

    @property
    def kind(self) -> str:
        return self.f.kind

    @property
    def err_id(self) -> str:
        return "e-" + self.id[2:]

    @property
    def help_id(self) -> str:
        return "h-" + self.id[2:]

    @property
    def describedby(self) -> str:
        ids = [self.help_id] if self.f.help else []
        if self.errors:
            ids.append(self.err_id)
        return " ".join(ids)


@dataclass
class RowView:
    index: int
    id: str
    path: str
    title: str
    fields: list[FieldView]
    errors: list[str]


@dataclass
class GroupView:
    g: Group
    id: str
    rows: list[RowView]
    errors: list[str]
    focus_add: bool = False

    @property
    def can_add(self) -> bool:
        return len(self.rows) < self.g.max_items

    @property
    def add_id(self) -> str:
        return "add-" + self.id


@dataclass
class GridView:
    b: Grid
    id: str | None
    fields: list[FieldView]
    errors: list[str]


def _field_view(name: str, f: F, values: Values, errs: dict[str, list[str]], focus: str | None) -> FieldView:
    default: Any = [] if f.kind == "multi" else ("false" if f.kind == "check" else "")
    fid = field_id(name)
    return FieldView(name=name, id=fid, f=f, value=values.get(name, default), errors=errs.get(name, []),
                     autofocus=focus == fid)


def group_view(group: Group, values: Values, errs: dict[str, list[str]], focus: str | None = None) -> GroupView:
    rows = []
    for i in range(group_counts(values)[group.path]):
        path = f"{group.path}[{i}]"
        title_value = values.get(f"{path}.{group.name_key}", "") if group.name_key else ""
        rows.append(RowView(
            index=i, id=field_id(path), path=path,
            title=f"{group.item} {i + 1}" + (f" · {title_value}" if title_value else ""),
            fields=[_field_view(f"{path}.{f.key}", f, values, errs, focus) for f in group.fields],
            errors=errs.get(path, [])))
    gid = field_id(group.path)
    return GroupView(g=group, id=gid, rows=rows, errors=errs.get(group.path, []), focus_add=focus == "add-" + gid)


def sections_view(values: Values, errs: dict[str, list[str]], focus: str | None = None) -> list[dict[str, Any]]:
    out = []
    for s in SECTIONS:
        blocks: list[GroupView | GridView] = []
        for b in s.blocks:
            if isinstance(b, Group):
                blocks.append(group_view(b, values, errs, focus))
            else:
                blocks.append(GridView(b=b, id=field_id(b.path) if b.path else None,
                                       fields=[_field_view(f.key, f, values, errs, focus) for f in b.fields],
                                       errors=errs.get(b.path, []) if b.path else []))
        out.append({"s": s, "blocks": blocks})
    return out


def _names(values: Values, group: str) -> list[str]:
    return sorted({v for k, v in values.items()
                   if k.startswith(group + "[") and k.endswith("].name") and isinstance(v, str) and v})


# --------------------------------------------------------------------------- rendering


def _render(request: Request, template: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    return templates.TemplateResponse(request, template, {"active": "designs", **HELPERS, **context},
                                      status_code=status)


def _fragment(request: Request, template: str, context: dict[str, Any]) -> HTMLResponse:
    html = templates.env.get_template(template).render(
        {**HELPERS, "field_id": field_id, **context, "request": request})
    return HTMLResponse(html)


def _is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true" and not request.headers.get("HX-History-Restore-Request")


def _gpu_names(session: Session, workspace_id: int) -> list[str]:
    try:
        snapshot = svc.planning_snapshot(session, workspace_id)
    except Exception:  # the catalog is optional for the form itself
        log.exception("no price snapshot for the wizard's GPU list")
        return []
    return sorted(g.name for g in snapshot.gpus)


def _page_context(session: Session, web: WebUser, *, design: Design | None, values: Values,
                  carry: dict[str, Any], issues: list[IssueView], submitted: bool = False,
                  focus: str | None = None, example: str = "") -> dict[str, Any]:
    workspace_id = design.workspace_id if design is not None else web.workspace.id
    errs = errors_by_target(issues)
    return {
        "design": design, "values": values, "carry_json": json.dumps(carry, separators=(",", ":")) if carry else "",
        "head": [_field_view(f.key, f, values, errs, focus) for f in HEAD_FIELDS],
        "sections": sections_view(values, errs, focus), "issues": issues, "submitted": submitted,
        "save_url": f"/designs/{design.id}/wizard" if design else "/designs/new/wizard",
        "gpu_names": _gpu_names(session, workspace_id), "source_names": _names(values, "architecture.data_sources"),
        "run_names": _names(values, "performance.training"), "service_names": _names(values, "performance.inference"),
        "examples": svc.example_choices(), "example": example, "month_names": MONTHS,
        "carried": {"quality": len(carry.get("quality") or {}), "stage_options": len(carry.get("stage_options") or {})},
    }


def _not_found(request: Request) -> HTMLResponse:
    return _render(request, "designs/not_found.html", {"what": "design"}, status=404)


def _design(session: Session, web: WebUser, design_id: str, need: str = "editor") -> Design | None:
    """The design if the user may see it (else None: a 404); Forbidden below ``need``."""
    if not (design_id.isdigit() and len(design_id) < 12):
        return None
    try:
        return access.design_for(session, web.principal, int(design_id), need)
    except acc.NotFound:
        return None


def _require_editor(session: Session, web: WebUser) -> None:
    """New designs go into the current workspace: the user must be an editor there."""
    acc.require_role(session, web.principal, web.workspace.id, "editor")


async def _form(request: Request) -> FormData:
    return await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)


# --------------------------------------------------------------------------- pages


@router.get("/designs/new/wizard", response_class=HTMLResponse)
def new_wizard(request: Request, session: SessionDep, web: PageUser, example: str = ""):
    _require_editor(session, web)
    known = {e.name for e in svc.example_choices()}
    data = load_example(example).model_dump(mode="json") if example in known else starter_data()
    values, carry = values_from_data(data)
    return _render(request, "wizard/wizard.html",
                   _page_context(session, web, design=None, values=values, carry=carry, issues=[],
                                 example=example if example in known else ""))


@router.get("/designs/{design_id}/wizard", response_class=HTMLResponse)
def edit_wizard(request: Request, session: SessionDep, web: PageUser, design_id: str):
    design = _design(session, web, design_id)
    if design is None:
        return _not_found(request)
    values, carry = values_from_data(design.spec if isinstance(design.spec, dict) else {})
    _spec, issues = validate(data_from_values(values, carry))
    return _render(request, "wizard/wizard.html",
                   _page_context(session, web, design=design, values=values, carry=carry,
                                 issues=map_issues(issues, values), submitted=bool(issues)))


def _save(request: Request, session: Session, web: WebUser, design: Design | None, form: FormData):
    values, carry = values_from_form(form), carry_from_form(form)
    op = form.get("_op")
    if isinstance(op, str) and op:  # a row button without JavaScript: change the rows, save nothing
        _group, focus = apply_row_op(values, op)
        ctx = _page_context(session, web, design=design, values=values, carry=carry, issues=[], focus=focus)
        return _render(request, "wizard/wizard.html", ctx)
    spec, issues = validate(data_from_values(values, carry))
    if spec is None:
        ctx = _page_context(session, web, design=design, values=values, carry=carry,
                            issues=map_issues(issues, values), submitted=True)
        return _render(request, "wizard/wizard.html", ctx, status=422)
    if design is None:
        design = svc.create_design(session, web.workspace.id, spec)
        audit(session, request, web, "design.create", workspace_id=design.workspace_id,
              target=f"design:{design.id}", detail={"name": design.name, "via": "wizard"})
        return RedirectResponse(f"/designs/{design.id}", status_code=303)
    svc.update_spec(session, design, spec)
    audit(session, request, web, "design.update", workspace_id=design.workspace_id, target=f"design:{design.id}",
          detail={"via": "wizard"})
    return RedirectResponse(f"/designs/{design.id}?saved=1", status_code=303)


@router.post("/designs/new/wizard")
async def create(request: Request, web: PageUser):
    form = await _form(request)

    def work():
        with Session(request.app.state.engine) as session:
            _require_editor(session, web)
            return _save(request, session, web, None, form)

    return await run_in_threadpool(work)


@router.post("/designs/{design_id}/wizard")
async def update(request: Request, web: PageUser, design_id: str):
    form = await _form(request)

    def work():
        with Session(request.app.state.engine) as session:
            design = _design(session, web, design_id)
            if design is None:
                return _not_found(request)
            return _save(request, session, web, design, form)

    return await run_in_threadpool(work)


# --------------------------------------------------------------------------- htmx endpoints


@router.post("/designs/wizard/validate", response_class=HTMLResponse)
async def validate_fragment(request: Request, web: PageUser):
    form = await _form(request)
    values = values_from_form(form)
    _spec, issues = validate(data_from_values(values, carry_from_form(form)))
    return _fragment(request, "wizard/_errors.html",
                     {"issues": map_issues(issues, values), "submitted": False, "checked": True})


@router.post("/designs/wizard/estimate", response_class=HTMLResponse)
async def estimate_fragment(request: Request, web: PageUser):
    form = await _form(request)
    values = values_from_form(form)
    spec, issues = validate(data_from_values(values, carry_from_form(form)))
    if spec is None:
        return _fragment(request, "wizard/_estimate.html",
                         {"estimate": None, "issue_count": len(issues)})
    settings = request.app.state.settings
    design_id = form.get("_design") if isinstance(form.get("_design"), str) else ""

    def work():
        with Session(request.app.state.engine) as session:
            # The prices of the design's own workspace (its negotiated ones), else the current one's.
            design = _design(session, web, design_id, "viewer") if design_id else None
            workspace_id = design.workspace_id if design is not None else web.workspace.id
            snapshot = svc.planning_snapshot(session, workspace_id)
            session.commit()  # no connection held during the LP
        return est_svc.quick_estimate(spec, snapshot, svc.planner_settings(settings.solver))

    estimate = await run_in_threadpool(work)
    return _fragment(request, "wizard/_estimate.html",
                     {"estimate": estimate, "issue_count": 0, "spec": spec,
                      "budget": spec.cost.total_budget})


@router.post("/designs/wizard/rows")
async def rows(request: Request, web: PageUser):
    form = await _form(request)
    values, carry = values_from_form(form), carry_from_form(form)
    op = form.get("_op") if isinstance(form.get("_op"), str) else ""
    group_path, focus = apply_row_op(values, op or "")
    if _is_htmx(request) and group_path:
        view = group_view(GROUPS[group_path], values, {}, focus)
        return _fragment(request, "wizard/_group.html", {"group": view})
    design_id = form.get("_design") if isinstance(form.get("_design"), str) else ""

    def page():
        with Session(request.app.state.engine) as session:
            design = _design(session, web, design_id) if design_id else None
            if design_id and design is None:
                return _not_found(request)
            ctx = _page_context(session, web, design=design, values=values, carry=carry, issues=[], focus=focus)
            return _render(request, "wizard/wizard.html", ctx)

    return await run_in_threadpool(page)
