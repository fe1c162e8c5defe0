"""Price catalog: snapshot schema, loader and the bundled-snapshot build.

Public API (import from here)::

    from app.catalog import load_snapshot, Snapshot, Offering, GpuModel
"""

from app.catalog.gpus import CANONICAL_ACCELERATORS, normalize_accelerator_name
from app.catalog.schema import (
    DEFAULT_SNAPSHOT_PATH,
    CommitmentPrice,
    Correction,
    Figure,
    GpuModel,
    Offering,
    PrivateServerSku,
    Region,
    SiteProfile,
    Snapshot,
    Source,
    compute_snapshot_id,
    dump_snapshot,
    load_snapshot,
)

__all__ = [
    "CANONICAL_ACCELERATORS",
    "DEFAULT_SNAPSHOT_PATH",
    "CommitmentPrice",
    "Correction",
    "Figure",
    "GpuModel",
    "Offering",
    "PrivateServerSku",
    "Region",
    "SiteProfile",
    "Snapshot",
    "Source",
    "compute_snapshot_id",
    "dump_snapshot",
    "load_snapshot",
    "normalize_accelerator_name",
]
