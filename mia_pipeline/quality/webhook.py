"""Alert delivery to an optional webhook (a Slack-style incoming webhook): one JSON POST per alert.

The URL is a secret (it carries the token): it never appears in a message, log line, exception text
or alert line — :func:`describe` shows only its scheme and host. Delivery is bounded: each attempt
times out after ``timeout_s``; 5xx, 429, timeouts and refused connections are retried with
exponential backoff (0.5 s, 1 s, 2 s, … capped at 8 s) up to ``retries`` times, all within a total
budget (:func:`budget_s`); a redirect (3xx) is not followed and counts as a failure, as does any
other 4xx (neither would change on a retry).

Standard library only (``urllib.request``).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 8.0


@dataclass
class Delivery:
    ok: bool
    attempts: int
    error: str = ""  # why it failed, without the URL


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not a new place to send the secret body: urllib then raises HTTPError."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: PLR0913 (urllib's signature)
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def describe(url: str) -> str:
    """``the webhook at https://hooks.example.com`` — scheme and host only, never path or query."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        return f"the webhook at {parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")
    except ValueError:
        return "the webhook"


def backoff_s(attempt: int) -> float:
    """Pause after failed attempt number ``attempt`` (0-based)."""
    return min(BACKOFF_FIRST_S * 2 ** attempt, BACKOFF_MAX_S)


def budget_s(timeout_s: float, retries: int) -> float:
    """Longest one delivery can take: every attempt timing out plus every pause."""
    return timeout_s * (retries + 1) + sum(backoff_s(i) for i in range(retries))


def slack_body(event: dict) -> dict:
    """Slack-compatible body: ``text`` for humans plus the alert's structured fields."""
    verb = "RESOLVED" if event.get("state") == "resolved" else event.get("level", "ALERT")
    text = f"[{verb}] {event.get('name', event.get('source', 'alert'))}: {event.get('message', '')}"
    return {"text": text, "alert": {k: event.get(k) for k in
                                    ("name", "state", "level", "incident", "ts", "source", "message", "context")}}


def _scrub(text: str, url: str) -> str:
    parts = urlsplit(url)
    for secret in (url, parts.path, parts.query):
        if secret and len(secret) > 1:
            text = text.replace(secret, "…")
    return text


def _attempt(url: str, data: bytes, timeout_s: float) -> tuple[bool, bool, str]:
    """(ok, worth retrying, why)."""
    try:
        req = urllib.request.Request(url, data=data, method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "mia-pipeline"})
        with _OPENER.open(req, timeout=timeout_s) as resp:
            resp.read(65536)
            return True, False, ""
    except urllib.error.HTTPError as exc:
        code = exc.code
        exc.close()
        if 300 <= code < 400:
            return False, False, f"answered HTTP {code} (a redirect, not followed)"
        return False, code >= 500 or code == 429, f"answered HTTP {code}"
    except TimeoutError:
        return False, True, f"did not answer within {timeout_s:.2g} s"
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            return False, True, f"did not answer within {timeout_s:.2g} s"
        why = getattr(reason, "strerror", None) or type(reason).__name__
        return False, True, f"could not be reached ({why})"
    except ValueError as exc:  # a malformed URL: its text would quote the URL, so only the type is said
        return False, False, f"is not a usable URL ({type(exc).__name__})"
    except OSError as exc:  # connection reset mid-answer, …
        return False, True, f"failed ({type(exc).__name__})"


def post(url: str, body: dict, *, timeout_s: float, retries: int, deadline: float | None = None,
         sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> Delivery:
    """POST ``body`` as JSON to ``url``; retry as the module docstring says, never past ``deadline``
    (a ``clock()`` value). Never raises for a network failure; the returned error has no URL in it."""
    data = json.dumps(body, default=str).encode()
    why, attempt = "", 0
    for attempt in range(retries + 1):
        left = None if deadline is None else deadline - clock()
        if left is not None and left <= 0.05:
            why = why or "was not tried (no time left in this evaluation)"
            break
        ok, again, why = _attempt(url, data, timeout_s if left is None else max(0.05, min(timeout_s, left)))
        if ok:
            return Delivery(True, attempt + 1)
        if not again or attempt == retries:
            return Delivery(False, attempt + 1, _scrub(f"{describe(url)} {why}", url))
        pause = backoff_s(attempt)
        if deadline is not None and clock() + pause >= deadline:
            return Delivery(False, attempt + 1, _scrub(f"{describe(url)} {why}", url))
        sleep(pause)
    return Delivery(False, attempt, _scrub(f"{describe(url)} {why}", url))
