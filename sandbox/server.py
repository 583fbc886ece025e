"""The sandbox HTTP server: every emulated SaaS API on one port, each under its own prefix.

    python -m sandbox --port 8900 [--tls-port 8943] --credentials .officeflow/sandbox/credentials.json

With ``--tls-port`` the same app (same state, log and faults) is also served over HTTPS with the
certificate of the credentials file (``tls_cert_file`` / ``tls_key_file``, signed by the local CA
``tls_ca_file``), one process and event loop for both listeners. Microsoft's client libraries
(azure-identity, msal) accept only https authorities, so the Microsoft connection points there; on
that listener ``/microsoft`` is also served at the root (``https://127.0.0.1:<tls port>/{tenant}/oauth2/
v2.0/token``, ``/v1.0/…``), the shape of ``login.microsoftonline.com`` and ``graph.microsoft.com``.

``/google`` (OAuth token endpoint, Admin SDK Directory), ``/microsoft`` (identity platform token
endpoint, Graph), ``/okta`` (Users, lifecycle, Groups), ``/ses``, ``/sendgrid``, ``/slack``, ``/openai``
(Chat Completions, Models), ``/bamboohr`` (the employee API), ``/workday`` (the workers report, RaaS) and
``/_sandbox`` (state, request log, reset, fault injection). See sandbox/README.md for what each covers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI

from sandbox.core import Credentials, Faults, SandboxState, Service, install, serve_at_root
from sandbox.registry import SERVICE_NAMES, service_module


def load_services(names: tuple[str, ...] = SERVICE_NAMES) -> list[Service]:
    return [service_module(name).service for name in names]


def create_app(credentials: Credentials, services: list[Service] | None = None) -> FastAPI:
    app = FastAPI(title="OfficeFlow integration sandbox",
                  description="Local emulation of the SaaS APIs OfficeFlow calls (dev mode and tests).",
                  docs_url="/_sandbox/docs", openapi_url="/_sandbox/openapi.json", redoc_url=None)
    state = SandboxState()
    faults = Faults()
    app.state.sandbox = state
    app.state.faults = faults
    app.state.credentials = credentials
    install(app, services if services is not None else load_services(), state, faults, credentials)
    return app


async def serve(app: FastAPI, host: str, port: int, tls_port: int | None = None,
                credentials: Credentials | None = None) -> None:
    """Serve ``app`` on ``port`` (http) and, when given, ``tls_port`` (https), until SIGINT/SIGTERM."""
    import uvicorn

    class _Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:  # both listeners stop on the signals installed below
            yield

    common: dict[str, Any] = {"host": host, "log_level": "warning", "access_log": False, "lifespan": "off"}
    servers = [_Server(uvicorn.Config(app, port=port, **common))]
    if tls_port is not None:
        if credentials is None or not (credentials.tls_cert_file and credentials.tls_key_file):
            raise SystemExit("--tls-port needs a credentials file with TLS material "
                             "(python -m sandbox.credentials --tls-base-url ...)")
        tls_app = serve_at_root(app, "microsoft")  # the same app; Microsoft also at the root (see above)
        servers.append(_Server(uvicorn.Config(tls_app, port=tls_port, ssl_certfile=credentials.tls_cert_file,
                                              ssl_keyfile=credentials.tls_key_file, **common)))
    loop = asyncio.get_running_loop()

    def stop() -> None:
        for server in servers:
            server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    results = await asyncio.gather(*(server.serve() for server in servers), return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors or any(not server.started for server in servers):
        raise SystemExit(f"sandbox listener failed: {errors or 'did not start'}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--tls-port", type=int, help="also serve over HTTPS on this port (certificate from the "
                        "credentials file)")
    parser.add_argument("--credentials", required=True, help="JSON written by sandbox.credentials")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    credentials = Credentials.load(args.credentials)
    app = create_app(credentials)
    asyncio.run(serve(app, args.host, args.port, args.tls_port, credentials))


if __name__ == "__main__":
    main()
