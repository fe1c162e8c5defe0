"""``archplan pricing …``: price snapshots in the configured database.

    archplan pricing list
    archplan pricing show [SNAPSHOT_ID] [--json]
    archplan pricing import [PATH] [--bundled] [--if-empty] [--label TEXT] [--no-current]
    archplan pricing diff A B [--json]
    archplan pricing refresh aws|azure [--region R …] [--label TEXT] [--queue]
    archplan pricing jobs [JOB_ID]

SNAPSHOT_ID may be ``current``, a full id or a unique prefix; ``diff`` also takes a path
to a snapshot JSON file.
"""

from __future__ import annotations

import json
import time
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

pricing_cli = typer.Typer(help="Price snapshots: list, show, import, diff, refresh, refresh jobs.",
                          no_args_is_help=True)
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


class Provider(str, Enum):
    aws = "aws"
    azure = "azure"


def _session():
    from sqlmodel import Session

    from app.cli import _settings_or_exit
    from app.db import get_engine
    from app.settings import get_settings

    settings = _settings_or_exit(get_settings)
    return Session(get_engine(settings.database_url))


def _fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[red]Error:[/red] {message}", highlight=False)
    return typer.Exit(code)


def _db_errors(func):
    """Turn a database that is missing its tables into a readable message."""
    import functools

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from sqlalchemy.exc import OperationalError, ProgrammingError

        from app.db import database_fault

        try:
            return func(*args, **kwargs)
        except (OperationalError, ProgrammingError) as exc:
            fault = database_fault(exc)  # unreachable, read-only, full or busy
            if fault is not None:
                raise _fail(f"{fault.one_line()}; nothing was changed") from exc
            text = str(exc.orig if getattr(exc, "orig", None) else exc).splitlines()[0]
            if "no such table" in text or "does not exist" in text or "no such column" in text:
                raise _fail(f"the database is not migrated ({text}); run `archplan db upgrade`") from exc
            raise _fail(f"database error: {text}") from exc

    return wrapper


def _price(value: float | None) -> str:
    return "—" if value is None else f"${value:,.4f}"


# --------------------------------------------------------------------------- list / show


@pricing_cli.command("list")
@_db_errors
def list_cmd() -> None:
    """List stored snapshots (newest import first)."""
    from app.services.catalog import list_snapshots

    with _session() as session:
        rows = list_snapshots(session)
        if not rows:
            console.print("No price snapshots yet. Load the bundled one: "
                          "[bold]archplan pricing import --bundled[/bold]")
            return
        table = Table(title="Price snapshots", header_style="bold")
        table.add_column("snapshot id (date-hash)", no_wrap=True)
        table.add_column("offerings", justify="right", no_wrap=True)
        table.add_column("imported", no_wrap=True)
        table.add_column("origin · label", overflow="fold")
        for r in rows:
            mark = "[bold green]★[/bold green] " if r.is_current else "  "
            table.add_row(f"{mark}{r.snapshot_id}", f"{r.offering_count:,}",
                          r.created_at.strftime("%Y-%m-%d %H:%M"),
                          r.origin + (f" · {r.label}" if r.label else ""))
        console.print(table)
        console.print("★ current snapshot", style="dim")


@pricing_cli.command("show")
@_db_errors
def show_cmd(
    snapshot_id: str = typer.Argument("current", help="Snapshot id, unique prefix or 'current'."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Counts per provider (priced GPU offerings) and the sources with their dates."""
    from app.services.catalog import SnapshotNotFoundError, get_snapshot_row, snapshot_summary

    with _session() as session:
        try:
            row = get_snapshot_row(session, snapshot_id)
        except SnapshotNotFoundError as exc:
            raise _fail(str(exc)) from None
        summary = snapshot_summary(session, row)
    if as_json:
        typer.echo(json.dumps({
            "snapshot_id": summary.snapshot_id,
            "created": summary.created,
            "label": summary.label,
            "origin": summary.origin,
            "is_current": summary.is_current,
            "offering_count": summary.offering_count,
            "base_snapshot_id": summary.base_snapshot_id,
            "description": summary.description,
            "offerings_by_provider": summary.offerings_by_provider,
            "sources": [{"id": s.get("id"), "name": s.get("name"), "url": s.get("url"), "date": s.get("date"),
                         "retrieved": s.get("retrieved")} for s in summary.sources],
            "gaps": summary.gaps,
        }, indent=2))
        return
    current = " [green](current)[/green]" if summary.is_current else ""
    console.print(f"[bold]{summary.snapshot_id}[/bold]{current}  dated {summary.created}, "
                  f"{summary.origin}{' · ' + summary.label if summary.label else ''}")
    if summary.description:
        console.print(summary.description, style="dim", highlight=False)
    counts = Table(title="Priced GPU offerings by provider", header_style="bold")
    counts.add_column("provider")
    counts.add_column("offerings", justify="right")
    for provider, n in summary.offerings_by_provider.items():
        counts.add_row(provider, f"{n:,}")
    counts.add_row("[bold]total[/bold]", f"[bold]{sum(summary.offerings_by_provider.values()):,}[/bold]")
    console.print(counts)
    sources = Table(title="Sources", header_style="bold")
    for name in ("id", "name", "date", "url"):
        sources.add_column(name, overflow="fold")
    for s in summary.sources:
        sources.add_row(s.get("id", ""), s.get("name", ""), s.get("date", ""), s.get("url", ""))
    console.print(sources)


# --------------------------------------------------------------------------- import


def _print_issues(issues) -> None:
    table = Table(title=f"{len(issues)} problem(s); nothing was imported", header_style="bold red")
    table.add_column("row", justify="right")
    table.add_column("column")
    table.add_column("problem", overflow="fold")
    for i in issues:
        table.add_row("" if i.row is None else str(i.row), i.column or "", i.message)
    err_console.print(table)


@pricing_cli.command("import")
@_db_errors
def import_cmd(
    path: Annotated[Path | None, typer.Argument(help="A snapshot .json or a .csv of offerings.",
                                                dir_okay=False)] = None,
    bundled: bool = typer.Option(False, "--bundled", help="Import the bundled pricing_data/snapshot.json."),
    if_empty: bool = typer.Option(False, "--if-empty", help="Only if the database has no snapshot yet."),
    label: str = typer.Option("", "--label", help="A note shown in `pricing list`."),
    current: bool = typer.Option(True, "--current/--no-current", help="Make it the current snapshot."),
) -> None:
    """Import a snapshot (JSON) or offerings (CSV, applied on top of the current snapshot)."""
    from app.catalog.importing import ImportValidationError, read_import_file
    from app.catalog.schema import DEFAULT_SNAPSHOT_PATH, load_snapshot
    from app.services.catalog import current_snapshot, get_snapshot, import_snapshot, list_snapshots

    if bundled == (path is not None):
        raise _fail("give either PATH or --bundled", code=2)
    with _session() as session:
        if if_empty:
            existing = list_snapshots(session)
            if existing:
                cur = next((r.snapshot_id for r in existing if r.is_current), "none")
                console.print(f"The database already has {len(existing)} price snapshot(s) "
                              f"(current: {cur}); nothing imported.")
                return
        base_row = current_snapshot(session)
        started = time.perf_counter()
        if bundled:
            if not DEFAULT_SNAPSHOT_PATH.is_file():
                raise _fail(f"the bundled snapshot {DEFAULT_SNAPSHOT_PATH} is missing")
            try:
                snapshot = load_snapshot()
            except ValueError as exc:
                raise _fail(f"the bundled snapshot is not valid: {exc}") from None
            origin, label = "bundled", label or "Bundled snapshot"
        else:
            assert path is not None
            base = get_snapshot(session) if base_row is not None else None
            try:
                snapshot = read_import_file(path, base=base)
            except ImportValidationError as exc:
                _print_issues(exc.issues)
                raise typer.Exit(1) from None
            origin, label = f"import-{path.suffix.lstrip('.').lower() or 'file'}", label or path.name
        derived = path is not None and path.suffix.lower() == ".csv" and base_row is not None
        known = {r.snapshot_id for r in list_snapshots(session)}
        row = import_snapshot(session, snapshot, origin=origin, label=label, make_current=current,
                              base_snapshot_id=base_row.snapshot_id if derived and base_row else None)
        elapsed = time.perf_counter() - started
        state = "current" if row.is_current else "not current"
        if snapshot.snapshot_id in known:
            console.print(f"Snapshot [bold]{row.snapshot_id}[/bold] is already stored ({state}); nothing new written.")
        else:
            console.print(f"Imported [bold]{row.snapshot_id}[/bold]: {row.offering_count:,} offerings "
                          f"in {elapsed:.2f} s ({state}).")


# --------------------------------------------------------------------------- diff


def _load_for_diff(session, ref: str):
    from app.catalog.importing import ImportValidationError, read_import_file
    from app.services.catalog import SnapshotNotFoundError, get_snapshot

    p = Path(ref)
    if p.suffix.lower() == ".json" and p.is_file():
        try:
            return read_import_file(p, base=None)
        except ImportValidationError as exc:
            raise _fail(f"{ref}: {exc}") from None
    try:
        return get_snapshot(session, ref)
    except SnapshotNotFoundError as exc:
        raise _fail(str(exc)) from None


@pricing_cli.command("diff")
@_db_errors
def diff_cmd(
    a: str = typer.Argument(..., help="Older snapshot: id, prefix, 'current' or a .json file."),
    b: str = typer.Argument(..., help="Newer snapshot: id, prefix, 'current' or a .json file."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    limit: int = typer.Option(200, min=0, help="Rows per table (0 = all)."),
) -> None:
    """What changed from A to B: offerings added and removed, prices changed (old → new, %)."""
    from app.catalog.diff import diff_snapshots

    with _session() as session:
        old, new = _load_for_diff(session, a), _load_for_diff(session, b)
    d = diff_snapshots(old, new)
    if as_json:
        typer.echo(json.dumps({**d.model_dump(mode="json"), "summary": d.summary()}, indent=2))
        return
    s = d.summary()
    console.print(f"[bold]{d.from_snapshot}[/bold] → [bold]{d.to_snapshot}[/bold]: "
                  f"{s['added']} added, {s['removed']} removed, {s['price_changes']} price change(s) on "
                  f"{s['offerings_changed']} offering(s) ({s['increases']} up, {s['decreases']} down)")
    if d.is_empty:
        return

    def cap(items: list) -> list:
        return items if limit == 0 else items[:limit]

    if d.added or d.removed:
        t = Table(title="Offerings added / removed", header_style="bold")
        for name, kw in (("", {}), ("offering", {"overflow": "fold"}), ("GPU", {}),
                         ("on-demand $/h", {"justify": "right"})):
            t.add_column(name, **kw)
        for mark, items in (("[green]+[/green]", d.added), ("[red]−[/red]", d.removed)):
            for o in cap(items):
                t.add_row(mark, o.key, f"{o.gpu_count}× {o.gpu_model}", _price(o.on_demand_hourly))
        console.print(t)
    if d.changed:
        t = Table(title="Price changes", header_style="bold")
        for name, kw in (("offering", {"overflow": "fold"}), ("price", {"overflow": "fold"}),
                         ("old", {"justify": "right"}), ("new", {"justify": "right"}), ("%", {"justify": "right"})):
            t.add_column(name, **kw)
        for c in cap(d.changed):
            pct = "" if c.pct is None else (f"[red]+{c.pct:.2f}%[/red]" if c.pct > 0 else f"[green]{c.pct:.2f}%[/green]")
            t.add_row(c.key, c.price, _price(c.old), _price(c.new), pct)
        console.print(t)
    hidden = max(0, len(d.changed) - limit, len(d.added) - limit, len(d.removed) - limit) if limit else 0
    if hidden:
        console.print(f"(tables cut at {limit} rows; use --limit 0 or --json for everything)", style="dim")


# --------------------------------------------------------------------------- refresh


@pricing_cli.command("refresh")
@_db_errors
def refresh_cmd(
    provider: Annotated[Provider, typer.Argument(help="Provider whose public price API to read.")],
    region: Annotated[list[str] | None, typer.Option(
        "--region", help="Region to refresh (repeatable; default: every region in the snapshot).")] = None,
    label: str = typer.Option("", "--label", help="A note shown in `pricing list`."),
    queue: bool = typer.Option(False, "--queue", help="Queue it as a job for the app's job runner or an "
                                                      "`archplan worker` instead of running it here."),
) -> None:
    """Fetch fresh prices from the provider's public API and store them as a new current snapshot.

    On any failure the current snapshot stays as it is.
    """
    from app.jobs.refresh import (
        RefreshRequestError,
        call_refresh,
        default_label,
        failure_message,
        refresh_function,
        result_summary,
    )
    from app.services.catalog import (
        SnapshotNotFoundError,
        get_snapshot,
        get_snapshot_row,
        import_snapshot,
    )

    name = provider.value
    if queue:
        _queue_refresh(name, region or None, label)
        return
    try:
        func, error_types = refresh_function(name)
    except RefreshRequestError as exc:
        raise _fail(str(exc)) from None
    with _session() as session:
        try:
            base_row = get_snapshot_row(session)
        except SnapshotNotFoundError as exc:
            raise _fail(f"{exc} (`archplan pricing import --bundled`)") from None
        base = get_snapshot(session, base_row.snapshot_id)
        console.print(f"Refreshing {name} prices on top of {base.snapshot_id} …")
        started = time.perf_counter()
        try:
            result = call_refresh(func, base, region or None)
        except error_types as exc:
            raise _fail(failure_message(name, exc)) from None
        snapshot = result.snapshot
        row = import_snapshot(session, snapshot, origin=f"refresh-{name}",
                              label=label or default_label(name, region or None),
                              base_snapshot_id=base.snapshot_id)
        elapsed = time.perf_counter() - started
    for w in getattr(result, "warnings", []) or []:
        err_console.print(f"[yellow]warning:[/yellow] {w}", highlight=False)
    summary = result_summary(name, region or None, base, result)
    counts = ", ".join(f"{k} {n}" for k, n in summary["counts"].items())
    if row.snapshot_id == base.snapshot_id:
        console.print(f"No price changed; {row.snapshot_id} stays current ({elapsed:.1f} s).")
        return
    console.print(f"Stored [bold]{row.snapshot_id}[/bold] as the current snapshot in {elapsed:.1f} s"
                  + (f": {counts}" if counts else "")
                  + f" ({summary['price_changes']['price_changes']} price change(s)). "
                  f"Compare: archplan pricing diff {base.snapshot_id} {row.snapshot_id}")


def _queue_refresh(name: str, regions: list[str] | None, label: str) -> None:
    from app.jobs.refresh import RefreshRequestError, enqueue_refresh

    with _session() as session:
        try:
            job, created = enqueue_refresh(session, name, regions, label, requested_by="cli")
        except RefreshRequestError as exc:
            raise _fail(str(exc)) from None
        job_id, status = job.id, job.status
    if created:
        console.print(f"Queued the {name} refresh as job [bold]{job_id}[/bold].")
    else:
        console.print(f"The {name} refresh job [bold]{job_id}[/bold] is already {status}; nothing new was queued.")
    console.print(f"It runs in the served app's job runner (`archplan serve`) or in an `archplan worker`. "
                  f"Follow it with: archplan pricing jobs {job_id}", highlight=False)


_STATUS_STYLE = {"queued": "yellow", "running": "cyan", "succeeded": "green", "failed": "red", "cancelled": "dim"}


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "—"


@pricing_cli.command("jobs")
@_db_errors
def jobs_cmd(
    job_id: Annotated[int | None, typer.Argument(help="A refresh job to show in full.")] = None,
    limit: int = typer.Option(10, min=1, max=200, help="Jobs to list (newest first)."),
) -> None:
    """Queued price refreshes: list them, or show one job's status, progress, result or error."""
    from app.jobs.refresh import get_refresh_job, list_refresh_jobs

    with _session() as session:
        if job_id is None:
            rows = list_refresh_jobs(session, limit)
            if not rows:
                console.print("No refresh jobs yet. Queue one: [bold]archplan pricing refresh aws --queue[/bold]")
                return
            table = Table(title="Price refresh jobs", header_style="bold")
            for name, kw in (("job", {"justify": "right"}), ("provider", {}), ("status", {}),
                             ("progress", {"justify": "right"}), ("queued", {"no_wrap": True}),
                             ("message", {"overflow": "fold"})):
                table.add_column(name, **kw)
            for j in rows:
                style = _STATUS_STYLE.get(j.status, "")
                table.add_row(str(j.id), str((j.payload or {}).get("provider", "")),
                              f"[{style}]{j.status}[/{style}]" if style else j.status,
                              f"{round((j.progress or 0) * 100)} %", _when(j.created_at),
                              escape(j.error if j.status == "failed" and j.error else j.message))
            console.print(table)
            return
        job = get_refresh_job(session, job_id)
        if job is None:
            raise _fail(f"no refresh job {job_id}")
    _print_job(job)


def _print_job(job) -> None:
    payload = job.payload or {}
    style = _STATUS_STYLE.get(job.status, "")
    regions = ", ".join(payload.get("regions") or []) or "every region"
    console.print(f"Job [bold]{job.id}[/bold]: {payload.get('provider', '?')} refresh ({regions}) — "
                  + (f"[{style}]{job.status}[/{style}]" if style else job.status)
                  + (f", {round((job.progress or 0) * 100)} %" if job.status == "running" else ""))
    console.print(f"queued {_when(job.created_at)} · started {_when(job.started_at)} · "
                  f"finished {_when(job.finished_at)}", style="dim", highlight=False)
    if job.status == "failed":
        err_console.print(f"[red]Error:[/red] {escape(job.error or 'the refresh stopped without a result')}",
                          highlight=False)
        return
    if job.message:
        console.print(job.message, markup=False, highlight=False)
    r = job.result if job.status == "succeeded" else None
    if not r:
        return
    counts = ", ".join(f"{k} {n}" for k, n in (r.get("counts") or {}).items())
    p = r.get("price_changes") or {}
    if counts:
        console.print(f"Offerings: {counts}", markup=False, highlight=False)
    if p:
        console.print(f"Price changes: {p.get('price_changes', 0)} on {p.get('offerings_changed', 0)} offering(s) "
                      f"({p.get('increases', 0)} up, {p.get('decreases', 0)} down); "
                      f"{p.get('added', 0)} added, {p.get('removed', 0)} removed", highlight=False)
    if r.get("changed"):
        console.print(f"Compare: archplan pricing diff {r.get('base_snapshot_id')} {r.get('snapshot_id')}",
                      highlight=False)
    warnings = r.get("warnings") or []
    for w in warnings:
        err_console.print(f"[yellow]warning:[/yellow] {escape(str(w))}", highlight=False)
    more = int(r.get("warning_count") or 0) - len(warnings)
    if more > 0:
        err_console.print(f"… and {more} more warning(s)", highlight=False)
