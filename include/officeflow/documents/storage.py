"""Storage of version bytes (``OFFICEFLOW_DOCUMENTS_URL``): S3 through the amazon provider, or a local folder.

``s3://bucket/prefix``: through the amazon provider's :class:`S3Hook` and the Airflow connection
``OFFICEFLOW_DOCUMENTS_AWS_CONN_ID`` (``officeflow_s3``; MinIO or AWS, ``endpoint_url`` in its extra).
A bucket with versioning *Enabled* keeps one object per document and the S3 ``VersionId`` of each
version is recorded; otherwise every version gets its own key ``<key>/v<N>``.
Anything else (a path or ``file://`` URI, default ``OFFICEFLOW_DOCUMENTS_DIR``): a local folder with
``<key>/v<N>`` files (dev mode). Presigned share links come from S3 only.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import mimetypes
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from urllib.parse import quote, unquote, urlparse

from include.officeflow.documents.errors import DocumentError, SharingUnavailable
from include.officeflow.settings import get_settings


@dataclass(frozen=True)
class PutResult:
    storage_uri: str
    storage_version_id: str | None


class Storage(Protocol):
    def put(self, object_key: str, version: int, data: bytes, content_type: str, sha256_hex: str) -> PutResult: ...

    def read(self, storage_uri: str, storage_version_id: str | None) -> bytes: ...

    def presign(self, storage_uri: str, storage_version_id: str | None, expires_in: int,
                filename: str, content_type: str) -> str: ...

    # Uploads and downloads through the API stream: never a whole file in memory.
    def put_file(self, object_key: str, version: int, path: Path, content_type: str,
                 sha256_hex: str) -> PutResult: ...

    def open(self, storage_uri: str, storage_version_id: str | None) -> Iterator[bytes]: ...

    def delete(self, storage_uri: str, storage_version_id: str | None) -> None: ...


CHUNK_BYTES = 1_048_576


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    try:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk
    finally:
        handle.close()


class LocalStorage:
    """Dev mode: ``<root>/<org>/<logical_key>/v<N>`` files, written atomically (temp file + rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root.expanduser().resolve()

    def put(self, object_key: str, version: int, data: bytes, content_type: str, sha256_hex: str) -> PutResult:
        target = self.root / object_key / f"v{version}"
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return PutResult(target.as_uri(), None)

    def read(self, storage_uri: str, storage_version_id: str | None) -> bytes:
        return self._path(storage_uri).read_bytes()

    def put_file(self, object_key: str, version: int, path: Path, content_type: str,
                 sha256_hex: str) -> PutResult:
        """Copy ``path`` in chunks (temp file + rename), checking the SHA-256 of what was written."""
        target = self.root / object_key / f"v{version}"
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        digest = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as handle, path.open("rb") as source:
                while chunk := source.read(CHUNK_BYTES):
                    digest.update(chunk)
                    handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            if digest.hexdigest() != sha256_hex:
                raise DocumentError(f"checksum mismatch while writing {target}; version not recorded")
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return PutResult(target.as_uri(), None)

    def open(self, storage_uri: str, storage_version_id: str | None) -> Iterator[bytes]:
        return _chunks(self._path(storage_uri).open("rb"))

    def delete(self, storage_uri: str, storage_version_id: str | None) -> None:
        """Remove the file (already gone is fine) and its folder if that leaves it empty."""
        path = self._path(storage_uri)
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            path.parent.rmdir()

    @staticmethod
    def _path(storage_uri: str) -> Path:
        return Path(unquote(urlparse(storage_uri).path))

    def presign(self, storage_uri: str, storage_version_id: str | None, expires_in: int,
                filename: str, content_type: str) -> str:
        raise SharingUnavailable("share links need S3 storage (OFFICEFLOW_DOCUMENTS_URL=s3://…); this version "
                                 "is in a local dev-mode folder")


class S3Storage:
    """S3 / MinIO through the amazon provider's ``S3Hook`` (connection ``conn_id``)."""

    def __init__(self, bucket: str, prefix: str = "", conn_id: str | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.conn_id = conn_id or get_settings().documents_aws_conn_id
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            from airflow.providers.amazon.aws.hooks.s3 import S3Hook
            from botocore.config import Config

            hook = S3Hook(aws_conn_id=self.conn_id)
            # SigV4 for presigned URLs (boto3 still presigns S3 with SigV2, which AWS is retiring);
            # the connection's own config_kwargs (timeouts, addressing style) are kept.
            self._client = hook.get_client_type(config=hook.config.merge(Config(signature_version="s3v4")))
        return self._client

    def versioned(self) -> bool:
        """Whether the bucket's versioning is Enabled (Suspended or never enabled → explicit keys)."""
        return self.client.get_bucket_versioning(Bucket=self.bucket).get("Status") == "Enabled"

    def put(self, object_key: str, version: int, data: bytes, content_type: str, sha256_hex: str) -> PutResult:
        key = "/".join(p for p in (self.prefix, object_key) if p)
        versioned = self.versioned()
        if not versioned:
            key = f"{key}/v{version}"
        response = self.client.put_object(
            Bucket=self.bucket, Key=key, Body=data, ContentType=content_type,
            ChecksumSHA256=base64.b64encode(bytes.fromhex(sha256_hex)).decode(),  # the server verifies it too
            Metadata={"sha256": sha256_hex, "officeflow-version": str(version)},
        )
        version_id = response.get("VersionId") if versioned else None
        if versioned and not version_id:
            raise DocumentError(f"bucket {self.bucket!r} reports versioning Enabled but returned no VersionId")
        return PutResult(f"s3://{self.bucket}/{key}", version_id)

    def read(self, storage_uri: str, storage_version_id: str | None) -> bytes:
        bucket, key = parse_s3_uri(storage_uri)
        extra = {"VersionId": storage_version_id} if storage_version_id else {}
        body = self.client.get_object(Bucket=bucket, Key=key, **extra)["Body"]
        try:
            return bytes(body.read())
        finally:
            body.close()

    def put_file(self, object_key: str, version: int, path: Path, content_type: str,
                 sha256_hex: str) -> PutResult:
        """Upload ``path`` (streamed from the file); S3 checks the SHA-256 and refuses the object on a mismatch."""
        key = "/".join(p for p in (self.prefix, object_key) if p)
        versioned = self.versioned()
        if not versioned:
            key = f"{key}/v{version}"
        with path.open("rb") as body:
            response = self.client.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType=content_type,
                ContentLength=path.stat().st_size,
                ChecksumSHA256=base64.b64encode(bytes.fromhex(sha256_hex)).decode(),
                Metadata={"sha256": sha256_hex, "officeflow-version": str(version)},
            )
        version_id = response.get("VersionId") if versioned else None
        if versioned and not version_id:
            raise DocumentError(f"bucket {self.bucket!r} reports versioning Enabled but returned no VersionId")
        return PutResult(f"s3://{self.bucket}/{key}", version_id)

    def open(self, storage_uri: str, storage_version_id: str | None) -> Iterator[bytes]:
        bucket, key = parse_s3_uri(storage_uri)
        extra = {"VersionId": storage_version_id} if storage_version_id else {}
        body = self.client.get_object(Bucket=bucket, Key=key, **extra)["Body"]

        def chunks() -> Iterator[bytes]:
            try:
                yield from body.iter_chunks(CHUNK_BYTES)
            finally:
                body.close()

        return chunks()

    def delete(self, storage_uri: str, storage_version_id: str | None) -> None:
        """Delete the object version for good (a versioned bucket keeps no delete marker for it)."""
        bucket, key = parse_s3_uri(storage_uri)
        extra = {"VersionId": storage_version_id} if storage_version_id else {}
        self.client.delete_object(Bucket=bucket, Key=key, **extra)

    def presign(self, storage_uri: str, storage_version_id: str | None, expires_in: int,
                filename: str, content_type: str) -> str:
        bucket, key = parse_s3_uri(storage_uri)
        params: dict[str, Any] = {
            "Bucket": bucket, "Key": key,
            "ResponseContentType": content_type,
            "ResponseContentDisposition": f"attachment; filename=\"{filename}\"; filename*=UTF-8''{quote(filename)}",
        }
        if storage_version_id:
            params["VersionId"] = storage_version_id
        return str(self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in))


def parse_s3_uri(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise DocumentError(f"not an s3:// URI: {uri!r}")
    return parsed.netloc, parsed.path.lstrip("/")


def configured_storage() -> Storage:
    """The storage new versions go to (``OFFICEFLOW_DOCUMENTS_URL``, else the dev-mode folder)."""
    settings = get_settings()
    url = settings.documents_url.strip()
    if url.startswith("s3://"):
        bucket, prefix = parse_s3_uri(url)
        return S3Storage(bucket, prefix, settings.documents_aws_conn_id)
    if url.startswith("file://"):
        return LocalStorage(Path(unquote(urlparse(url).path)))
    if url:
        if "://" in url:
            raise DocumentError(f"OFFICEFLOW_DOCUMENTS_URL must be s3://bucket/prefix, file:// or a path: {url!r}")
        return LocalStorage(Path(url))
    assert settings.documents_dir is not None
    return LocalStorage(settings.documents_dir)


def storage_for(storage_uri: str) -> Storage:
    """The storage holding an already recorded version (its own bucket, whatever is configured now)."""
    if storage_uri.startswith("s3://"):
        bucket, _ = parse_s3_uri(storage_uri)
        return S3Storage(bucket)
    if storage_uri.startswith("file://"):
        return LocalStorage(Path("/"))
    raise DocumentError(f"unknown storage URI {storage_uri!r}")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def guess_content_type(path: str) -> str:
    return mimetypes.guess_type(path)[0] or "application/octet-stream"
