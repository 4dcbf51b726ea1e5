"""Test doubles for the alert tests: settings with chosen monitoring values, a clock, a local webhook."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pydantic import SecretStr

from mia_pipeline.settings import load_settings

SECRET = "T0KEN-s3cr3t-9f8e7d"


def settings_for(layout, **monitoring):
    """The data root's settings with ``monitoring`` overrides; storage floors off unless given (the
    test machine's disk is not under test)."""
    base = load_settings(data_dir=str(layout.root))
    mon = {"storage_min_free_mb": 0, "storage_min_free_pct": 0.0, **monitoring}
    if isinstance(mon.get("webhook_url"), str):
        mon["webhook_url"] = SecretStr(mon["webhook_url"])
    backup = mon.pop("backup_target", None)
    update = {"monitoring": base.monitoring.model_copy(update=mon)}
    if backup is not None:
        update["backup"] = base.backup.model_copy(update={"target": backup})
    return base.model_copy(update=update)


class Clock:
    """Wall and monotonic time moving together unless told otherwise (a clock jump moves only wall)."""

    def __init__(self, start: datetime = datetime(2025, 6, 23, 14, 0, tzinfo=UTC), mono: float = 1_000.0):
        self.now, self.mono = start, mono

    def advance(self, minutes: float) -> Clock:
        self.now += timedelta(minutes=minutes)
        self.mono += minutes * 60
        return self

    def jump(self, minutes: float) -> Clock:
        self.now += timedelta(minutes=minutes)
        return self

    @property
    def kw(self) -> dict:
        return {"now": self.now, "mono": self.mono}


class Webhook:
    """A local HTTP server on 127.0.0.1 playing a webhook. ``script``: one behaviour per request
    (``ok``, ``500``, ``hang``, ``redirect``), the last one repeating. ``received``: JSON bodies of
    requests answered 2xx; ``hits``: every request path seen."""

    def __init__(self, *script: str, hang_s: float = 10.0):
        self.script, self.hang_s = list(script or ["ok"]), hang_s
        self.received: list[dict] = []
        self.hits: list[str] = []
        self.lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with hook.lock:
                    hook.hits.append(self.path)
                    todo = hook.script.pop(0) if len(hook.script) > 1 else hook.script[0]
                if todo == "hang":
                    time.sleep(hook.hang_s)
                    return
                if todo == "redirect":
                    self.send_response(302)
                    self.send_header("Location", "/elsewhere")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                code = 500 if todo == "500" else 200
                if code == 200:
                    with hook.lock:
                        hook.received.append(json.loads(body))
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False  # a hanging handler must not hold up the test
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/{SECRET}"

    def __enter__(self) -> Webhook:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
