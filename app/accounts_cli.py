"""``archplan user …``: users on the command line (the first admin comes from here).

    archplan user create EMAIL [--name TEXT] [--admin] [--workspace SLUG --role ROLE]
    archplan user list

The password is asked for twice on a terminal, or read from standard input with
``--password-stdin`` (for scripts: ``echo "$PW" | archplan user create … --password-stdin``).
An admin created here also becomes admin of the ``default`` workspace when it exists, so
designs made before accounts existed stay reachable.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from app.pricing_cli import _db_errors, _fail, _session

user_cli = typer.Typer(help="Users: create, list.", no_args_is_help=True)
console = Console(soft_wrap=True)


@user_cli.command("create")
@_db_errors
def create(
    email: Annotated[str, typer.Argument(help="The user's e-mail address (their sign-in name).")],
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    admin: Annotated[bool, typer.Option("--admin", help="May create users; admin of the default workspace.")] = False,
    workspace: Annotated[str, typer.Option(help="Also add the user to this workspace (slug).")] = "",
    role: Annotated[str, typer.Option(help="Role in --workspace: viewer, editor or admin.")] = "editor",
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
) -> None:
    """Create a user who can sign in to the browser."""
    from sqlmodel import select

    from app.models import Workspace
    from app.services import accounts as acc
    from app.settings import get_settings

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    n = get_settings().password_scrypt_n
    with _session() as session:
        try:
            user = acc.create_user(session, email, password, name=name, is_admin=admin, scrypt_n=n)
            joined = []
            targets = [(workspace, role)] if workspace else []
            if admin and workspace != "default":
                targets.append(("default", "admin"))
            for slug, r in targets:
                ws = session.exec(select(Workspace).where(Workspace.slug == slug)).first()
                if ws is None:
                    if slug == workspace:
                        raise _fail(f"No workspace has the slug {slug!r}.")
                    continue
                acc.add_member(session, ws.id, user.email, r)
                joined.append(f"{ws.name} ({r})")
            acc.record(session, None, "user.create", target=f"user:{user.id}",
                       detail={"email": user.email, "admin": admin})
            created = user.email
        except acc.AccountError as exc:
            raise _fail(str(exc)) from None
    console.print(f"Created {created}{' (admin)' if admin else ''}"
                  + (f"; member of {', '.join(joined)}" if joined else "") + ".", highlight=False)


@user_cli.command("list")
@_db_errors
def list_users() -> None:
    """List users."""
    from sqlmodel import col, select

    from app.models import User

    with _session() as session:
        users = session.exec(select(User).order_by(col(User.email))).all()
    table = Table("e-mail", "name", "admin", "disabled", "last sign-in")
    for u in users:
        table.add_row(u.email, u.name, "yes" if u.is_admin else "", "yes" if u.disabled else "",
                      u.last_login_at.isoformat(timespec="minutes") if u.last_login_at else "never")
    console.print(table)
