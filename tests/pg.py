"""A real, throw-away PostgreSQL server for tests (Debian's server binaries).

``initdb`` and ``pg_ctl`` refuse to run as root, so when the tests run as root the server is
started as the ``postgres`` system user that Debian's package creates.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(
            f"PostgreSQL server binary {name!r} not found; `make test` installs Debian's postgresql."
        )
    return found[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PostgresServer:
    root: Path
    port: int
    run_as: str | None

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def _cmd(self, *args: str) -> list[str]:
        return (["runuser", "-u", self.run_as, "--"] if self.run_as else []) + list(args)

    @classmethod
    def start(cls) -> PostgresServer:
        run_as = None
        root = Path(tempfile.mkdtemp(prefix="archplan-pg-"))
        if os.geteuid() == 0:
            run_as = "postgres"
            user = pwd.getpwnam(run_as)
            os.chown(root, user.pw_uid, user.pw_gid)
        server = cls(root=root, port=_free_port(), run_as=run_as)
        subprocess.run(
            server._cmd(_bin("initdb"), "-D", str(server.data_dir), "-U", "archplan", "-A", "trust",
                        "-E", "UTF8", "--no-sync"),
            check=True, capture_output=True,
        )
        server.pg_ctl("start", "-w", "-t", "60", "-l", str(root / "server.log"),
                      "-o", f"-p {server.port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off")
        return server

    def pg_ctl(self, *args: str) -> None:
        subprocess.run(self._cmd(_bin("pg_ctl"), "-D", str(self.data_dir), *args), check=True,
                       capture_output=True)

    def stop(self) -> None:
        try:
            self.pg_ctl("stop", "-m", "fast", "-w")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://archplan@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "t") -> str:
        """Create an empty database and return its SQLAlchemy URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=archplan dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)
