"""A Redis broker and Celery workers for the tests (dagster-celery), on 127.0.0.1, started and stopped here.

``scripts/ensure_redis.sh`` gives Debian's redis-server (installed if missing); the tests that need it are
skipped naming the reason when it cannot be had. Workers are ``dagster-celery worker start`` processes,
one task at a time each, with the data root's environment (DAGSTER_HOME, MIA_DATA_DIR, the instance's
credentials and the broker).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from mia_pipeline_tests.pg_server import REPO, free_port

BIN = Path(sys.executable).parent


def redis_program() -> tuple[str | None, str]:
    proc = subprocess.run(["bash", str(REPO / "scripts" / "ensure_redis.sh")], capture_output=True, text=True,
                          timeout=900)
    if proc.returncode:
        return None, proc.stderr.strip() or "scripts/ensure_redis.sh failed"
    return proc.stdout.strip().splitlines()[-1], ""


@dataclass
class Redis:
    program: str
    folder: Path
    port: int
    proc: subprocess.Popen | None = None

    @property
    def broker(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def backend(self) -> str:
        return f"redis://127.0.0.1:{self.port}/1"

    def start(self) -> Redis:
        self.proc = subprocess.Popen([self.program, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(self.folder)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        import socket

        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on 127.0.0.1:{self.port}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        shutil.rmtree(self.folder, ignore_errors=True)


def start_redis() -> Redis:
    program, why = redis_program()
    if program is None:
        raise RuntimeError(why)
    return Redis(program, Path(tempfile.mkdtemp(prefix="mia-redis-")), free_port()).start()


@dataclass
class Workers:
    """``n`` dagster-celery workers (one task at a time each) in their own process groups."""

    folder: Path
    env: dict
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self, names: list[str], redis: Redis) -> Workers:
        config = self.folder / "celery.yaml"
        from mia_pipeline.defs.distributed import WORKER_SETTINGS

        settings = "".join(f"      {k}: {str(v).lower()}\n" for k, v in WORKER_SETTINGS.items())
        config.write_text(f"execution:\n  config:\n    broker: {redis.broker}\n    backend: {redis.backend}\n"
                          f"    config_source:\n{settings}")
        for name in names:
            log = open(self.folder / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
            self.procs[name] = subprocess.Popen(
                [str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app", "-y", str(config),
                 "-n", name, "--", "--concurrency", "1"],
                cwd=self.folder, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 120
        while not all(f"{n}@" in self.log(n) and " ready." in self.log(n) for n in names):
            if time.monotonic() > deadline:
                raise RuntimeError("workers not ready:\n" + "\n".join(self.log(n)[-1500:] for n in names))
            time.sleep(0.5)
        return self

    def log(self, name: str) -> str:
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def tasks_done(self, name: str) -> int:
        return self.log(name).count("succeeded in")

    def step_pid(self, run_id: str) -> int | None:
        """The pid of the worker process executing ``run_id``'s step (from its STEP_START line), if any."""
        for name in self.procs:
            for line in self.log(name).splitlines():
                if run_id in line and "STEP_START" in line:
                    return int(line.split(f"{run_id} - ", 1)[1].split(" - ", 1)[0])
        return None

    def kill(self, name: str) -> None:
        """SIGKILL the worker and every process of its group (the pool child executing a step)."""
        try:
            os.killpg(self.procs[name].pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.procs[name].wait(timeout=30)

    def stop(self) -> None:
        for proc in self.procs.values():
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        for name, proc in self.procs.items():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill(name)
