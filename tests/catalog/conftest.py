from __future__ import annotations

import csv
from pathlib import Path

import pytest

from app.catalog import Snapshot, load_snapshot
from app.catalog.build import DATA_DIR

REFERENCE = DATA_DIR / "reference"


@pytest.fixture(scope="session")
def snapshot() -> Snapshot:
    return load_snapshot()


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    return REFERENCE


def read_reference(name: str) -> list[dict[str, str]]:
    with (REFERENCE / name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))
