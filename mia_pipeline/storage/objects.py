"""Object storage: ``s3://bucket/prefix`` locations on AWS S3 or an S3-compatible server, through pyarrow's
S3 file system (the project's one abstraction for it; Parquet readers and writers take the same object).

Where the server is and who we are come from the standard AWS variables, read by pyarrow itself:
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` (and ``AWS_SESSION_TOKEN``, profiles, instance roles);
``AWS_REGION`` or ``AWS_DEFAULT_REGION`` (default ``us-east-1``); ``AWS_ENDPOINT_URL_S3`` or
``AWS_ENDPOINT_URL`` for a server that is not AWS (MinIO, Ceph, moto: ``http://127.0.0.1:9000``).

What S3 does not give, and what replaces it here:

- **No rename.** Locally a file is written beside its final name and renamed over it. Here an object is
  uploaded under a staging key (``<prefix>/.staging/<token>``), its size checked against what was sent,
  then copied by the server to its final key (CopyObject: a reader of the final key gets the previous
  object or the whole new one, never part of it), and the staging key deleted. A writer killed during
  the upload leaves an unfinished multipart upload (never visible as an object; a bucket lifecycle rule
  ``AbortIncompleteMultipartUpload`` reclaims its space) or a staging object that nothing reads and the
  next writer sweeps. Uploading straight to the final key is not safe: pyarrow completes an upload when
  its stream is closed, even after an error part way.
- **No fsync.** A PUT or copy is durable when the server acknowledges it; there is nothing to flush.
- **No append, no lock.** Objects are written whole. Locks stay on the local disk of the writing host
  (see the users of this module), so writers of one location must run on one host or be serialized by
  Dagster pools.
- **Listing and read-after-write** are strongly consistent on AWS S3 (since December 2020), MinIO and moto.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import os
import secrets
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import BinaryIO
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.fs as pafs

from mia_pipeline.layout import LayoutError, S3Location, parse_s3_url

STAGING = ".staging"
STALE_STAGING_S = 3600.0    # a staging object this old belongs to a dead writer, not a running one
CHUNK = 8 << 20


class _Discard:
    def write(self, data) -> int:
        return len(data)


class EndpointError(LayoutError):
    """AWS_ENDPOINT_URL(_S3) is not a server URL (an input error: `mia` exits 2 saying how to set it)."""


class ObjectStoreError(OSError):
    """The object store cannot be used now (server unreachable, bucket missing, access denied…)."""


def endpoint_from_env(env: Mapping[str, str]) -> tuple[str, str] | None:
    """(scheme, host[:port]) of AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, or None for AWS itself."""
    name = "AWS_ENDPOINT_URL_S3" if env.get("AWS_ENDPOINT_URL_S3") else "AWS_ENDPOINT_URL"
    raw = env.get(name)
    if not raw:
        return None
    fix = f"{name} is not a server URL; set it like http://127.0.0.1:9000 (or unset it for AWS S3)"
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - raises ValueError when the port is out of range
    except ValueError:
        raise EndpointError(fix) from None
    if "@" in parts.netloc:  # never echoed: it holds credentials
        raise EndpointError(f"{name} holds a user or password; {fix}, with the credentials in AWS_ACCESS_KEY_ID / "
                         "AWS_SECRET_ACCESS_KEY")
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/") or parts.query:
        raise EndpointError(f"{name}={raw!r}: {fix}")
    return parts.scheme, parts.netloc  # host[:port], IPv6 hosts keep their brackets


def s3_filesystem(env: Mapping[str, str] | None = None) -> pafs.S3FileSystem:
    """pyarrow's S3 file system for the server and credentials the AWS_* variables name."""
    env = os.environ if env is None else env
    kwargs: dict = {"region": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
                    "connect_timeout": 5.0, "request_timeout": 30.0,
                    "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=3)}
    endpoint = endpoint_from_env(env)
    if endpoint:
        kwargs["scheme"], kwargs["endpoint_override"] = endpoint
    return pafs.S3FileSystem(**kwargs)


_AWS_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID",
                  "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE",
                  "AWS_CONFIG_FILE")


@functools.lru_cache(maxsize=8)
def _shared_filesystem(env: tuple[tuple[str, str | None], ...]) -> pafs.S3FileSystem:
    return s3_filesystem({k: v for k, v in env if v is not None})


@contextmanager
def translated(what: str) -> Iterator[None]:
    """pyarrow's errors (OSError / ArrowException carrying the server's answer) as ObjectStoreError."""
    try:
        yield
    except ObjectStoreError:
        raise
    except (OSError, pa.ArrowException) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ObjectStoreError(f"{what}: {first} (check AWS_ENDPOINT_URL, the credentials and the network)") from None


class ObjectStore:
    """The objects under one ``s3://bucket/prefix``. Keys given to the methods are relative to the prefix."""

    def __init__(self, location: S3Location | str, fs: pafs.FileSystem | None = None):
        self.location = parse_s3_url(location) if isinstance(location, str) else location
        self._fs = fs

    @property
    def fs(self) -> pafs.FileSystem:
        """The S3 client, made on first use (a malformed AWS_ENDPOINT_URL raises ValueError there) and shared
        by the stores of this process that see the same AWS_* variables."""
        if self._fs is None:
            self._fs = _shared_filesystem(tuple((k, os.environ.get(k)) for k in _AWS_VARIABLES))
        return self._fs

    @property
    def url(self) -> str:
        return self.location.url

    def _key(self, rel: str = "") -> str:
        return self.location.key(rel)

    # ------------------------------------------------------------------ read
    def check_bucket(self) -> None:
        """Raise ObjectStoreError when the bucket cannot be reached (missing, denied, server down)."""
        with translated(f"{self.url}: the bucket cannot be reached"):
            info = self.fs.get_file_info(self.location.bucket)
        if info.type != pafs.FileType.Directory:
            raise ObjectStoreError(f"{self.url}: bucket {self.location.bucket!r} does not exist; create it (or fix the "
                                   "bucket name)")

    def size(self, rel: str) -> int | None:
        """The object's size, None when there is no such object."""
        with translated(f"{self.url}/{rel}"):
            info = self.fs.get_file_info(self._key(rel))
        return info.size if info.type == pafs.FileType.File else None

    def exists(self, rel: str) -> bool:
        return self.size(rel) is not None

    def open_input(self, rel: str) -> BinaryIO:
        """A sequential reader of the object (raises FileNotFoundError when there is none)."""
        if not self.exists(rel):
            raise FileNotFoundError(f"{self.url}/{rel}")
        with translated(f"{self.url}/{rel}"):
            return self.fs.open_input_stream(self._key(rel))

    def get_bytes(self, rel: str) -> bytes:
        with self.open_input(rel) as fh, translated(f"{self.url}/{rel}"):
            return fh.read()

    def list(self, rel_prefix: str = "") -> dict[str, pafs.FileInfo]:
        """``{key relative to the prefix: info}`` of every object under ``rel_prefix`` (recursively)."""
        base = self._key(rel_prefix) if rel_prefix else self._key()
        with translated(f"{self.url}: listing {rel_prefix or '/'}"):
            infos = self.fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
        root = self._key() + "/"
        return {i.path[len(root):]: i for i in infos if i.type == pafs.FileType.File and i.path.startswith(root)}

    def folders(self, rel_prefix: str = "") -> list[str]:
        """Names of the "folders" (common key prefixes) directly under ``rel_prefix``, sorted."""
        base = self._key(rel_prefix) if rel_prefix else self._key()
        with translated(f"{self.url}: listing {rel_prefix or '/'}"):
            infos = self.fs.get_file_info(pafs.FileSelector(base, recursive=False, allow_not_found=True))
        return sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory)

    def open_random(self, rel: str):
        """A seekable reader of the object (Parquet footers are read with a range request)."""
        if not self.exists(rel):
            raise FileNotFoundError(f"{self.url}/{rel}")
        with translated(f"{self.url}/{rel}"):
            return self.fs.open_input_file(self._key(rel))

    def copy_to(self, rel: str, dst: BinaryIO, on_chunk=None) -> int:
        """Stream the object into ``dst``; returns its size. ``on_chunk(bytes)`` sees every chunk (to hash)."""
        n = 0
        with self.open_input(rel) as src:
            while True:
                with translated(f"{self.url}/{rel}: reading"):
                    chunk = src.read(CHUNK)
                if not chunk:
                    return n
                if on_chunk:
                    on_chunk(chunk)
                dst.write(chunk)
                n += len(chunk)

    def sha256(self, rel: str) -> str | None:
        """The sha256 of the object's bytes on the server (read whole), None when there is no such object."""
        digest = hashlib.sha256()
        try:
            self.copy_to(rel, _Discard(), digest.update)
        except FileNotFoundError:
            return None
        return digest.hexdigest()

    # ------------------------------------------------------------------ write
    def put_bytes(self, rel: str, data: bytes) -> None:
        """Publish ``data`` as the object ``rel`` (see the module docstring: staging key, checked, copied)."""
        self.put_stream(rel, io.BytesIO(data))

    def put_stream(self, rel: str, src: BinaryIO) -> int:
        """Publish what ``src`` holds (read to its end) as the object ``rel``; returns its size."""
        with self.staged(src) as (staging, size):
            self.publish(staging, rel)
        return size

    @contextmanager
    def staged(self, src: BinaryIO, on_chunk=None) -> Iterator[tuple[str, int]]:
        """Upload ``src`` to a new staging key; yield (staging key, size) — the caller publishes it with
        :meth:`publish` (or not: a content check failed) — and delete the staging object afterwards.
        ``on_chunk(memoryview)`` sees every chunk sent (to hash on the way)."""
        staging = f"{STAGING}/{secrets.token_hex(8)}"
        sent = 0
        uploading = f"{self.url}: uploading"
        try:
            with translated(uploading):
                out = self.fs.open_output_stream(self._key(staging))
            try:
                buf = bytearray(CHUNK)
                view = memoryview(buf)
                while k := src.readinto(buf):  # an error reading the source is the source's, raised as it is
                    if on_chunk:
                        on_chunk(view[:k])
                    with translated(uploading):
                        out.write(view[:k])
                    sent += k
            except BaseException:
                with contextlib.suppress(Exception):
                    out.close()  # completes a partial staging object at worst: never published, deleted below
                raise
            with translated(uploading):
                out.close()
            stored = self.size(staging)
            if stored != sent:
                raise ObjectStoreError(f"{self.url}: the server holds {stored} bytes of an upload of {sent}; "
                                       "nothing was published")
            yield staging, sent
        finally:
            with contextlib.suppress(ObjectStoreError):  # a failed upload's own error is the one to report
                self.delete(staging)

    def publish(self, staging: str, rel: str) -> None:
        """Make the complete staging object the object ``rel`` (a server-side copy: all or nothing)."""
        with translated(f"{self.url}/{rel}: publishing"):
            self.fs.copy_file(self._key(staging), self._key(rel))

    def delete(self, rel: str) -> None:
        """Delete the object (no error when it is already gone)."""
        with translated(f"{self.url}/{rel}: deleting"):
            try:
                self.fs.delete_file(self._key(rel))
            except FileNotFoundError:
                pass

    def delete_folder(self, rel: str) -> None:
        """Delete every object under ``rel/`` and the folder marker pyarrow leaves when the last one goes
        (so the folder is not listed any more)."""
        with translated(f"{self.url}/{rel}: deleting"):
            try:
                self.fs.delete_dir(self._key(rel))
            except FileNotFoundError:
                pass

    def sweep_staging(self, stale_after_s: float = STALE_STAGING_S) -> int:
        """Delete staging objects of dead writers (older than ``stale_after_s``); returns how many."""
        now = time.time()
        n = 0
        for rel, info in self.list(STAGING).items():
            if info.mtime is None or now - info.mtime.timestamp() > stale_after_s:
                self.delete(rel)
                n += 1
        return n


def duckdb_filesystem(store: ObjectStore):
    """An fsspec file system answering ``s3://`` for DuckDB (``con.register_filesystem``), over this store's
    pyarrow client: DuckDB reads objects through the same client and AWS_* settings as the rest, without
    its httpfs extension (which a machine offline cannot download)."""
    from fsspec.implementations.arrow import ArrowFSWrapper

    class _S3(ArrowFSWrapper):
        protocol = "s3"

    return _S3(store.fs)

