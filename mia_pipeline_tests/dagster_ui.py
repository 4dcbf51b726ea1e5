"""A Dagster webserver + daemon on a data root's instance (`dagster dev`, as `make ui` runs it) for the tests
that walk the UI: start and stop it, wait for something, ask its GraphQL API (what the UI asks)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WORKSPACE = REPO / "workspace.yaml"  # names the code location `mia_pipeline`, as `make ui` does
DAGSTER = Path(sys.executable).with_name("dagster")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_dagster_dev(layout, port: int, log: Path) -> subprocess.Popen:
    """Webserver + daemon on the data root's instance, in their own process group (see `stop`)."""
    env = {**os.environ, "DAGSTER_HOME": str(layout.dagster_dir), "MIA_DATA_DIR": str(layout.root)}
    env.pop("MIA_CONFIG", None)
    with open(log, "wb") as out:
        return subprocess.Popen(
            [str(DAGSTER), "dev", "-h", "127.0.0.1", "-p", str(port), "-w", str(WORKSPACE)],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM to `dagster dev` (it shuts down its webserver, daemon and code servers), then SIGKILL whatever
    is left of its process group (a signal sent to the whole group at once can leave it hanging)."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=45)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


def poll(what: str, probe, timeout: float, log: Path, proc: subprocess.Popen, every: float = 2.0):
    """``probe()`` until it returns something truthy (returned); fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            pytest.fail(f"dagster dev exited {proc.returncode} while waiting for {what}:\n{log.read_text()[-3000:]}")
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:.0f}s\n{log.read_text()[-3000:]}")
        time.sleep(every)


def up(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/server_info", timeout=5) as resp:
            return resp.status == 200
    except OSError:
        return False


def graphql(base: str, query: str, variables: dict | None = None, attempts: int = 5) -> dict:
    """The ``data`` of a GraphQL request (each request is a fresh context); retried on network errors."""
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    for attempt in range(attempts):
        request = urllib.request.Request(f"{base}/graphql", data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=120) as resp:
                answer = json.load(resp)
            break
        except urllib.error.HTTPError as exc:  # the server answered: its GraphQL errors say why
            pytest.fail(f"GraphQL answered HTTP {exc.code}: {exc.read().decode(errors='replace')[:2000]}")
        except (urllib.error.URLError, TimeoutError, ConnectionError):
            if attempt == attempts - 1:
                raise
            time.sleep(3)
    assert not answer.get("errors"), answer["errors"]
    return answer["data"]


def launch_backfill(base: str, assets, days) -> str:
    """A backfill as the UI's "Materialize… > backfill" launches it (the daemon runs it)."""
    data = graphql(base, """mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) {
        __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }""",
                   {"p": {"assetSelection": [{"path": [a]} for a in assets], "partitionNames": list(days)}})
    launched = data["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    return launched["backfillId"]


def backfill(base: str, backfill_id: str) -> dict:
    return graphql(base, """query($id: String!) { partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill {
        status runs(limit: 10) { runId status tags { key value } } } } }""", {"id": backfill_id})["partitionBackfillOrError"]
