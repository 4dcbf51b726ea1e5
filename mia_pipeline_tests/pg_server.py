"""A real PostgreSQL server for the tests, on 127.0.0.1, in a temporary folder (started and stopped here).

The server programs come from ``scripts/ensure_postgres.sh`` (Debian's PostgreSQL, installed if missing);
when they cannot be had, the tests that need them are skipped naming the reason. Run as root (this
machine's CI), the server runs as the ``postgres`` system user, which owns its folder (PostgreSQL
refuses to run as root); the folder lives under /tmp, which every user can reach.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
USER, PASSWORD = "mia", "mia-test-password"


def server_programs() -> tuple[Path | None, str]:
    """(folder of initdb/pg_ctl, "") or (None, why not)."""
    proc = subprocess.run(["bash", str(REPO / "scripts" / "ensure_postgres.sh")], capture_output=True, text=True,
                          timeout=900)
    if proc.returncode:
        return None, proc.stderr.strip() or "scripts/ensure_postgres.sh failed"
    return Path(proc.stdout.strip().splitlines()[-1]), ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PostgresServer:
    bin: Path
    folder: Path
    port: int

    @property
    def as_postgres(self) -> list[str]:
        return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *cmd: str, timeout: float = 120) -> None:
        proc = subprocess.run([*self.as_postgres, *cmd], capture_output=True, text=True, timeout=timeout,
                              cwd=self.folder)
        if proc.returncode:
            log = (self.folder / "server.log")
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.strip()}\n{tail}")

    def start(self) -> PostgresServer:
        data = self.folder / "data"
        pwfile = self.folder / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
            shutil.chown(pwfile, "postgres", "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(data), "-U", USER, "--pwfile", str(pwfile),
                  "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--no-sync")
        # fsync off: a test server (the durability settings of a real one are in docs/deploy.md)
        self._run(str(self.bin / "pg_ctl"), "-D", str(data), "-l", str(self.folder / "server.log"), "-w", "-o",
                  f"-h 127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off -c max_connections=200", "start")
        return self

    def create_database(self, name: str) -> None:
        self._run(str(self.bin / "createdb"), "-h", str(self.folder), "-p", str(self.port), "-U", USER, name)

    def env(self, db: str) -> dict[str, str]:
        """The MIA_PG_* variables deploy/dagster.postgres.yaml reads."""
        return {"MIA_PG_HOST": "127.0.0.1", "MIA_PG_PORT": str(self.port), "MIA_PG_USER": USER,
                "MIA_PG_PASSWORD": PASSWORD, "MIA_PG_DB": db}

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def start_server() -> PostgresServer:
    """A started server (raises RuntimeError naming why not; the caller skips)."""
    programs, why = server_programs()
    if programs is None:
        raise RuntimeError(why)
    folder = Path(tempfile.mkdtemp(prefix="mia-pg-", dir="/tmp"))
    os.chmod(folder, 0o700)
    server = PostgresServer(programs, folder, free_port())
    try:
        return server.start()
    except Exception:
        shutil.rmtree(folder, ignore_errors=True)
        raise
