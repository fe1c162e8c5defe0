"""Persistent tables (SQLModel). The domain core never imports this module.

Schema changes go through Alembic migrations in ``alembic/versions``; a test checks that the
migrations and these models agree on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def _ts(**kwargs: Any) -> Any:
    return Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False, **kwargs))


class Workspace(SQLModel, table=True):
    """A project: a team's designs, custom prices and members."""

    __tablename__ = "workspace"

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=64, unique=True, index=True)
    name: str = Field(max_length=200)
    created_at: datetime = _ts()


class Design(SQLModel, table=True):
    """One set of requirements (a WorkloadSpec document) inside a workspace."""

    __tablename__ = "design"

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", ondelete="CASCADE", index=True)
    name: str = Field(max_length=200)
    spec: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = _ts()
    updated_at: datetime = _ts(onupdate=utcnow)


class PriceSnapshot(SQLModel, table=True):
    """A versioned, immutable price catalog. Exactly one is current; plans record theirs."""

    __tablename__ = "price_snapshot"
    __table_args__ = (
        # At most one current snapshot, even with concurrent imports (partial unique index).
        Index(
            "ux_price_snapshot_one_current", "is_current", unique=True,
            sqlite_where=text("is_current"), postgresql_where=text("is_current"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    snapshot_id: str = Field(max_length=80, unique=True, index=True)
    label: str = Field(default="", max_length=200)
    origin: str = Field(default="bundled", max_length=40)
    is_current: bool = Field(default=False, index=True)
    offering_count: int = 0
    snapshot_date: str = Field(
        default="", max_length=10, sa_column_kwargs={"server_default": ""},
        description="The snapshot's own date (Snapshot.created, YYYY-MM-DD).",
    )
    base_snapshot_id: str | None = Field(
        default=None, max_length=80,
        description="Snapshot this one was derived from (CSV import, refresh), if any.",
    )
    created_at: datetime = _ts()
    data: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=Column(JSON, nullable=False),
        description="Snapshot content other than offerings: sources, GPUs, regions, servers, sites.",
    )


class PriceOffering(SQLModel, table=True):
    """One priced offering of a snapshot: (provider, region, instance type)."""

    __tablename__ = "price_offering"
    __table_args__ = (
        UniqueConstraint("snapshot_pk", "provider", "region", "instance_type", name="uq_offering_key"),
        Index("ix_offering_snapshot_gpu", "snapshot_pk", "gpu_model"),
    )

    id: int | None = Field(default=None, primary_key=True)
    snapshot_pk: int = Field(foreign_key="price_snapshot.id", ondelete="CASCADE", index=True)
    provider: str = Field(max_length=20)
    region: str = Field(max_length=60)
    instance_type: str = Field(max_length=80)
    gpu_model: str | None = Field(default=None, max_length=40)
    gpu_count: float = 0
    gpu_memory_gb: float | None = None
    on_demand_hourly: float | None = None
    spot_hourly: float | None = None
    # Denormalised from the offering and its region so the catalog can filter and sort in SQL.
    accelerator_kind: str = Field(default="gpu", max_length=10, sa_column_kwargs={"server_default": "gpu"})
    price_scope: str = Field(
        default="instance", max_length=20, sa_column_kwargs={"server_default": "instance"},
        description="'instance', or 'accelerator_only' when the price excludes the host VM.",
    )
    effective_gpus: float = Field(default=0, sa_column_kwargs={"server_default": "0"})
    vcpus: float | None = None
    ram_gb: float | None = None
    jurisdiction: str | None = Field(default=None, max_length=4)
    country: str | None = Field(default=None, max_length=2)
    compliance_tags: str = Field(
        default="", max_length=500, sa_column_kwargs={"server_default": ""},
        description="Region compliance programs as '|HIPAA|GDPR|' (LIKE-searchable on every backend).",
    )
    od_gpu_hourly: float | None = Field(default=None, description="On-demand USD per GPU-hour.")
    spot_gpu_hourly: float | None = Field(default=None, description="Spot USD per GPU-hour.")
    reserved_gpu_hourly: float | None = Field(
        default=None, description="Best reserved/savings-plan/committed-use effective USD per GPU-hour.",
    )
    data: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False), description="Full offering record."
    )


class CustomDiscount(SQLModel, table=True):
    """A workspace's negotiated discount on a provider's list prices.

    ``instance_family`` and ``purchase_option`` narrow the scope; ``""`` means "any" (kept
    non-null so that the unique constraint holds on every backend).
    """

    __tablename__ = "custom_discount"
    __table_args__ = (
        UniqueConstraint("workspace_id", "provider", "instance_family", "purchase_option",
                         name="uq_custom_discount_scope"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", ondelete="CASCADE", index=True)
    provider: str = Field(max_length=20)
    instance_family: str = Field(default="", max_length=80)
    purchase_option: str = Field(default="", max_length=20)
    percent: float
    note: str = Field(default="", max_length=500)
    created_at: datetime = _ts()


class CustomOffering(SQLModel, table=True):
    """A private price a workspace negotiated (``data`` is an ``app.catalog.custom.CustomOffering``)."""

    __tablename__ = "custom_offering"
    __table_args__ = (
        UniqueConstraint("workspace_id", "provider", "region", "instance_type", name="uq_custom_offering_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", ondelete="CASCADE", index=True)
    provider: str = Field(max_length=20)
    region: str = Field(max_length=60)
    instance_type: str = Field(max_length=80)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = _ts()


class Plan(SQLModel, table=True):
    """One solve of a design: the spec that was solved and the resulting plan, both as JSON.

    ``result`` is an ``app.planner.plan.Plan`` dumped as JSON (``mode="json"``).
    ``status``, ``total_cost`` and ``snapshot_id`` are copied out so lists need not read it.
    """

    __tablename__ = "plan"

    id: int | None = Field(default=None, primary_key=True)
    design_id: int = Field(foreign_key="design.id", ondelete="CASCADE", index=True)
    snapshot_id: str = Field(max_length=80)
    status: str = Field(max_length=20)
    total_cost: float | None = None
    created_at: datetime = _ts()
    spec: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    result: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Job(SQLModel, table=True):
    """A unit of background work (solving a plan, an analysis, a price refresh), run by a job runner.

    Life cycle: ``queued`` → ``running`` (claimed by one runner; ``worker`` holds that
    claim's token) → ``succeeded`` | ``failed`` | ``cancelled``. A runner refreshes
    ``heartbeat_at`` while it works; a ``running`` job whose heartbeat lapsed is queued again
    with ``attempts`` + 1 (failed after the last attempt). See ``app.jobs.service``.
    """

    __tablename__ = "job"
    __table_args__ = (
        # Claiming takes the oldest queued job: (status, id) answers that from the index.
        Index("ix_job_status_id", "status", "id"),
        # Finding the job that computed (or is computing) the same analysis of a design.
        Index("ix_job_design_key", "design_id", "dedupe_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(default="plan", max_length=40)
    status: str = Field(default="queued", max_length=20)
    progress: float = Field(default=0.0, description="0 to 1.")
    message: str = Field(default="", max_length=500)
    attempts: int = Field(default=0, description="Runs that ended without a result (lapsed heartbeat).")
    worker: str | None = Field(default=None, max_length=120, description="Token of the current claim.")
    heartbeat_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    created_at: datetime = _ts()
    started_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    finished_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    design_id: int | None = Field(default=None, foreign_key="design.id", ondelete="CASCADE", index=True)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    result_plan_id: int | None = Field(default=None, foreign_key="plan.id", ondelete="SET NULL")
    result: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSON, nullable=True),
        description="Outcome of jobs that store no plan (analyses, price refreshes), as JSON.")
    dedupe_key: str | None = Field(
        default=None, max_length=64,
        description="Hash of the job's inputs: the same analysis asked again reuses the job.")
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    cancel_requested: bool = Field(default=False)


# --------------------------------------------------------------------------- accounts


class User(SQLModel, table=True):
    """Someone who signs in to the browser. ``password_hash`` is a scrypt hash with its
    parameters (``app.services.accounts.hash_password``); ``is_admin`` may create users."""

    __tablename__ = "app_user"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True, index=True, description="Lower-cased.")
    name: str = Field(default="", max_length=200)
    password_hash: str = Field(max_length=300)
    is_admin: bool = Field(default=False)
    disabled: bool = Field(default=False)
    created_at: datetime = _ts()
    last_login_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))


class AuthSession(SQLModel, table=True):
    """A signed-in browser. The cookie holds a random token; only its SHA-256 is stored."""

    __tablename__ = "auth_session"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    user_id: int = Field(foreign_key="app_user.id", ondelete="CASCADE", index=True)
    workspace_id: int | None = Field(
        default=None, foreign_key="workspace.id", ondelete="SET NULL",
        description="The workspace the pages show (checked against memberships on every request).",
    )
    created_at: datetime = _ts()
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    last_seen_at: datetime = _ts()
    ip: str = Field(default="", max_length=64)
    user_agent: str = Field(default="", max_length=300)


class Membership(SQLModel, table=True):
    """A user's role in a workspace: ``viewer`` < ``editor`` < ``admin``."""

    __tablename__ = "membership"
    __table_args__ = (UniqueConstraint("workspace_id", "user_id", name="uq_membership"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", ondelete="CASCADE", index=True)
    user_id: int = Field(foreign_key="app_user.id", ondelete="CASCADE", index=True)
    role: str = Field(max_length=20)
    created_at: datetime = _ts()


class ApiKey(SQLModel, table=True):
    """A workspace's key for the REST API. The secret is shown once; only its SHA-256 is kept.

    ``scopes`` is ``"read"`` or ``"read write"``. A revoked key stays for the audit trail.
    """

    __tablename__ = "api_key"

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", ondelete="CASCADE", index=True)
    name: str = Field(max_length=200)
    prefix: str = Field(max_length=20, description="The key's first characters, shown to tell keys apart.")
    key_hash: str = Field(max_length=64, unique=True, index=True)
    scopes: str = Field(default="read", max_length=40)
    created_by: int | None = Field(default=None, foreign_key="app_user.id", ondelete="SET NULL")
    created_at: datetime = _ts()
    last_used_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))


class AuditEvent(SQLModel, table=True):
    """Who did what: created, solved, exported, deleted, signed in, changed access.

    No foreign keys: the trail outlives the users, keys and workspaces it names.
    """

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_workspace_id", "workspace_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _ts()
    workspace_id: int | None = None
    actor: str = Field(max_length=40, description="'user:<id>', 'key:<id>' or 'system'.")
    actor_label: str = Field(default="", max_length=254)
    action: str = Field(max_length=60)
    target: str = Field(default="", max_length=120, description="e.g. 'design:12'.")
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    ip: str = Field(default="", max_length=64)


class IdempotencyRecord(SQLModel, table=True):
    """The first response to a POST sent with an ``Idempotency-Key``, replayed on retries."""

    __tablename__ = "idempotency_record"
    __table_args__ = (UniqueConstraint("principal", "key", name="uq_idempotency_key"),)

    id: int | None = Field(default=None, primary_key=True)
    principal: str = Field(max_length=40)
    key: str = Field(max_length=200)
    method: str = Field(max_length=10)
    path: str = Field(max_length=500)
    request_hash: str = Field(max_length=64)
    status_code: int = 0
    response: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = _ts()
