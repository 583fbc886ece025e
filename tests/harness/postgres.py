"""A throw-away PostgreSQL cluster for the tests: initdb in a temp dir, 127.0.0.1, a free port.

The tests run it without durability (``fsync``, ``synchronous_commit`` and ``full_page_writes`` off: nothing
survives a crash, and nothing has to); a benchmark that measures commits passes ``durable=True`` for
PostgreSQL's defaults."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.harness.ports import free_port


def _bin_dir() -> Path:
    configured = os.environ.get("OFFICEFLOW_POSTGRES_BIN")
    candidates = [Path(configured)] if configured else sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    for candidate in reversed(candidates):
        if (candidate / "initdb").exists():
            return candidate
    raise RuntimeError("PostgreSQL server binaries not found: apt-get install postgresql (./run.sh test does)")


class PostgresCluster:
    """Start with :meth:`start`, stop with :meth:`stop`; :meth:`url` names a database in it."""

    def __init__(self, durable: bool = False) -> None:
        self.bin = _bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="officeflow-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self._as_postgres = os.geteuid() == 0  # PostgreSQL refuses to run as root
        self.durable = durable

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(a) for a in args]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120)

    def start(self) -> PostgresCluster:
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(self.bin / "initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "-E", "UTF8")
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=200"
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(self.bin / "pg_ctl", "-D", self.data, "-o", options, "-l", self.root / "postgres.log",
                  "-w", "-t", "60", "start")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            probe = subprocess.run([self.bin / "pg_isready", "-h", "127.0.0.1", "-p", str(self.port)],
                                   capture_output=True)
            if probe.returncode == 0:
                return self
            time.sleep(0.2)
        raise RuntimeError(f"PostgreSQL did not start; see {self.root / 'postgres.log'}")

    def restart(self, mode: str = "fast") -> None:
        """Stop (``fast``: roll back open transactions, close every connection) and start again, same port."""
        self._run(self.bin / "pg_ctl", "-D", self.data, "-m", mode, "-l", self.root / "postgres.log", "-w", "-t", "60",
                  "restart")  # -l: the server's output to its log, not to this call's pipe (which would never end)

    def stop(self) -> None:
        if self.data.exists():
            with contextlib.suppress(subprocess.CalledProcessError):
                self._run(self.bin / "pg_ctl", "-D", self.data, "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str, driver: str = "postgresql+psycopg2") -> str:
        return f"{driver}://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str, template: str | None = None) -> str:
        sql = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
        self.psql(sql)
        return self.url(name)

    def psql(self, sql: str, database: str = "postgres") -> str:
        result = subprocess.run(
            [self.bin / "psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database,
             "-v", "ON_ERROR_STOP=1", "-Atc", sql],
            check=True, capture_output=True, text=True, timeout=60,
        )
        return result.stdout.strip()
