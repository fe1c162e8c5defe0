"""Persistent tables (SQLModel). The domain core never imports this module.

Schema changes go through Alembic migrations in ``alembic/versions``; a test checks that the
migrations and these models agree on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, UniqueConstraint
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

    id: int | None = Field(default=None, primary_key=True)
    snapshot_id: str = Field(max_length=80, unique=True, index=True)
    label: str = Field(default="", max_length=200)
    origin: str = Field(default="bundled", max_length=40)
    is_current: bool = Field(default=False, index=True)
    offering_count: int = 0
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
    data: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False), description="Full offering record."
    )
