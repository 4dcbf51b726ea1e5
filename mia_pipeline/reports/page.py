"""Self-contained HTML pages: inline CSS, plots embedded as PNG ``data:`` URIs, no external URL of any kind
(a trading machine may be offline), plus the Markdown twin of a page's summary for Dagster metadata.

A :class:`Page` is a list of blocks added in reading order::

    page = Page("Battle Navale performance", "2026-11-29 .. 2026-12-05")
    page.cards({"trades": "26", "success rate": "53.8 % [35.5, 71.2]"})
    page.table(frame, caption="By pattern")
    page.figure(fig, "Equity curve")       # closes ``fig``
    page.notice("warn", "Only 26 trades: intervals are wide.")
    html = page.html()

Text is always escaped; a table cell never holds markup. Plots come from :func:`new_figure` (the Agg
backend: no display needed).
"""

from __future__ import annotations

import base64
import html as _html
import io
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pandas as pd

NOTICE_KINDS = ("ok", "info", "warn", "error")

CSS = """
body{font-family:-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif;margin:0;background:#f6f7f9;color:#1c2330}
main{max-width:1180px;margin:0 auto;padding:24px 28px 48px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:30px 0 10px;border-bottom:1px solid #d8dde6;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}.sub{color:#5b6576;margin:0 0 18px}
table{border-collapse:collapse;margin:8px 0 6px;background:#fff;font-size:13px}
th,td{border:1px solid #d8dde6;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef1f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
caption{caption-side:top;text-align:left;font-weight:600;padding:4px 0}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:10px 0}
.card{background:#fff;border:1px solid #d8dde6;border-radius:6px;padding:8px 12px;min-width:130px}
.card .k{font-size:12px;color:#5b6576}.card .v{font-size:18px;font-weight:600}
.notice{border-radius:6px;padding:8px 12px;margin:8px 0;border:1px solid}
.notice.ok{background:#e9f7ee;border-color:#9fd5b0}.notice.info{background:#eef4fc;border-color:#a9c4ea}
.notice.warn{background:#fff6e0;border-color:#f0cf7a}.notice.error{background:#fdeceb;border-color:#eba29c}
figure{margin:12px 0;background:#fff;border:1px solid #d8dde6;padding:8px;display:inline-block}
figure img{max-width:100%;height:auto;display:block}figcaption{font-size:12px;color:#5b6576;margin-top:4px}
ul{margin:6px 0 6px 20px;padding:0}li{margin:3px 0}a{color:#1b5fbf}
footer{margin-top:36px;font-size:12px;color:#5b6576}
.status{font-weight:700}.status.PASS,.status.OK{color:#1d7a3a}.status.FAIL,.status.PROBLEM{color:#b3261e}
.status.WARN,.status.UNVERIFIED,.status.NO_DATA{color:#9a6700}
"""


def esc(value) -> str:
    return _html.escape("" if value is None else str(value), quote=True)


def fmt(value, digits: int = 4) -> str:
    """A cell's text: integers with thousands separators; floats >= 1 in magnitude with two decimals
    (``-1,234.50``), smaller ones to ``digits`` significant places (``0.5385``); NaN as ``-``."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if value == int(value) and abs(value) < 1e15:
            return f"{int(value):,}"
        if abs(value) >= 1:
            return f"{value:,.2f}"           # money, points, R multiples: 1,234.50
        return f"{value:.{digits}g}" if abs(value) >= 1e-3 else f"{value:.3e}"
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    try:
        if pd.isna(value):
            return "-"
    except (TypeError, ValueError):
        pass
    return str(value)


def new_figure(width: float = 9.0, height: float = 3.6, nrows: int = 1, ncols: int = 1, **kw):
    """A matplotlib figure on the Agg backend (no display): ``(fig, axes)``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt.subplots(nrows, ncols, figsize=(width, height), **kw)


def png_bytes(fig, dpi: int = 96) -> bytes:
    """The figure as PNG bytes; the figure is closed."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    try:
        fig.tight_layout()
        fig.savefig(buf, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    return buf.getvalue()


@dataclass
class Page:
    title: str
    subtitle: str = ""
    blocks: list[str] = field(default_factory=list)
    images: int = 0

    def h2(self, text: str) -> Page:
        self.blocks.append(f"<h2>{esc(text)}</h2>")
        return self

    def h3(self, text: str) -> Page:
        self.blocks.append(f"<h3>{esc(text)}</h3>")
        return self

    def p(self, text: str) -> Page:
        self.blocks.append(f"<p>{esc(text)}</p>")
        return self

    def bullets(self, items: Iterable[str]) -> Page:
        items = list(items)
        if items:
            self.blocks.append("<ul>" + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul>")
        return self

    def notice(self, kind: str, text: str) -> Page:
        if kind not in NOTICE_KINDS:
            raise ValueError(f"notice kind {kind!r} not in {NOTICE_KINDS}")
        self.blocks.append(f'<div class="notice {kind}">{esc(text)}</div>')
        return self

    def cards(self, figures: Mapping[str, object]) -> Page:
        self.blocks.append('<div class="cards">' + "".join(
            f'<div class="card"><div class="k">{esc(k)}</div><div class="v">{esc(fmt(v))}</div></div>'
            for k, v in figures.items()) + "</div>")
        return self

    def table(self, frame: pd.DataFrame | list[dict], caption: str | None = None, max_rows: int | None = None,
              index: bool = False, digits: int = 4) -> Page:
        """A table of ``frame`` (numbers right-aligned); rows past ``max_rows`` are counted, not shown."""
        df = pd.DataFrame(frame)
        if index:
            df = df.reset_index()
        hidden = 0
        if max_rows is not None and len(df) > max_rows:
            hidden, df = len(df) - max_rows, df.head(max_rows)
        head = "".join(f"<th>{esc(c)}</th>" for c in df.columns)
        rows = []
        for rec in df.itertuples(index=False, name=None):
            cells = []
            for v in rec:
                num = isinstance(v, (int, float)) and not isinstance(v, bool)
                cells.append(f'<td class="num">{esc(fmt(v, digits))}</td>' if num else f"<td>{esc(fmt(v, digits))}</td>")
            rows.append("<tr>" + "".join(cells) + "</tr>")
        cap = f"<caption>{esc(caption)}</caption>" if caption else ""
        self.blocks.append(f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")
        if hidden:
            self.p(f"... and {hidden:,} more row(s) (`--comprehensive` lists them all).")
        return self

    def figure(self, fig, caption: str, alt: str | None = None) -> Page:
        """Embed a matplotlib figure as a PNG data URI (the figure is closed)."""
        data = base64.b64encode(png_bytes(fig)).decode("ascii")
        self.images += 1
        self.blocks.append(f'<figure><img alt="{esc(alt or caption)}" src="data:image/png;base64,{data}">'
                           f"<figcaption>{esc(caption)}</figcaption></figure>")
        return self

    def link(self, href: str, text: str, note: str = "") -> Page:
        """A link to another local page (a relative path; never an external URL)."""
        if "://" in href or href.startswith("//"):
            raise ValueError(f"pages link only local files, not {href!r}")
        tail = f" — {esc(note)}" if note else ""
        self.blocks.append(f'<p><a href="{esc(href)}">{esc(text)}</a>{tail}</p>')
        return self

    def raw(self, html_text: str) -> Page:
        """Markup built by this module's helpers (e.g. :func:`status_span`)."""
        self.blocks.append(html_text)
        return self

    def html(self, generated: datetime | None = None, footer: str = "") -> str:
        when = (generated or datetime.now(UTC)).isoformat(timespec="seconds")
        sub = f'<p class="sub">{esc(self.subtitle)}</p>' if self.subtitle else ""
        foot = f"Generated {esc(when)} by mia-pipeline." + (f" {esc(footer)}" if footer else "")
        return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                f"<title>{esc(self.title)}</title><style>{CSS}</style></head><body><main>"
                f"<h1>{esc(self.title)}</h1>{sub}{''.join(self.blocks)}<footer>{foot}</footer></main></body></html>\n")


def status_span(status: str) -> str:
    key = status.upper().replace(" ", "_")
    return f'<span class="status {esc(key)}">{esc(status.upper())}</span>'


def md_table(frame: pd.DataFrame, max_rows: int = 12, digits: int = 4) -> str:
    """A small Markdown table (Dagster metadata renders it)."""
    df = pd.DataFrame(frame).head(max_rows)
    if df.empty:
        return "_(none)_"
    head = "| " + " | ".join(str(c) for c in df.columns) + " |"
    sep = "| " + " | ".join("---" for _ in df.columns) + " |"
    body = ["| " + " | ".join(fmt(v, digits).replace("|", "/") for v in rec) + " |"
            for rec in df.itertuples(index=False, name=None)]
    return "\n".join([head, sep, *body])
