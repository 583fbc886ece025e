"""A TCP server that accepts connections and never answers: a hung dependency, for timeout tests."""

from __future__ import annotations

import socket
import threading
from types import TracebackType


class SilentServer:
    """``with SilentServer() as server:`` -> ``server.port`` accepts, reads nothing, writes nothing."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(64)
        self.port: int = self._socket.getsockname()[1]
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="silent-server", daemon=True)

    def _accept(self) -> None:
        self._socket.settimeout(0.2)
        while not self._stopped.is_set():
            try:
                connection, _ = self._socket.accept()
            except OSError:
                continue
            self._held.append(connection)  # held open, never read nor written
            self.accepted += 1

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._stopped.set()
        self._thread.join(5)
        for connection in self._held:
            connection.close()
        self._socket.close()
