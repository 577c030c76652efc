"""A throwaway PostgreSQL cluster for the tests: initdb + postgres under a temp dir, unix socket only.

Debian's ``postgresql`` package (``.ci/run`` and ``make test`` install it). ``initdb`` and ``postgres`` refuse to
run as root, so as root they run as the ``postgres`` user through ``runuser -u postgres --`` (the cluster's
directory is handed to that user). No TCP port: the socket lives in the cluster's directory, so parallel runs
never clash. Durability is off (fsync, full_page_writes): nothing in it outlives the test session.

One template database is migrated once with the real Alembic migrations (``Database.upgrade``); each test gets
a fresh copy of it (``CREATE DATABASE … TEMPLATE``), dropped afterwards.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from broadcaster.db import Database

INSTALL_HINT = "sudo apt-get install -y postgresql"
TEMPLATE = "loaphuong_template"


class PostgresUnavailable(RuntimeError):
    pass


def pg_bindir() -> Path | None:
    """The directory of initdb/postgres: Debian keeps them in /usr/lib/postgresql/<version>/bin (newest wins)."""
    found = shutil.which("initdb")
    if found and Path(found).resolve().with_name("postgres").exists():
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return Path(candidates[-1]).parent if candidates else None


class PgCluster:
    def __init__(self) -> None:
        bindir = pg_bindir()
        if bindir is None:
            raise PostgresUnavailable(f"PostgreSQL is not installed: run `{INSTALL_HINT}`")
        self.bindir = bindir
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            if shutil.which("runuser") is None or subprocess.run(["id", "-u", "postgres"], capture_output=True,
                                                                  check=False).returncode != 0:
                raise PostgresUnavailable("tests run as root and need the `postgres` user and runuser to start "
                                          f"PostgreSQL (run `{INSTALL_HINT}`)")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        # A short path: a unix socket's path is limited to ~107 bytes.
        self.root = Path(tempfile.mkdtemp(prefix="lp-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root
        self.proc: subprocess.Popen[bytes] | None = None
        self._names = itertools.count(1)

    def _run(self, *args: str) -> None:
        result = subprocess.run([*self.as_user, *args], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise PostgresUnavailable(f"{' '.join(args[:1])} failed: {result.stdout}{result.stderr}")

    def start(self, timeout: float = 30.0) -> PgCluster:
        if self.as_user:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
                  "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
        log = open(self.root / "postgres.log", "wb")  # noqa: SIM115 - kept open for the server's life
        self.proc = subprocess.Popen(
            [*self.as_user, str(self.bindir / "postgres"), "-D", str(self.data), "-k", str(self.socket_dir),
             "-c", "listen_addresses=", "-c", "fsync=off", "-c", "full_page_writes=off",
             "-c", "synchronous_commit=off", "-c", "max_connections=200", "-c", "shared_buffers=64MB"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise PostgresUnavailable(f"postgres exited: {(self.root / 'postgres.log').read_text()[-2000:]}")
            if (self.socket_dir / ".s.PGSQL.5432").exists() and self._ping():
                return self
            time.sleep(0.05)
        self.stop()
        raise PostgresUnavailable("postgres did not accept connections in time")

    def _ping(self) -> bool:
        try:
            with psycopg.connect(**self.conninfo("postgres"), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def conninfo(self, dbname: str) -> dict[str, str]:
        return {"host": str(self.socket_dir), "user": "postgres", "dbname": dbname}

    def url(self, dbname: str) -> str:
        return f"postgresql+psycopg://postgres@/{dbname}?host={self.socket_dir}"

    def execute(self, sql: str) -> None:
        """Run one statement outside a transaction (CREATE/DROP DATABASE) in the maintenance database."""

        with psycopg.connect(**self.conninfo("postgres"), autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self, template: str | None = None) -> str:
        name = f"t{os.getpid()}_{next(self._names)}"
        # PostgreSQL 15's default strategy (WAL_LOG): FILE_COPY's checkpoints cost more once tests dirtied buffers.
        self.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template or "template1"}"')
        return name

    def drop_database(self, name: str) -> None:
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def migrated_template(self) -> str:
        """The template every test database copies: the schema made by the real migrations (upgrade from
        empty), built once."""
        if not getattr(self, "_template_ready", False):

            self.execute(f'CREATE DATABASE "{TEMPLATE}"')
            db = Database(self.url(TEMPLATE))
            try:
                db.upgrade()
            finally:
                db.dispose()
            self._template_ready = True
        return TEMPLATE

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            # SIGINT to the postmaster itself (not to runuser): "fast" shutdown, open sessions are cut.
            try:
                os.kill(int((self.data / "postmaster.pid").read_text().split()[0]), signal.SIGINT)
            except (OSError, ValueError, IndexError):
                self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        shutil.rmtree(self.root, ignore_errors=True)
