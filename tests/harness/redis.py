"""A throw-away Redis server for the tests: 127.0.0.1, a free port, no persistence, stopped with the tests."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from tests.harness.ports import free_port
from tests.harness.processes import stop_process


def _binary() -> str:
    found = shutil.which("redis-server")
    if found is None:
        raise RuntimeError("redis-server not found: apt-get install -y redis-server")
    return found


class RedisServer:
    """Start with :meth:`start`, stop with :meth:`stop`; clients connect to :attr:`url`.

    The server runs in the foreground as our child (not daemonized) so :meth:`stop` can terminate it,
    and with ``--save "" --appendonly no`` so it writes nothing to disk.
    """

    def __init__(self, port: int | None = None) -> None:
        self.binary = _binary()
        self.port = port if port is not None else free_port()
        self.root = Path(tempfile.mkdtemp(prefix="officeflow-redis-"))
        self.log = self.root / "redis.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15) -> RedisServer:
        with self.log.open("wb") as log:
            self._process = subprocess.Popen(
                [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(self.root)],
                stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            if self._answers_ping():
                return self
            time.sleep(0.05)
        tail = self.log.read_text(errors="replace")[-2000:]
        self.stop()
        raise RuntimeError(f"redis-server on port {self.port} did not answer PING:\n{tail}")

    def _answers_ping(self) -> bool:
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=0.5, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def stop(self) -> None:
        stop_process(self._process)
        self._process = None
        with contextlib.suppress(OSError):
            shutil.rmtree(self.root)
