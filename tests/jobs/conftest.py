"""Fixtures: a migrated database (SQLite, and PostgreSQL where marked) and a design in it."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from app.models import Design
from app.services import designs as design_svc


@pytest.fixture
def design(session: Session) -> Design:
    ws = design_svc.get_or_create_workspace(session)
    return design_svc.create_design_from_example(session, ws.id, "research-burst-deadline")
