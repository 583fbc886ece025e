"""Shared pieces of the email tests: task contexts, the deliveries in the store, a local SNS certificate server.

(The ``email_store`` fixture, a clean email store, is in tests/integration/conftest.py.)"""

from __future__ import annotations

import base64
import http.server
import json
import threading
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any


def task_context(run_id: str | None = None, *, dag_id: str = "employee_onboarding", task_id: str = "send_email",
                 map_index: int = -1, try_number: int = 1) -> dict[str, Any]:
    """A minimal Airflow task context: what the operator reads (``ti``)."""
    ti = SimpleNamespace(dag_id=dag_id, run_id=run_id or f"manual__{uuid.uuid4().hex}", task_id=task_id,
                         map_index=map_index, try_number=try_number)
    return {"ti": ti, "task_instance": ti}


def deliveries(store_url: str) -> list[Any]:
    from sqlalchemy import select

    from include.officeflow.store import EmailDelivery, session_scope

    with session_scope(store_url) as session:
        return list(session.scalars(select(EmailDelivery).order_by(EmailDelivery.created_at)))


# --- SNS: a signing certificate served over HTTP, and message signing --------------------------

class SnsSigner:
    """An RSA key and self-signed certificate (as SNS's signing certificate), served by a local
    HTTP server that also records SubscribeURL visits."""

    def __init__(self) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.us-east-1.amazonaws.com")])
        now = datetime.now(UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self.key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(hours=1))
                .not_valid_after(now + timedelta(days=30)).sign(self.key, hashes.SHA256()))
        self.cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        self.visits: list[str] = []
        self.cert_fetches = 0
        signer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.startswith("/cert"):
                    signer.cert_fetches += 1
                    body = signer.cert_pem
                else:
                    signer.visits.append(self.path)
                    body = (b"<ConfirmSubscriptionResponse><ConfirmSubscriptionResult><SubscriptionArn>arn"
                            b"</SubscriptionArn></ConfirmSubscriptionResult></ConfirmSubscriptionResponse>")
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def cert_url(self) -> str:
        return f"{self.base}/cert/SimpleNotificationService-{id(self)}.pem"

    def sign(self, message: dict[str, Any], version: str = "1", key: Any = None) -> dict[str, Any]:
        """``message`` with SignatureVersion, SigningCertURL and Signature (by ``key``, default ours)."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        from plugins.officeflow_gateway.email.sns import sns_string_to_sign

        message = {**message, "SignatureVersion": version, "SigningCertURL": message.get("SigningCertURL")
                   or self.cert_url}
        digest = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303 - SNS SignatureVersion 1
        signature = (key or self.key).sign(sns_string_to_sign(message), padding.PKCS1v15(), digest)
        return {**message, "Signature": base64.b64encode(signature).decode()}

    def notification(self, ses_message: dict[str, Any], *, topic: str = "arn:aws:sns:us-east-1:123456789012:ses",
                     version: str = "1") -> dict[str, Any]:
        return self.sign({"Type": "Notification", "MessageId": str(uuid.uuid4()), "TopicArn": topic,
                          "Message": json.dumps(ses_message),
                          "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"}, version)
