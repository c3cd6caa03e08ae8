"""PostgreSQL (Debian packages) as Omium's own instance, run as the unprivileged service user."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from omium.infra.localstack._component import Component, Launch, error_text
from omium.infra.localstack._dist import postgres_bindir
from omium.infra.localstack._errors import StackError
from omium.infra.localstack._proc import chown_tree, ensure_traversable, run_once

if TYPE_CHECKING:
    import psycopg

log = structlog.get_logger(__name__)

SUPERUSER = "postgres"
# Unix socket paths are limited to ~107 bytes (sun_path); deep checkouts need a fallback.
_MAX_SOCKET_PATH = 100


class Postgres(Component):
    """The event store and relational read models' database server."""

    name = "postgres"
    marker = "postgres"
    # SIGTERM is "smart" shutdown and waits for every client to disconnect (other engineers'
    # pools, a forgotten psql); SIGINT is "fast": it ends sessions and checkpoints cleanly.
    stop_signal = signal.SIGINT
    needs_service_user = True

    @property
    def address(self) -> str:
        """``host:port``."""
        pg = self.settings.postgres
        return f"{pg.host}:{pg.port}"

    def ports(self) -> list[tuple[str, int]]:
        """The TCP listener."""
        return [(self.settings.postgres.host, self.settings.postgres.port)]

    @property
    def data_dir(self) -> Path:
        """The cluster's PGDATA."""
        return self.home / "data"

    @property
    def socket_dir(self) -> Path:
        """Folder of the Unix socket (only the service user and root can enter it)."""
        inside = self.home / "run"
        if len(f"{inside}/.s.PGSQL.{self.settings.postgres.port}") <= _MAX_SOCKET_PATH:
            return inside
        digest = hashlib.sha256(str(self.home).encode()).hexdigest()[:10]
        return Path(tempfile.gettempdir()) / f"omium-pg-{digest}"

    def _make_dirs(self) -> None:
        for folder in (self.home, self.socket_dir):
            folder.mkdir(parents=True, exist_ok=True)
            os.chmod(folder, 0o700)
        if self.account is not None and self.home.stat().st_uid != self.account.uid:
            chown_tree(self.home, self.account)
        if self.account is not None and self.socket_dir.stat().st_uid != self.account.uid:
            chown_tree(self.socket_dir, self.account)
        ensure_traversable(self.home, self.account)

    def prepare(self) -> Launch:
        """Create the folders, ``initdb`` once, and describe the postmaster launch."""
        bindir = postgres_bindir()
        self._make_dirs()
        version_file = self.data_dir / "PG_VERSION"
        if not version_file.exists():
            log.info("initialising PostgreSQL cluster", path=str(self.data_dir))
            run_once(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    f"--username={SUPERUSER}",
                    # Local socket: trust, because only the service user and root can reach it.
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "--encoding=UTF8",
                    "--no-locale",
                ],
                what="initdb",
                cwd=self.home,
                account=self.account,
            )
        elif version_file.read_text().strip() != bindir.parent.name:
            raise StackError(
                f"{self.data_dir} holds a PostgreSQL {version_file.read_text().strip()} cluster "
                f"but the installed server is {bindir.parent.name}; move the folder away"
            )
        pg = self.settings.postgres
        return Launch(
            cmd=[
                str(bindir / "postgres"),
                "-D",
                str(self.data_dir),
                "-p",
                str(pg.port),
                "-k",
                str(self.socket_dir),
                "-c",
                f"listen_addresses={pg.host}",
                # The suite runs many processes with pooled connections at once (gateways,
                # relays, processors, workers, embedded savers): 200 ran out in CI.
                "-c",
                "max_connections=500",
            ],
            cwd=self.home,
            env={"LC_ALL": "C"},
            account=self.account,
        )

    def _isready(self, timeout_s: float) -> str | None:
        pg = self.settings.postgres
        cmd = [
            str(postgres_bindir() / "pg_isready"),
            "-q",
            "-h",
            pg.host,
            "-p",
            str(pg.port),
            "-t",
            str(max(1, int(timeout_s))),
        ]
        result = subprocess.run(cmd, capture_output=True, timeout=timeout_s + 5, check=False)
        return None if result.returncode == 0 else f"pg_isready exit {result.returncode}"

    def _superuser_connect(self, timeout_s: float) -> psycopg.Connection[Any]:
        import psycopg

        return psycopg.connect(
            host=str(self.socket_dir),
            port=self.settings.postgres.port,
            user=SUPERUSER,
            dbname="postgres",
            connect_timeout=max(1, int(timeout_s)),
            autocommit=True,
        )

    def startup_probe(self, timeout_s: float) -> str | None:
        """pg_isready, then a superuser session over the socket (the app role may not exist)."""
        import psycopg

        reason = self._isready(timeout_s)
        if reason:
            return reason
        try:
            with self._superuser_connect(timeout_s) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as exc:
            return error_text(exc)
        return None

    def after_start(self) -> None:
        """Create (or update the password of) the application role and its database."""
        from psycopg import sql

        pg = self.settings.postgres
        role, password = pg.user, pg.password.get_secret_value()
        with self._superuser_connect(10) as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            # CREATEDB so tests can make throwaway databases; not superuser.
            conn.execute(
                sql.SQL("{} ROLE {} LOGIN CREATEDB PASSWORD {}").format(
                    sql.SQL(verb), sql.Identifier(role), sql.Literal(password)
                )
            )
            has_db = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (pg.database,)
            ).fetchone()
            if not has_db:
                log.info("creating database", database=pg.database, owner=role)
                conn.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(pg.database), sql.Identifier(role)
                    )
                )

    def probe(self, timeout_s: float) -> str | None:
        """pg_isready, then a real login with the application's credentials."""
        import psycopg

        reason = self._isready(timeout_s)
        if reason:
            return reason
        try:
            with psycopg.connect(
                self.settings.postgres.dsn(), connect_timeout=max(1, int(timeout_s))
            ) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as exc:
            return error_text(exc)
        return None
