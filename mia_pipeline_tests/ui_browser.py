"""Headless Chromium for the UI test: find (or install) it, screenshot a page together with its rendered
DOM, or open a page, click one of its tabs (Chrome DevTools Protocol) and screenshot that; read the
page's visible text and table rows.

Chromium comes from scripts/ensure_chromium.sh (installs Debian's package when missing; the test is
skipped, with the script's reason, when it cannot be installed).
"""

import base64
import contextlib
import json
import subprocess
import time
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ENSURE_CHROMIUM = REPO / "scripts" / "ensure_chromium.sh"
BUDGETS_MS = (20_000, 60_000)  # virtual time given to the page; the second is the retry
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
         "--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-extensions"]


def ensure_chromium() -> str:
    proc = subprocess.run(["bash", str(ENSURE_CHROMIUM)], capture_output=True, text=True, timeout=900)
    if proc.returncode == 3:
        pytest.skip(proc.stderr.strip() or "no chromium")
    assert proc.returncode == 0, f"ensure_chromium.sh exited {proc.returncode}: {proc.stderr.strip()}"
    return proc.stdout.strip().splitlines()[-1]


class _Text(HTMLParser):
    """Visible text of a DOM: one string per text node, plus the cells of every table row."""

    def __init__(self):
        super().__init__()
        self.texts: list[str] = []
        self.rows: list[list[str]] = []
        self._skip = 0
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        elif tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip -= 1
        elif tag in ("td", "th") and self._cell is not None:
            if self.rows:
                self.rows[-1].append(" ".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        text = data.strip()
        if text and not self._skip:
            self.texts.append(text)
            if self._cell is not None:
                self._cell.append(text)


def parse(dom: str) -> _Text:
    p = _Text()
    p.feed(dom)
    return p


def text_of(page: _Text) -> str:
    return "\n".join(page.texts)


def shoot(chromium: str, url: str, png: Path, profile: Path, ready, window: str = "1600,1000") -> _Text:
    """Screenshot ``url`` to ``png`` and return its rendered DOM (same page load); retried with more
    virtual time when ``ready(page)`` says the data is not on the page yet."""
    page = None
    for budget in BUDGETS_MS:
        png.unlink(missing_ok=True)
        proc = subprocess.run([
            chromium, *FLAGS, f"--user-data-dir={profile}", f"--window-size={window}",
            f"--virtual-time-budget={budget}", f"--screenshot={png}", "--dump-dom", url,
        ], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"chromium exited {proc.returncode} on {url}:\n{proc.stderr[-3000:]}"
        page = parse(proc.stdout)
        if ready(page):
            break
        print(f"\n{url}: data not on the page after {budget} ms of virtual time, retrying")
    assert png.is_file() and png.stat().st_size > 20_000, f"no real screenshot of {url}: {png}"
    return page


def value(page: _Text, label: str) -> str | None:
    """The value cell of the (metadata) table row whose first cell is ``label``."""
    return next((row[1] for row in page.rows if len(row) > 1 and row[0] == label), None)


@contextlib.contextmanager
def devtools(chromium: str, profile: Path, size, timeout: float, extra_flags=(), on_event=None):
    """A headless Chromium driven over the Chrome DevTools Protocol (``websockets``, which
    dagster-webserver's uvicorn already installs): yields ``(call, deadline)``, ``call(method, **params)``
    returning the result; every event the browser sends is passed to ``on_event(msg)``. The browser is
    stopped on exit."""
    from websockets.sync.client import connect

    profile.mkdir(parents=True, exist_ok=True)
    port_file = profile / "DevToolsActivePort"
    port_file.unlink(missing_ok=True)
    browser = subprocess.Popen([chromium, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
                                *extra_flags, "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    try:
        while not port_file.is_file() or not port_file.read_text().strip():
            assert browser.poll() is None and time.monotonic() < deadline, "chromium's DevTools port never opened"
            time.sleep(0.2)
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as resp:
            target = next(t for t in json.load(resp) if t["type"] == "page")
        with connect(target["webSocketDebuggerUrl"], max_size=None, open_timeout=30) as ws:
            ids = iter(range(1, 1_000_000))

            def call(method: str, **params):
                n = next(ids)
                ws.send(json.dumps({"id": n, "method": method, "params": params}))
                while True:
                    msg = json.loads(ws.recv(timeout=60))
                    if "method" in msg and on_event is not None:
                        on_event(msg)
                    if msg.get("id") == n:
                        assert "error" not in msg, f"{method}: {msg['error']}"
                        return msg["result"]

            call("Emulation.setDeviceMetricsOverride", width=size[0], height=size[1], deviceScaleFactor=1, mobile=False)
            yield call, deadline
    finally:
        browser.terminate()
        try:
            browser.wait(timeout=15)
        except subprocess.TimeoutExpired:
            browser.kill()
            browser.wait(timeout=10)


def shoot_tab(chromium: str, url: str, tab: str, png: Path, profile: Path, ready, size=(1600, 1000),
              timeout: float = 90) -> _Text:
    """Open ``url``, click the last element whose text is exactly ``tab`` (a tab that has no URL of its
    own), wait until ``ready(page)``, screenshot to ``png``; return the rendered DOM. Driven over the
    Chrome DevTools Protocol (``websockets``, which dagster-webserver's uvicorn already installs)."""
    with devtools(chromium, profile, size, timeout) as (call, deadline):
        def dom() -> _Text:
            return parse(call("Runtime.evaluate", expression="document.documentElement.outerHTML",
                              returnByValue=True)["result"].get("value") or "")

        def wait(done, what: str) -> _Text:
            while True:
                page = dom()
                if done(page):
                    return page
                if time.monotonic() > deadline:
                    pytest.fail(f"{url}: {what} not on the page within {timeout:.0f}s: {page.texts[-60:]}")
                time.sleep(0.5)

        call("Page.navigate", url=url)
        wait(lambda p: tab in p.texts, f"the tab {tab!r}")
        clicked = call("Runtime.evaluate", returnByValue=True, expression=(
            f"(() => {{ const hits = [...document.querySelectorAll('body *')].filter("
            f"e => e.textContent.trim() === {json.dumps(tab)}); "
            f"if (!hits.length) return false; hits[hits.length - 1].click(); return true; }})()"))
        assert clicked["result"].get("value") is True, f"{url}: no element {tab!r} to click"
        page = wait(ready, f"what the {tab!r} tab shows")
        time.sleep(1)  # let the last rows paint before the picture
        png.write_bytes(base64.b64decode(call("Page.captureScreenshot", format="png")["data"]))
        page = dom()
    assert png.is_file() and png.stat().st_size > 20_000, f"no real screenshot of {url} ({tab}): {png}"
    return page


def open_local_page(chromium: str, url: str, png: Path, profile: Path, size=(1400, 1000), timeout: float = 90) -> dict:
    """Open a local page in headless Chromium over the DevTools Protocol, wait until it has loaded, and
    return what a person would see and what the browser did: ``{"page": _Text, "text": str, "images":
    [{"src", "complete", "width", "height"}], "requests": [every URL the page asked for]}``; a full-page
    screenshot goes to ``png``."""
    requests: list[str] = []

    def seen(msg):
        if msg["method"] == "Network.requestWillBeSent":
            requests.append(msg["params"]["request"]["url"])

    with devtools(chromium, profile, size, timeout, ["--allow-file-access-from-files"], seen) as (call, deadline):
        def js(expression: str):
            return call("Runtime.evaluate", expression=expression, returnByValue=True,
                        awaitPromise=True)["result"].get("value")

        call("Network.enable")
        call("Page.enable")
        call("Page.navigate", url=url)
        while js("document.readyState") != "complete" or not js(
                "[...document.images].every(i => i.complete)"):
            assert time.monotonic() < deadline, f"{url} did not finish loading within {timeout:.0f}s"
            time.sleep(0.2)
        images = js("[...document.images].map(i => ({src: i.src.slice(0, 40), complete: i.complete, "
                    "width: i.naturalWidth, height: i.naturalHeight}))")
        dom = js("document.documentElement.outerHTML") or ""
        width, height = js("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
        shot = call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                    clip={"x": 0, "y": 0, "width": width, "height": min(height, 16000), "scale": 1})
        png.write_bytes(base64.b64decode(shot["data"]))
        js("1")  # drain events sent after the screenshot
    page = parse(dom)
    return {"page": page, "text": text_of(page), "images": images, "requests": requests}
