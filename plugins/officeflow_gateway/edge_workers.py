"""The edge gateway's worker processes, each listening on a socket of its own (``SO_REUSEPORT``).

uvicorn's ``--workers`` gives every worker the one socket its supervisor bound, and the worker whose event loop
wakes first accepts every connection waiting (asyncio accepts up to the backlog per wake-up): when a sender (or a
load balancer) opens its keep-alive connections at once, one worker may get all of them and the others idle. The
benchmark saw it in one run of three (64 of 64 connections on one worker, half the rate: docs/BENCHMARKS.md, fifth
round). Here each worker binds its own socket to the same address with ``SO_REUSEPORT``, and the kernel spreads new
connections over the workers' sockets by their addresses' hash.

The supervisor (this module's :func:`serve`) starts ``workers`` processes, restarts one that dies (a worker killed
by the out-of-memory killer, say), stops when one cannot start (a port held by another program, an app that fails
to load: uvicorn's exit code 3, and restarting would spin) and on SIGTERM or SIGINT asks each worker to stop
gracefully (uvicorn's own shutdown: requests in flight are answered), killing the ones still up after the grace.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import threading
import time
from multiprocessing.process import BaseProcess
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE

log = logging.getLogger(__name__)
RESTART_PAUSE_SECONDS = 1.0  # before a dead worker's replacement: a crash loop costs one start a second, not a spin
STOP_GRACE_SECONDS = 25.0  # uvicorn's graceful shutdown (timeout_graceful_shutdown) plus its lifespan's end


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host``:``port`` that other sockets with ``SO_REUSEPORT`` (the other workers') may
    bind too; uvicorn's server listens on it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def run_worker(config_kwargs: dict[str, Any]) -> None:
    """One worker process: uvicorn serving on its own socket. Exits with :data:`STARTUP_FAILURE` when the port
    cannot be bound."""
    config = uvicorn.Config(**config_kwargs)
    try:
        sock = reuse_port_socket(config.host, config.port)
    except OSError as exc:
        logging.basicConfig()
        log.error("cannot listen on %s:%s: %s", config.host, config.port, exc)
        raise SystemExit(STARTUP_FAILURE) from None
    uvicorn.Server(config).run(sockets=[sock])


def serve(config_kwargs: dict[str, Any], workers: int) -> int:
    """Run ``workers`` processes of :func:`run_worker` until SIGTERM/SIGINT or one fails to start; the exit code."""
    context = multiprocessing.get_context("spawn")  # a fresh interpreter each: no state forked from this one
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())

    def start() -> BaseProcess:
        process = context.Process(target=run_worker, args=(config_kwargs,), name="officeflow-edge-worker")
        process.start()
        return process

    processes = [start() for _ in range(workers)]
    log.info("Edge gateway on %s:%s: %d workers (pids %s), each on its own socket",
             config_kwargs["host"], config_kwargs["port"], workers, ", ".join(str(p.pid) for p in processes))
    code = 0
    while not stopping.wait(0.5):
        for index, process in enumerate(processes):
            if process.is_alive():
                continue
            if process.exitcode == STARTUP_FAILURE:
                log.error("Edge worker %s could not start; stopping the others", process.pid)
                stopping.set()
                code = STARTUP_FAILURE
                break
            log.warning("Edge worker %s ended (exit code %s); starting another", process.pid, process.exitcode)
            time.sleep(RESTART_PAUSE_SECONDS)
            processes[index] = start()
    _stop(processes)
    return code


def _stop(processes: list[BaseProcess]) -> None:
    for process in processes:
        if process.is_alive():
            process.terminate()  # SIGTERM: uvicorn's graceful shutdown
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            log.warning("Edge worker %s still up after %.0f s; killing it", process.pid, STOP_GRACE_SECONDS)
            process.kill()
            process.join()
