"""Credentials for the sandbox, and the Airflow connections that point OfficeFlow at it.

    python -m include.sandbox.credentials --dir .officeflow/sandbox --base-url http://127.0.0.1:8900

writes ``credentials.json`` (what the sandbox accepts: service-account public keys, client secrets,
API tokens) and ``connections.env`` (``AIRFLOW_CONN_OFFICEFLOW_GOOGLE=…`` in Airflow's JSON connection
form, each only if that variable is not set already, so a real provider's connection wins).
Each service module contributes its part through ``provision_credentials``; the private halves
only ever live in the connections, as they would in production.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shlex
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from include.sandbox.core import Credentials
from include.sandbox.server import SERVICE_MODULES


@dataclass
class SandboxSetup:
    credentials_file: Path
    connections: dict[str, dict[str, Any]]

    def env(self) -> dict[str, str]:
        """``AIRFLOW_CONN_<ID>`` variables for every connection."""
        return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(conn) for conn_id, conn in self.connections.items()}


def generate(directory: Path, base_url: str, modules: tuple[str, ...] = SERVICE_MODULES) -> SandboxSetup:
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    credentials = Credentials()
    connections: dict[str, dict[str, Any]] = {}
    for name in modules:
        module = importlib.import_module(f"include.sandbox.{name}")
        connections.update(module.provision_credentials(credentials, directory, base_url.rstrip("/")))
    credentials_file = directory / "credentials.json"
    credentials_file.write_text(json.dumps(asdict(credentials), indent=2))
    setup = SandboxSetup(credentials_file, connections)
    env_file = directory / "connections.env"
    # A connection already in the environment (a real provider) wins over the sandbox's.
    env_file.write_text("".join(f'if [ -z "${{{k}:-}}" ]; then export {k}={shlex.quote(v)}; fi\n'
                                for k, v in setup.env().items()))
    os.chmod(env_file, 0o600)
    return setup


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--base-url", required=True)
    args = parser.parse_args(argv)
    setup = generate(args.dir, args.base_url)
    print(setup.credentials_file)


if __name__ == "__main__":
    main()
