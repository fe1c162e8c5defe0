"""Refresh provider prices into a new catalog snapshot.

* :func:`refresh_aws` - AWS Price List API (on-demand + Reserved Instances) and EC2 spot
  price history;
* :func:`refresh_azure` - Azure Retail Prices API (pay-as-you-go, spot, reservations).

Both take a base :class:`~app.catalog.schema.Snapshot` and return a
:class:`RefreshResult` holding a complete, validated new snapshot (new ``snapshot_id``),
or raise :class:`RefreshError` with a user-readable message. The base is never modified,
so a failed refresh leaves the stored snapshot untouched.
"""

from app.catalog.refresh.aws import refresh_aws
from app.catalog.refresh.azure import refresh_azure
from app.catalog.refresh.common import RefreshError, RefreshResult

__all__ = ["RefreshError", "RefreshResult", "refresh_aws", "refresh_azure"]
