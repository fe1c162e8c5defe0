"""archplan command line: a thin face over the domain core and the database layer."""

from __future__ import annotations

import typer

cli = typer.Typer(
    name="archplan",
    help="ML architecture planner and GPU capacity cost optimizer.",
    no_args_is_help=True,
    add_completion=False,
)


def main() -> None:
    cli()
