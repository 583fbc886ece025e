"""A background loop of an api-server process (the dispatcher, the applier of Slack approval clicks): one daemon
thread per process, started on the gateway's first request and again after a fork, woken early by new work."""

from __future__ import annotations

import os
import threading


class BackgroundLoop:
    """Runs :meth:`_loop` in a daemon thread named ``name``; :meth:`_loop` waits on ``_wake`` and ends on ``_stop``."""

    name = "officeflow-background"

    def __init__(self) -> None:
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def _running_here(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and self._pid == os.getpid()

    def ensure_started(self) -> None:
        if self._running_here():
            return
        with self._lock:
            if self._running_here():
                return
            self._stop.clear()
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
            self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        raise NotImplementedError
