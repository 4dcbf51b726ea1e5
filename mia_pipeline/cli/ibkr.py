"""`mia backfill ibkr`, `mia record ibkr`, `mia sources test` (the guide's --test-sources).

Thin: the work is in ``mia_pipeline.sources.ibkr`` (imported inside the commands, it loads ib_async).
Exit codes: 0 ok; 1 IB unreachable, a day failed, a source down; 2 bad arguments.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import click

from mia_pipeline.cli.common import DAY, EXIT_PROBLEM, CliState, check_day_range, pass_state

TIMEFRAMES = ("1min", "5min", "15min")  # settings.IBKR_TIMEFRAMES (not imported: pydantic is slow for --help)
DATA_TYPES = ("BID_ASK", "TRADES", "VOLUME", "VOLATILITY")
MAX_DAYS = 5 * 366


def _quiet_ib_async() -> None:
    """ib_async logs its own connection errors to stderr; these commands say the reason in one line."""
    import logging

    logging.getLogger("ib_async").setLevel(logging.CRITICAL)


def _fail(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    raise SystemExit(EXIT_PROBLEM)


@click.group("backfill")
def backfill() -> None:
    """Historical data from a broker into the daily datasets."""


@backfill.command("ibkr")
@click.option("--start", type=DAY, required=True, help="First UTC day, YYYY-MM-DD.")
@click.option("--end", type=DAY, required=True, help="Last UTC day (included), YYYY-MM-DD.")
@click.option("--bar-size", "bar_sizes", multiple=True, type=click.Choice(TIMEFRAMES),
              help="Bar size (repeatable; default: ibkr.timeframes).")
@click.option("--what", "whats", multiple=True, type=click.Choice(DATA_TYPES, case_sensitive=False),
              help="Data type (repeatable; default: ibkr.data_types). TRADES/VOLUME are refused for FX pairs.")
@click.option("--symbol", "symbols", multiple=True, help="Only this configured symbol (repeatable), e.g. EURUSD or ES.")
@click.option("--retry-unavailable", is_flag=True,
              help="Ask again for series IB said it does not serve (forget data/live/ibkr_unavailable.json).")
@pass_state
def backfill_ibkr(state: CliState, start, end, bar_sizes, whats, symbols, retry_unavailable: bool) -> None:
    """Land IB bars of each UTC day from --start to --end in market_bars, pacing-safe.

    A day IB answers empty (or not at all) is retried, then reported as failed (exit 1); it is never
    stored as an empty complete day. Each day written is recorded in Dagster."""
    _quiet_ib_async()
    check_day_range(start, "--start")
    check_day_range(end, "--end", "the last day")
    if end < start:
        raise click.BadParameter(f"--end {end} is before --start {start}; give --start <= --end", param_hint="--end")
    today = datetime.now(UTC).date()
    if start > today:
        raise click.BadParameter(f"{start} is in the future: IB has no history for it yet (today is {today} UTC)",
                                 param_hint="--start")
    end = min(end, today)
    if (end - start).days + 1 > MAX_DAYS:
        raise click.BadParameter(f"{(end - start).days + 1} days asked; at most {MAX_DAYS} (5 years) per run: "
                                 "split the range", param_hint="--start/--end")
    from mia_pipeline.sources.ibkr.backfill import BackfillAborted, Unavailable
    from mia_pipeline.sources.ibkr.service import PlanError, plan, run_backfill, unavailable_file
    from mia_pipeline.sources.ibkr.session import ConnectFailure

    settings, layout = state.settings, state.layout
    settings.require("ibkr_market_data")  # off -> exit 2 naming the key
    try:
        p = plan(settings.ibkr, symbols, bar_sizes, tuple(w.upper() for w in whats), frozenset(settings.symbols))
    except PlanError as exc:
        raise click.BadParameter(str(exc), param_hint="--symbol/--what") from None
    for line in p.refused:
        click.echo(f"note: {line}", err=True)
    if retry_unavailable:
        click.echo(f"forgot {Unavailable(unavailable_file(layout)).forget()} unavailable series")
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    click.echo(f"backfilling {len(p.series)} series x {len(days)} day(s) from {settings.ibkr.host}:"
               f"{settings.ibkr.port} (IB pacing: at most 60 requests per 10 minutes)")
    written: dict[str, set] = {}
    results = []

    def on_result(r) -> None:
        results.append(r)
        name = f"{r.series.instrument.symbol} {r.series.timeframe} {r.series.what} {r.day}"
        if r.status == "written":
            click.echo(f"{name}: {r.rows:,} bars")
        elif r.status != "closed":
            click.echo(f"{name}: {r.status.upper()} {r.detail}", err=r.status == "failed")

    aborted = None
    try:
        run_backfill(settings.ibkr, layout, state.store, p.series, days, known_symbols=frozenset(settings.symbols),
                     on_result=on_result, written=written)
    except ConnectFailure as exc:
        _fail(f"cannot connect to IB: {exc}")
    except BackfillAborted as exc:
        aborted = str(exc)
    finally:
        _record(state, written, results)
    failed = [r for r in results if r.status == "failed"]
    done = sum(r.status == "written" for r in results)
    click.echo(f"{done} day(s) written, {len(failed)} failed, "
               f"{sum(r.status == 'unavailable' for r in results)} unavailable, "
               f"{sum(r.status == 'closed' for r in results)} closed")
    if aborted:
        _fail(f"{aborted}; run the same command again to finish (written days are kept)")
    if failed:
        _fail(f"{len(failed)} day(s) not stored: " + "; ".join(
            f"{r.series.name} {r.day}" for r in failed[:10]) + (" ..." if len(failed) > 10 else ""))


def _record(state: CliState, written: dict[str, set], results) -> None:
    """Dagster: a market_bars materialization (with checks) per day written, and the series' partitions."""
    if not any(written.values()):
        return
    from mia_pipeline.cli.dagster_bridge import Recorder, open_instance
    from mia_pipeline.defs.ibkr import record_backfill

    with Recorder(state.layout) as recorder:
        recorder.written(state.store, {ds: sorted(days) for ds, days in written.items()
                                            if ds in ("market_bars", "raw_events")})
    try:
        with open_instance(state.layout) as instance:
            record_backfill(instance, results)
    except Exception as exc:  # the bars are stored; only the series view is late
        click.echo(f"warning: series partitions not recorded in Dagster ({type(exc).__name__}: {exc})", err=True)


@click.group("sources")
def sources() -> None:
    """Configured data sources."""


@sources.command("test")
@click.option("--timeout", type=click.FloatRange(0.5, 120), default=None,
              help="Seconds to wait for each source (default: ibkr.connect_timeout_s).")
@pass_state
def sources_test(state: CliState, timeout: float | None) -> None:
    """Is each configured source reachable, and if not, why (exit 1 if one is down)."""
    _quiet_ib_async()
    from mia_pipeline.sources.ibkr.feed import check_ibkr

    settings = state.settings
    down = 0
    if settings.sources.ibkr_market_data:
        check = check_ibkr(settings.ibkr, timeout)
        click.echo(f"IBKR   {settings.ibkr.host}:{settings.ibkr.port} client {settings.ibkr.client_id}: {check}")
        down += not check.ok
    else:
        click.echo("IBKR   off (data_collection.sources.ibkr_market_data)")
    if settings.sources.sierra_chart_data:
        from mia_pipeline.cli.sierra import sierra_source_check

        ok, text = sierra_source_check(settings)
        click.echo(text)
        down += not ok
    else:
        click.echo("Sierra off (data_collection.sources.sierra_chart_data)")
    if down:
        raise SystemExit(EXIT_PROBLEM)


def _duration(ctx, param, value):
    if value is not None and (not math.isfinite(value) or value <= 0):
        raise click.BadParameter(f"{value} is not a positive number of seconds, e.g. --duration 3600")
    return value


@click.group("record")
def record() -> None:
    """Live recorders writing into the landing zone."""


def _attach_sierra() -> None:
    from mia_pipeline.cli.sierra import record_sierra  # its top level imports only click

    record.add_command(record_sierra)


@record.command("ibkr")
@click.option("--duration", type=float, callback=_duration, default=None,
              help="Stop after this many seconds (default: until Ctrl-C).")
@click.option("--flush-every", type=click.FloatRange(0.05, 60), default=1.0, show_default=True,
              help="Seconds between flushes of buffered events to the landing zone.")
@pass_state
def record_ibkr(state: CliState, duration: float | None, flush_every: float) -> None:
    """Record quotes, RTVolume trades and 5-s bars of the configured contracts into data/live/streaming/.

    Reconnects with backoff after a lost socket and re-issues every subscription; resubscribes on IB's
    1101; writes the gaps it saw as events. Run `mia collect start` to land what it writes."""
    from mia_pipeline.sources.ibkr.recorder import run_recorder
    from mia_pipeline.sources.ibkr.session import ConnectFailure

    settings = state.settings
    settings.require("ibkr_market_data")  # off -> exit 2 naming the key
    try:
        summary = run_recorder(settings.ibkr, state.layout, duration_s=duration, flush_every_s=flush_every,
                               say=lambda line: click.echo(line, err=True))
    except ConnectFailure as exc:
        _fail(f"cannot connect to IB: {exc}")
    except KeyboardInterrupt:
        click.echo("stopped", err=True)
        return
    click.echo(summary)


_attach_sierra()
