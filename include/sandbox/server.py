"""The sandbox HTTP server: every emulated SaaS API on one port, each under its own prefix.

    python -m include.sandbox --port 8900 --credentials .officeflow/sandbox/credentials.json

``/google`` (OAuth token endpoint, Admin SDK Directory), ``/microsoft`` (identity platform token
endpoint, Graph), ``/okta`` (Users, lifecycle, Groups) and ``/_sandbox`` (state, request log, reset,
fault injection). See include/sandbox/README.md for what each covers.
"""

from __future__ import annotations

import argparse
import importlib
import logging

from fastapi import FastAPI

from include.sandbox.core import Credentials, Faults, SandboxState, Service, install

#: Modules under include/sandbox/ that each define ``service: Service``.
SERVICE_MODULES = ("google", "microsoft", "okta")


def load_services(names: tuple[str, ...] = SERVICE_MODULES) -> list[Service]:
    return [importlib.import_module(f"include.sandbox.{name}").service for name in names]


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


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--credentials", required=True, help="JSON written by include.sandbox.credentials")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(Credentials.load(args.credentials))
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
