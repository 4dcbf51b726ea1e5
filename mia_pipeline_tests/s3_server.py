"""A local S3-compatible server for the tests: moto in server mode on 127.0.0.1 (a dev dependency), started
and stopped here. It speaks the S3 REST protocol (signatures, multipart uploads, CopyObject, listings), so
the product's pyarrow S3 client talks to it exactly as to AWS or MinIO."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from mia_pipeline_tests.pg_server import free_port

PROGRAM = Path(sys.executable).parent / "moto_server"
KEY_ID, SECRET = "mia-test-key", "mia-test-secret"


@dataclass
class S3Server:
    port: int
    proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """The AWS_* variables the product reads (see mia_pipeline/storage/objects.py)."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET,
                "AWS_REGION": "us-east-1"}

    def start(self) -> S3Server:
        if not PROGRAM.exists():
            raise RuntimeError(f"{PROGRAM} is missing: install the dev dependencies (make test does)")
        self.proc = subprocess.Popen([str(PROGRAM), "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto_server exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1):
                    return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("moto_server did not answer within 60 s")

    def create_bucket(self, name: str) -> None:
        import pyarrow.fs as pafs

        # allow_bucket_creation is a client setting; the product never creates buckets (the operator does)
        creator = pafs.S3FileSystem(access_key=KEY_ID, secret_key=SECRET, endpoint_override=f"127.0.0.1:{self.port}",
                                    scheme="http", region="us-east-1", allow_bucket_creation=True)
        creator.create_dir(name)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def start_server() -> S3Server:
    return S3Server(free_port()).start()
