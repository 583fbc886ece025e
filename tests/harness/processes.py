"""Stopping the service processes the tests start."""

from __future__ import annotations

import subprocess


def stop_process(process: subprocess.Popen[bytes] | None, timeout: float = 10) -> None:
    """SIGTERM, wait ``timeout`` seconds, then SIGKILL; a process already gone is fine."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)
