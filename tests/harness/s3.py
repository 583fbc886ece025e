"""A real S3 server for the tests: MinIO, built from its Go module, in its own process.

MinIO speaks the S3 REST API as AWS does where OfficeFlow depends on it: bucket versioning (every PUT
of a key gets a VersionId), SigV4 auth, presigned GETs that expire ("Request has expired") and refuse a
forged signature (``SignatureDoesNotMatch``). ``./run.sh test`` builds the binary once
(``go install github.com/minio/minio@<pinned>``, ~3 minutes on 2 cores) and passes its path in
``OFFICEFLOW_MINIO_BIN``; ``minio`` on PATH or in ``~/go/bin`` also works.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.harness.ports import free_port
from tests.harness.processes import stop_process

ACCESS_KEY = "officeflow-test-access-key"
SECRET_KEY = "officeflow-test-secret-key-0123456789"
REGION = "us-east-1"
VERSIONED_BUCKET = "officeflow-docs-versioned"
PLAIN_BUCKET = "officeflow-docs-plain"
CONN_ID = "officeflow_s3"


def minio_binary() -> str:
    for candidate in (os.environ.get("OFFICEFLOW_MINIO_BIN"), shutil.which("minio"),
                      str(Path.home() / "go" / "bin" / "minio")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError("MinIO not found: run the tests with ./run.sh test (it builds it), or set OFFICEFLOW_MINIO_BIN")


class S3Server:
    """The MinIO process on 127.0.0.1 (free ports); :meth:`start` creates a versioned and a plain bucket."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port if port is not None else free_port()
        self.console_port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="officeflow-s3-"))
        self.log = self.root / "minio.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint_url, aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY, region_name=REGION,
                            config=Config(signature_version="s3v4"))

    def connection_json(self) -> str:
        """The Airflow ``aws`` connection (JSON form) pointing at this server."""
        return json.dumps({"conn_type": "aws", "login": ACCESS_KEY, "password": SECRET_KEY,
                           "extra": {"endpoint_url": self.endpoint_url, "region_name": REGION}})

    def env(self) -> dict[str, str]:
        return {f"AIRFLOW_CONN_{CONN_ID.upper()}": self.connection_json()}

    def start(self, timeout: float = 60) -> S3Server:
        env = {**os.environ, "MINIO_ROOT_USER": ACCESS_KEY, "MINIO_ROOT_PASSWORD": SECRET_KEY,
               "MINIO_BROWSER": "off", "MINIO_UPDATE": "off", "MINIO_REGION": REGION}
        (self.root / "data").mkdir()
        with self.log.open("wb") as log:  # a pipe nobody reads would fill up
            self._process = subprocess.Popen(
                [minio_binary(), "server", str(self.root / "data"), "--quiet",
                 "--address", f"127.0.0.1:{self.port}", "--console-address", f"127.0.0.1:{self.console_port}"],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        client = self.client()
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                code, tail = self._process.returncode, self.log.read_text(errors="replace")[-2000:]
                self.stop()
                raise RuntimeError(f"MinIO exited with {code}:\n{tail}")
            try:
                client.list_buckets()
                break
            except Exception:  # not listening yet
                time.sleep(0.2)
        else:
            self.stop()
            raise RuntimeError(f"MinIO on port {self.port} did not start in {timeout}s")
        client.create_bucket(Bucket=VERSIONED_BUCKET)
        client.put_bucket_versioning(Bucket=VERSIONED_BUCKET, VersioningConfiguration={"Status": "Enabled"})
        client.create_bucket(Bucket=PLAIN_BUCKET)
        return self

    def stop(self) -> None:
        stop_process(self._process)
        self._process = None
        with contextlib.suppress(OSError):
            shutil.rmtree(self.root)
