"""Credentials for the sandbox, and the Airflow connections that point OfficeFlow at it.

    python -m sandbox.credentials --dir .officeflow/sandbox --base-url http://127.0.0.1:8900 \
        --tls-base-url https://127.0.0.1:8943

writes ``credentials.json`` (what the sandbox accepts: service-account public keys, client secrets,
API tokens) and ``connections.env`` (``AIRFLOW_CONN_OFFICEFLOW_GOOGLE=…`` in Airflow's JSON connection
form, each only if that variable is not set already, so a real provider's connection wins).
With ``--tls-base-url`` it also writes a local CA (``tls-ca.pem``, what clients trust) and the server
certificate it signed for 127.0.0.1 / localhost (``tls-server.pem``, ``tls-server.key``) for the
sandbox's TLS listener (``--tls-port``): the Microsoft connection points there, because azure-identity
and msal accept only https authorities.
Each service module contributes its part through ``provision_credentials``; the private halves
only ever live in the connections, as they would in production.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import shlex
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sandbox.core import Credentials
from sandbox.registry import SERVICE_NAMES, service_module


@dataclass
class SandboxSetup:
    credentials_file: Path
    connections: dict[str, dict[str, Any]]

    def env(self) -> dict[str, str]:
        """``AIRFLOW_CONN_<ID>`` variables for every connection."""
        return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(conn) for conn_id, conn in self.connections.items()}


def write_tls_material(directory: Path, credentials: Credentials, hosts: tuple[str, ...] = ("127.0.0.1", "::1",
                                                                                         "localhost")) -> None:
    """A throw-away CA and a server certificate it signs for ``hosts`` (EC P-256, one year), as PEM
    files in ``directory``; their paths go into ``credentials.tls_*``. The CA's key is not kept."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "OfficeFlow sandbox CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(hours=1))
          .not_valid_after(now + timedelta(days=365))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(ca_ski, critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=True, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    ca_file, cert_file, key_file = directory / "tls-ca.pem", directory / "tls-server.pem", directory / "tls-server.key"
    ca_file.write_bytes(ca.public_bytes(pem))
    cert_file.write_bytes(cert.public_bytes(pem))
    key_file.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    os.chmod(key_file, 0o600)
    credentials.tls_ca_file, credentials.tls_cert_file, credentials.tls_key_file = (
        str(ca_file.resolve()), str(cert_file.resolve()), str(key_file.resolve()))


def generate(directory: Path, base_url: str, modules: tuple[str, ...] = SERVICE_NAMES,
             tls_base_url: str | None = None) -> SandboxSetup:
    """Credentials and connections for a sandbox at ``base_url`` (and its TLS listener at
    ``tls_base_url``, with fresh TLS material, when given)."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    credentials = Credentials()
    if tls_base_url:
        credentials.tls_base_url = tls_base_url.rstrip("/")
        write_tls_material(directory, credentials)
    connections: dict[str, dict[str, Any]] = {}
    for name in modules:
        connections.update(service_module(name).provision_credentials(credentials, directory, base_url.rstrip("/")))
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
    parser = argparse.ArgumentParser(prog="python -m sandbox.credentials", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--tls-base-url", help="https URL of the sandbox's TLS listener (--tls-port); needed by "
                        "the Microsoft connection")
    args = parser.parse_args(argv)
    setup = generate(args.dir, args.base_url, tls_base_url=args.tls_base_url)
    print(setup.credentials_file)


if __name__ == "__main__":
    main()
