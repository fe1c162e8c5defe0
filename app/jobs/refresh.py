"""Price refreshes as durable jobs (kind ``refresh``), and the refresh call the CLI shares.

``archplan pricing refresh PROVIDER`` runs a refresh in the terminal; ``--queue`` and the
catalog page's "Refresh prices" form queue one instead (:func:`enqueue_refresh`), which the
app's embedded runner or an ``archplan worker`` runs with :func:`run_refresh_job`:

1. load the current snapshot (the *base*);
2. fetch the provider's prices with :func:`fetch_prices` through
   :meth:`~app.jobs.runner.JobContext.call` — in a child process by default, which a cancel
   stops at once. The fetch is network I/O with its own retries and reports no progress of
   its own, so it is one step, bounded by :data:`STEP_LIMIT_S`;
3. store the new snapshot (origin ``refresh-<provider>``, its base recorded) and mark the job
   succeeded with a summary in ``job.result`` — **in one transaction** (see
   :func:`_store`): a refresh cancelled at the last moment stores nothing, and a stored
   snapshot always has its succeeded job.

A provider's :class:`~app.catalog.refresh.common.RefreshError` (API failing, no
credentials, a region the catalog does not know, …) fails the job with
"<provider> refresh failed: …; the current snapshot is unchanged". At most one refresh per
provider is queued or running: :func:`enqueue_refresh` returns the active one instead.

The refresh function is looked up on its module (``app.catalog.refresh.<provider>``,
``refresh_<provider>``) when it is called, so tests replace it there with one that reads
recorded responses, for the CLI and the jobs alike.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import re
import time
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from sqlmodel import Session, col, select

from app.jobs import service as jobs
from app.jobs.runner import JobCancelled, JobContext, JobError, JobInterrupted
from app.models import Job

log = logging.getLogger("archplan.jobs.refresh")

KIND = "refresh"
PROVIDERS = ("aws", "azure")
#: The fetch is one step (no progress reports while it pages through the API, with its own
#: retries and backoff): a run longer than this is stopped and fails the job.
STEP_LIMIT_S = 15 * 60.0
#: Warnings kept in the job's result (the count says how many there were).
WARNINGS_KEPT = 50
LABEL_CHARS = 200
_REGION_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")

__all__ = [
    "KIND",
    "PROVIDERS",
    "STEP_LIMIT_S",
    "RefreshFailed",
    "RefreshRequestError",
    "active_refresh",
    "call_refresh",
    "default_label",
    "enqueue_refresh",
    "failure_message",
    "fetch_prices",
    "list_refresh_jobs",
    "parse_regions",
    "refresh_errors",
    "refresh_function",
    "result_summary",
    "run_refresh_job",
]


class RefreshRequestError(ValueError):
    """A refresh that cannot be asked for as given (unknown provider or region, no snapshot)."""


class RefreshFailed(JobError):
    """The provider's refresh failed; the message is for users and says nothing was changed."""


# --------------------------------------------------------------------------- the refresh call


def refresh_function(provider: str) -> tuple[Callable[..., Any], tuple[type[BaseException], ...]]:
    """``refresh_<provider>`` of ``app.catalog.refresh.<provider>`` and the errors it raises."""
    if provider not in PROVIDERS:
        raise RefreshRequestError(f"unknown provider {provider!r} (choose {' or '.join(PROVIDERS)})")
    try:
        module = importlib.import_module(f"app.catalog.refresh.{provider}")
    except ImportError as exc:
        raise RefreshRequestError(f"refreshing {provider} is not available in this build ({exc})") from None
    return getattr(module, f"refresh_{provider}"), refresh_errors(module)


def refresh_errors(module: ModuleType) -> tuple[type[BaseException], ...]:
    """The ``RefreshError`` classes the refresh module can raise."""
    found: list[type[BaseException]] = []
    candidates = [getattr(module, "RefreshError", None)]
    try:
        candidates.append(importlib.import_module("app.catalog.refresh.common").RefreshError)
    except (ImportError, AttributeError):
        pass
    for t in candidates:
        if isinstance(t, type) and issubclass(t, BaseException) and t not in found:
            found.append(t)
    return tuple(found) or (RuntimeError,)


def call_refresh(func: Callable[..., Any], base: Any, regions: Sequence[str] | None) -> Any:
    """``func(base)`` for every region of the provider, or ``func(base, regions=…)``."""
    kwargs: dict[str, Any] = {}
    if regions:
        regions = list(regions)
        params = inspect.signature(func).parameters
        if "regions" in params:
            kwargs["regions"] = regions
        elif "region" in params:
            kwargs["region"] = regions if len(regions) > 1 else regions[0]
        else:
            from app.catalog.refresh.common import RefreshError

            raise RefreshError("this refresh does not take regions; refresh every region instead")
    return func(base, **kwargs)


def failure_message(provider: str, exc: BaseException) -> str:
    return f"{provider} refresh failed: {exc}; the current snapshot is unchanged"


def default_label(provider: str, regions: Sequence[str] | None) -> str:
    return f"{provider} refresh" + (f" ({', '.join(regions)})" if regions else "")


def fetch_prices(provider: str, base: Any, regions: list[str] | None, *,
                 progress: Callable[[float, str], None]) -> Any:
    """The refresh of a job (run by :meth:`JobContext.call`, in a child process by default):
    the provider's :class:`~app.catalog.refresh.common.RefreshResult`, or :class:`RefreshFailed`."""
    where = ", ".join(regions) if regions else "every region in the catalog"
    progress(0.05, f"Fetching {provider} prices ({where})")
    try:
        func, errors = refresh_function(provider)
    except RefreshRequestError as exc:
        raise RefreshFailed(failure_message(provider, exc)) from None
    try:
        return call_refresh(func, base, regions)
    except errors as exc:
        raise RefreshFailed(failure_message(provider, exc)) from None


def result_summary(provider: str, regions: Sequence[str] | None, base: Any, result: Any) -> dict[str, Any]:
    """What ``job.result`` holds for a refresh: the new snapshot, counts, price changes, warnings."""
    from app.catalog.diff import diff_snapshots

    snapshot = result.snapshot
    warnings = [str(w) for w in (getattr(result, "warnings", None) or [])]
    counts = {k: getattr(result, k) for k in ("added", "updated", "unchanged", "removed", "skipped")
              if isinstance(getattr(result, k, None), int)}
    return {
        "provider": provider,
        "regions": list(regions) if regions else None,
        "snapshot_id": snapshot.snapshot_id,
        "base_snapshot_id": base.snapshot_id,
        "changed": snapshot.snapshot_id != base.snapshot_id,
        "offering_count": len(snapshot.offerings),
        "counts": counts,
        "price_changes": diff_snapshots(base, snapshot).summary(),
        "warnings": warnings[:WARNINGS_KEPT],
        "warning_count": len(warnings),
    }


def summary_message(summary: dict[str, Any]) -> str:
    """One line for the job's message (and the CLI)."""
    if not summary["changed"]:
        return f"No price changed; {summary['base_snapshot_id']} stays current"
    counts = ", ".join(f"{n} {k}" for k, n in summary["counts"].items())
    changes = summary["price_changes"]["price_changes"]
    return (f"Stored {summary['snapshot_id']} as the current snapshot"
            + (f": {counts}" if counts else "") + f" ({changes} price change{'s' if changes != 1 else ''})")


# --------------------------------------------------------------------------- queueing


def parse_regions(text: str | Sequence[str] | None) -> list[str] | None:
    """Regions from a form field or options (commas or spaces between): sorted, unique; None
    for none (every region). :class:`RefreshRequestError` for a name that is no region."""
    items = [text] if isinstance(text, str) else list(text or [])
    names = sorted({part for item in items for part in re.split(r"[\s,]+", item.strip().lower()) if part})
    bad = [n for n in names if not _REGION_RE.match(n)]
    if bad:
        raise RefreshRequestError(f"not a region name: {', '.join(bad[:5])} (e.g. us-east-1 or eastus)")
    return names or None


def _known_regions(session: Session, provider: str) -> tuple[str, set[str]]:
    from app.services.catalog import SnapshotNotFoundError, get_snapshot_row

    try:
        row = get_snapshot_row(session)
    except SnapshotNotFoundError:
        raise RefreshRequestError("there is no current price snapshot to refresh; load one first "
                                  "(archplan pricing import --bundled)") from None
    regions = {str(r.get("region")) for r in (row.data or {}).get("regions", [])
               if isinstance(r, dict) and r.get("provider") == provider}
    return row.snapshot_id, regions


def active_refresh(session: Session, provider: str) -> Job | None:
    """The newest queued or running refresh of ``provider``, if any."""
    rows = session.exec(select(Job).where(Job.kind == KIND, col(Job.status).in_(jobs.ACTIVE))
                        .order_by(col(Job.id).desc())).all()
    return next((j for j in rows if (j.payload or {}).get("provider") == provider), None)


def enqueue_refresh(session: Session, provider: str, regions: Sequence[str] | None = None, label: str = "",
                    *, requested_by: str = "") -> tuple[Job, bool]:
    """Queue a refresh of ``provider``; commits. Returns ``(job, created)``.

    While a refresh of the same provider is queued or running, that job is returned instead
    (``created`` False). :class:`RefreshRequestError` when there is no current snapshot or a
    region is not in it (a region needs its country and jurisdiction in the catalog first).
    """
    if provider not in PROVIDERS:
        raise RefreshRequestError(f"unknown provider {provider!r} (choose {' or '.join(PROVIDERS)})")
    regions = parse_regions(regions)
    active = active_refresh(session, provider)
    if active is not None:
        return active, False
    snapshot_id, known = _known_regions(session, provider)
    unknown = [r for r in regions or [] if r not in known]
    if unknown:
        listed = ", ".join(sorted(known)[:20]) or "none"
        raise RefreshRequestError(f"{provider} region(s) {', '.join(unknown)} are not in the current snapshot "
                                  f"{snapshot_id} (its {provider} regions: {listed})")
    if not known:
        raise RefreshRequestError(f"the current snapshot {snapshot_id} has no {provider} regions to refresh")
    label = " ".join((label or "").split())[:LABEL_CHARS] or default_label(provider, regions)
    payload = {"provider": provider, "regions": regions, "label": label, "requested_by": requested_by[:254]}
    job = jobs.enqueue(session, KIND, payload=payload, message=f"Waiting for a worker to refresh {provider} prices")
    session.commit()
    session.refresh(job)
    return job, True


def list_refresh_jobs(session: Session, limit: int = 20) -> list[Job]:
    """Refresh jobs, newest first."""
    return list(session.exec(select(Job).where(Job.kind == KIND).order_by(col(Job.id).desc()).limit(limit)).all())


def get_refresh_job(session: Session, job_id: int) -> Job | None:
    job = jobs.get_job(session, job_id)
    return job if job is not None and job.kind == KIND else None


# --------------------------------------------------------------------------- the handler


def run_refresh_job(ctx: JobContext) -> None:
    """Fetch the provider's prices and store them as the new current snapshot (kind ``refresh``)."""
    from app.services.catalog import SnapshotNotFoundError, get_snapshot, get_snapshot_row

    payload = ctx.payload
    provider = str(payload.get("provider") or "")
    if provider not in PROVIDERS:
        raise JobError(f"Unknown price provider {provider!r}; nothing was refreshed.")
    try:
        regions = parse_regions(payload.get("regions"))
    except RefreshRequestError as exc:
        raise JobError(failure_message(provider, exc)) from None
    label = str(payload.get("label") or "") or default_label(provider, regions)

    ctx.progress(0.0, "Loading the current price snapshot")
    with Session(ctx.engine) as session:
        try:
            base_row = get_snapshot_row(session)
        except SnapshotNotFoundError:
            raise JobError("There is no current price snapshot to refresh; load one first "
                           "(archplan pricing import --bundled).") from None
        base = get_snapshot(session, base_row.snapshot_id)
        session.commit()  # no transaction stays open during the fetch

    started = time.monotonic()
    try:
        result = ctx.call(fetch_prices, provider, base, regions, step_limit_s=STEP_LIMIT_S)
    except (RefreshFailed, JobCancelled, JobInterrupted, jobs.JobLost):
        raise
    except JobError as exc:  # from the runner: the process was stopped, died or did not start
        log.info("job %s: the %s refresh process stopped: %s", ctx.job_id, provider, exc)
        if time.monotonic() - started >= STEP_LIMIT_S:
            raise JobError(f"The {provider} refresh did not finish within {STEP_LIMIT_S / 60:.0f} minutes (the "
                           "price API is slow or unreachable) and was stopped; the current snapshot is "
                           "unchanged. Try again later.") from None
        raise JobError(f"The {provider} refresh process stopped unexpectedly (the error has been logged); "
                       "the current snapshot is unchanged. Try again later.") from None
    except Exception:
        log.exception("job %s: the %s refresh failed", ctx.job_id, provider)
        raise JobError(f"The {provider} refresh failed unexpectedly (the error has been logged); the current "
                       "snapshot is unchanged.") from None

    ctx.progress(0.9, "Comparing with the current snapshot")
    summary = result_summary(provider, regions, base, result)
    ctx.progress(0.95, "Storing the new snapshot" if summary["changed"] else "No price changed")
    try:
        stored = _store(ctx, result.snapshot, base.snapshot_id, label, origin=f"refresh-{provider}", summary=summary)
    except (JobError, jobs.JobLost):
        raise
    except Exception as exc:
        from app.db import database_fault

        fault = database_fault(exc)  # unreachable, read-only, full or busy: said as it is
        if fault is not None:
            raise JobError(f"The new {provider} prices could not be stored: {fault.one_line()}. "
                           "The current snapshot is unchanged.") from None
        log.exception("job %s: storing the %s refresh failed", ctx.job_id, provider)
        raise JobError(f"The new {provider} prices could not be stored (the error has been logged); the "
                       "current snapshot is unchanged. Try again.") from None
    if stored:
        log.info("job %s: %s", ctx.job_id, summary_message(summary))
        return
    ctx.check_cancel()  # cancelled at the last moment: nothing was stored
    raise jobs.JobLost(f"job {ctx.job_id} lost its claim before the snapshot could be stored")


def _store(ctx: JobContext, snapshot: Any, base_snapshot_id: str, label: str, *, origin: str,
           summary: dict[str, Any]) -> bool:
    """Import ``snapshot`` as the current one and mark the job succeeded, in one transaction.

    False (nothing stored) when the run no longer owns its job or a cancel was requested.
    ``import_snapshot`` commits its own work: here its session runs inside a transaction
    of the connection (``create_savepoint``), so its commits only release savepoints and the
    snapshot is committed with the job's row, or not at all. The job's row is written first:
    SQLite's driver opens the transaction only before a write, and the savepoints must nest
    inside it.
    """
    from app.services.catalog import current_snapshot, import_snapshot

    with ctx.engine.connect() as conn:
        tx = conn.begin()
        try:
            with Session(bind=conn) as job_session:
                owned = jobs.succeed(job_session, ctx.job_id, ctx.worker, result=summary,
                                     message=summary_message(summary))
            if not owned:
                tx.rollback()
                return False
            with Session(bind=conn, join_transaction_mode="create_savepoint") as session:
                current = current_snapshot(session)
                if current is None or current.snapshot_id != base_snapshot_id:
                    now = current.snapshot_id if current is not None else "none"
                    raise JobError(f"The current price snapshot changed while the prices were fetched (it is now "
                                   f"{now}); nothing was stored. Refresh again to apply the new prices on top "
                                   "of it.")
                import_snapshot(session, snapshot, origin=origin, label=label, base_snapshot_id=base_snapshot_id)
            tx.commit()
        except BaseException:
            if tx.is_active:
                tx.rollback()
            raise
    return True
