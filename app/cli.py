"""archplan command line: a thin face over the domain core and the database layer."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from app.accounts_cli import user_cli
from app.bundles.export_cli import export_command
from app.planner.plan_cli import plan_command
from app.planner.solve_cli import solve_command
from app.pricing_cli import pricing_cli

cli = typer.Typer(
    name="archplan",
    help="ML architecture planner and GPU capacity cost optimizer.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

db_cli = typer.Typer(help="Database migrations.", no_args_is_help=True)
cli.add_typer(db_cli, name="db")
cli.add_typer(pricing_cli, name="pricing")
cli.add_typer(user_cli, name="user")
cli.command("plan")(plan_command)
cli.command("solve")(solve_command)
cli.command("export")(export_command)


@cli.command()
def serve(
    host: str = typer.Option(None, help="Interface to bind (default: ARCHPLAN_HOST or 127.0.0.1)."),
    port: int = typer.Option(None, help="Port (default: ARCHPLAN_PORT or 8000)."),
    reload: bool = typer.Option(False, help="Reload on code changes (development)."),
    workers: int = typer.Option(1, min=1, help="Worker processes."),
) -> None:
    """Serve the web app and the REST API with uvicorn."""
    import uvicorn

    from app.settings import get_settings

    settings = _settings_or_exit(get_settings)
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        reload=reload,
        workers=workers,
        log_level=settings.log_level.lower(),
        proxy_headers=True,
    )


@cli.command()
def worker(
    concurrency: int = typer.Option(
        None, min=1, max=32, help="Jobs run at once (default: ARCHPLAN_JOB_WORKERS, at least 1).",
    ),
    name: str = typer.Option("worker", help="Name in the logs and in the claims of the jobs it runs."),
) -> None:
    """Run solve jobs from PostgreSQL until stopped (ARCHPLAN_JOB_BACKEND=procrastinate).

    SIGTERM or Ctrl-C stops it; the jobs it was running go back to the queue.
    """
    from app.jobs.worker import WorkerError, run_worker
    from app.logging_setup import configure_logging
    from app.settings import get_settings

    settings = _settings_or_exit(get_settings)
    if settings.job_backend != "procrastinate":
        err_console.print("[red]Configuration error:[/red] archplan worker runs jobs for "
                          "ARCHPLAN_JOB_BACKEND=procrastinate; set it (with a PostgreSQL ARCHPLAN_DATABASE_URL) "
                          "for the app and its workers.")
        raise typer.Exit(2)
    configure_logging(settings.log_level)
    try:
        run_worker(settings, concurrency=concurrency or max(1, settings.job_workers), name=name)
    except WorkerError as exc:
        err_console.print(f"[red]Worker error:[/red] {exc}")
        raise typer.Exit(1) from exc


@db_cli.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply migrations up to REVISION (default: head)."""
    from app.migrations import upgrade
    from app.settings import get_settings

    settings = _settings_or_exit(get_settings)
    try:
        upgrade(settings.database_url, revision)
    except Exception as exc:
        from app.db import database_fault

        fault = database_fault(exc)  # unreachable, read-only or full: one line that says so
        err_console.print(f"[red]Migration failed:[/red] {fault.one_line() if fault else exc}", highlight=False)
        raise typer.Exit(1) from exc
    console.print(f"Database at revision [bold]{revision}[/bold] ({_redact(settings.database_url)}).")


@db_cli.command("current")
def db_current() -> None:
    """Show the database's revision and the code's head revision."""
    from app.db import get_engine
    from app.migrations import current_revision, head_revision
    from app.settings import get_settings

    settings = _settings_or_exit(get_settings)
    current = current_revision(get_engine(settings.database_url))
    head = head_revision()
    state = "up to date" if current == head else "needs `archplan db upgrade`"
    console.print(f"database: {current or '(empty)'}  code head: {head}  → {state}")


def _settings_or_exit(factory):
    from pydantic import ValidationError

    try:
        return factory()
    except ValidationError as exc:
        for err in exc.errors():
            err_console.print(f"[red]Configuration error:[/red] {err['msg']}")
        raise typer.Exit(2) from exc


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def main() -> None:
    cli()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
