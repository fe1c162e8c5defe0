from __future__ import annotations

import pytest

from app.catalog import Snapshot, load_snapshot


@pytest.fixture(scope="session")
def snapshot() -> Snapshot:
    return load_snapshot()
