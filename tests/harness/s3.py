"""A real S3 server for the tests: moto's S3 backend served over HTTP in its own process.

moto answers the S3 REST API (buckets, versioning, objects, presigned GETs) but does not check
presigned URLs: it serves them after they expire and with a forged signature. AWS and MinIO refuse
both, so :class:`PresignedUrlGuard` (a WSGI middleware in front of moto) verifies SigV4 query
signatures and expiry the way S3 does and answers S3's XML errors (403 ``AccessDenied`` "Request has
expired", 403 ``SignatureDoesNotMatch``). Everything else is moto unchanged.

Run as ``python -m tests.harness.s3 --port N`` (what :class:`S3Server` does).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

from tests.harness.ports import free_port
from tests.harness.processes import stop_process

ACCESS_KEY = "officeflow-test-access-key"
SECRET_KEY = "officeflow-test-secret-key-0123456789"
REGION = "us-east-1"
VERSIONED_BUCKET = "officeflow-docs-versioned"
PLAIN_BUCKET = "officeflow-docs-plain"
CONN_ID = "officeflow_s3"
REPO_ROOT = Path(__file__).resolve().parents[2]


def _s3_error(start_response: Callable[..., Any], status: str, code: str, message: str) -> Iterable[bytes]:
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
            "</Error>").encode()
    start_response(status, [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
    return [body]


class PresignedUrlGuard:
    """Verify SigV4 presigned (query-string) requests before moto serves them."""

    def __init__(self, app: Callable[..., Any], credentials: dict[str, str]) -> None:
        self.app = app
        self.credentials = credentials

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        query = parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        params = dict(query)
        if "Signature" in params and "Expires" in params:  # SigV2 query auth: expiry only
            if params["Expires"].isdigit() and time.time() > int(params["Expires"]):
                return _s3_error(start_response, "403 Forbidden", "AccessDenied", "Request has expired")
            return self.app(environ, start_response)
        if "X-Amz-Signature" not in params:
            return self.app(environ, start_response)  # header-signed SDK calls: moto as is
        problem = self._check(environ, query, params)
        if problem is not None:
            return _s3_error(start_response, "403 Forbidden", *problem)
        return self.app(environ, start_response)

    def _check(self, environ: dict[str, Any], query: list[tuple[str, str]],
               params: dict[str, str]) -> tuple[str, str] | None:
        if params.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256":
            return "AuthorizationQueryParametersError", "X-Amz-Algorithm must be AWS4-HMAC-SHA256"
        try:
            signed_at = datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            expires = int(params["X-Amz-Expires"])
            access_key, date, region, service, _ = params["X-Amz-Credential"].split("/")
            signed_headers = params["X-Amz-SignedHeaders"].split(";")
        except (KeyError, ValueError):
            return "AuthorizationQueryParametersError", "Malformed presigned URL query parameters"
        secret = self.credentials.get(access_key)
        if secret is None:
            return "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."
        canonical_query = "&".join(
            f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
            for k, v in sorted(query) if k != "X-Amz-Signature"
        )
        headers = {"host": environ.get("HTTP_HOST", "")}
        for name in signed_headers:
            if name != "host":
                headers[name] = environ.get("HTTP_" + name.upper().replace("-", "_"), "").strip()
        raw_path = environ.get("RAW_URI") or environ.get("REQUEST_URI") or quote(environ.get("PATH_INFO", "/"))
        canonical_request = "\n".join([
            environ["REQUEST_METHOD"], raw_path.split("?", 1)[0], canonical_query,
            "".join(f"{name}:{headers[name]}\n" for name in signed_headers), ";".join(signed_headers),
            "UNSIGNED-PAYLOAD",
        ])
        scope = f"{date}/{region}/{service}/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", params["X-Amz-Date"], scope,
                             hashlib.sha256(canonical_request.encode()).hexdigest()])
        key = f"AWS4{secret}".encode()
        for part in (date, region, service, "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, params["X-Amz-Signature"]):
            return "SignatureDoesNotMatch", ("The request signature we calculated does not match the signature "
                                             "you provided.")
        if datetime.now(UTC) > signed_at + timedelta(seconds=expires):
            return "AccessDenied", "Request has expired"
        return None


def serve(host: str, port: int) -> None:
    """Serve moto (all its backends, S3 path-style) behind :class:`PresignedUrlGuard`."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    app = PresignedUrlGuard(DomainDispatcherApplication(create_backend_app),
                            {ACCESS_KEY: SECRET_KEY})
    make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler).serve_forever()


class S3Server:
    """The server process; :meth:`start` also creates a versioned and an unversioned bucket."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port if port is not None else free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self.log = Path(tempfile.mkdtemp(prefix="officeflow-s3-")) / "s3.log"

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url, aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY, region_name=REGION)

    def connection_json(self) -> str:
        """The Airflow ``aws`` connection (JSON form) pointing at this server."""
        return json.dumps({"conn_type": "aws", "login": ACCESS_KEY, "password": SECRET_KEY,
                           "extra": {"endpoint_url": self.endpoint_url, "region_name": REGION}})

    def env(self) -> dict[str, str]:
        return {f"AIRFLOW_CONN_{CONN_ID.upper()}": self.connection_json()}

    def start(self, timeout: float = 30) -> S3Server:
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "MOTO_ALLOW_NONEXISTENT_REGION": "true"}
        with self.log.open("wb") as log:  # request log and errors; a pipe nobody reads would fill up
            self._process = subprocess.Popen(
                [sys.executable, "-m", "tests.harness.s3", "--port", str(self.port)], env=env,
                cwd=str(REPO_ROOT), stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        client = self.client()
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            try:
                client.list_buckets()
                break
            except Exception:  # not listening yet
                time.sleep(0.1)
        else:
            self.stop()
            raise RuntimeError(f"S3 server on port {self.port} did not start in {timeout}s")
        if self._process.poll() is not None:
            code, tail = self._process.returncode, self.log.read_text(errors="replace")[-2000:]
            self.stop()
            raise RuntimeError(f"S3 server exited with {code}:\n{tail}")
        client.create_bucket(Bucket=VERSIONED_BUCKET)
        client.put_bucket_versioning(Bucket=VERSIONED_BUCKET, VersioningConfiguration={"Status": "Enabled"})
        client.create_bucket(Bucket=PLAIN_BUCKET)
        return self

    def stop(self) -> None:
        stop_process(self._process)
        self._process = None
        with contextlib.suppress(OSError):
            shutil.rmtree(self.log.parent)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    arguments = parser.parse_args()
    serve(arguments.host, arguments.port)
