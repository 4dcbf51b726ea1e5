"""`mia simulate`: paper-trade synthetic sessions into the landing zone (the embedded default source)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from mia_pipeline.cli.common import (
    DAY,
    SEED,
    CliState,
    LazyChoice,
    check_day_range,
    pass_state,
    process_seconds,
)


def _scenarios() -> tuple[str, ...]:
    from mia_pipeline.synthetic import SCENARIOS  # pandas and numpy: only when the command needs them

    return SCENARIOS


@click.command("simulate")
@click.option("--start", type=DAY, default=None,
              help="First simulated day, YYYY-MM-DD (default: today UTC minus --days, i.e. the days up to yesterday).")
@click.option("--days", default=1, show_default=True, type=int, help="Number of calendar days (weekends produce nothing).")
@click.option("--seed", default=7, show_default=True, type=SEED,
              help="Seed (an integer >= 0): the same seed rewrites the same bytes.")
@click.option("--realtime", is_flag=True,
              help="Emit live, paced by the wall clock and stamped with real time, until Ctrl-C or --days elapse.")
@click.option("--speed", default=1.0, show_default=True, type=float,
              help="Realtime only: simulated seconds per wall-clock second.")
@click.option("--max-events", type=int, default=None, help="Realtime only: stop after this many events.")
@click.option("--scenario", type=LazyChoice(_scenarios), default=None, metavar="SCENARIO",
              help="Use this scenario every day (default: a seeded mix per day); "
                   "`mia generate --list` shows them.")
@click.option("--symbols", default="ES,NQ", show_default=True, help="Comma-separated subset of ES,NQ to trade.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Landing-zone folder (default: <data dir>/live/streaming).")
@pass_state
def simulate(state: CliState, start, days: int, seed: int, realtime: bool, speed: float, max_events: int | None,
             scenario: str | None, symbols: str, out: Path | None) -> None:
    """Run the reference strategy on synthetic ES/NQ sessions and write trade, trade_exit, signal,
    market_bar and performance events to the landing zone (paper_trading_<day>.jsonl).

    History (default) writes each weekday's US regular session as fast as possible and replaces that
    day's file atomically; re-running rewrites identical bytes.
    """
    from mia_pipeline.sources.paper_trading import simulate as run_simulation
    from mia_pipeline.sources.paper_trading.engine import MAX_DAYS, check_symbols

    if not 1 <= days <= MAX_DAYS:
        raise click.BadParameter(f"{days} is not a day count; use an integer from 1 to {MAX_DAYS}, e.g. --days 3",
                                 param_hint="--days")
    if not speed > 0:
        raise click.BadParameter(f"{speed} must be > 0 (e.g. --speed 60 plays a minute per second)", param_hint="--speed")
    if max_events is not None and max_events < 1:
        raise click.BadParameter(f"{max_events} must be >= 1", param_hint="--max-events")
    try:
        syms = check_symbols([s.strip() for s in symbols.split(",") if s.strip()])
    except ValueError as exc:
        raise click.BadParameter(f"{exc}; e.g. --symbols ES,NQ", param_hint="--symbols") from None
    today = datetime.now(UTC).date()
    if start is None:
        start = today - timedelta(days=days)
    check_day_range(start, "--start")
    last = start + timedelta(days=days - 1)  # MAX_DAYS after LAST_DAY is still a date
    if not realtime and last > today:
        raise click.BadParameter(
            f"the simulated days run to {last}, after today ({today}); the collector rejects future timestamps. "
            f"Use an earlier --start (e.g. --start {today - timedelta(days=days)}) or --realtime for live events.",
            param_hint="--start")
    if not realtime and last == today:
        click.echo("note: today's session is simulated in full; events later than now will be quarantined "
                   "as timestamp_in_future until that time has passed", err=True)
    out_dir = out if out is not None else state.layout.streaming_dir
    kwargs = dict(start=start, days=days, seed=seed, realtime=realtime, symbols=syms, scenario_schedule=scenario,
                  speed=speed, max_events=max_events)
    if realtime:
        click.echo(f"paper trading live into {out_dir} (Ctrl-C to stop)")
        summary = run_simulation(out_dir, **kwargs)
    elif sys.stdout.isatty():
        with click.progressbar(length=days, label="simulating", item_show_func=lambda d: d or "") as bar:
            summary = run_simulation(out_dir, **kwargs,
                                     on_progress=lambda done, total, label: bar.update(1, current_item=label))
    else:
        summary = run_simulation(out_dir, **kwargs)
    if not realtime and out_dir.resolve() == state.layout.streaming_dir.resolve():
        from mia_pipeline.cli.dagster_bridge import Recorder

        with Recorder(state.layout) as recorder:
            recorder.paper_trading(summary)
    _print_summary(summary, out_dir, process_seconds())


def _print_summary(s, out_dir: Path, wall_s: float) -> None:
    took = f"{wall_s:.1f} s for the command (simulation {s.elapsed_s:.1f} s, the rest recording in Dagster)"
    if s.realtime:
        head = f"realtime run: {took}{' (interrupted)' if s.interrupted else ''}"
    else:
        head = (f"simulated {s.days} day(s) from {s.start} (seed {s.seed}): {len(s.trading_days)} trading, "
                f"{len(s.skipped_days)} weekend day(s) skipped, {took}")
    click.echo(head)
    for day, scenario in s.scenarios.items():
        click.echo(f"  {day}: {scenario}")
    counts = ", ".join(f"{k}={v:,}" for k, v in s.counts.items()) or "none"
    click.echo(f"events: {s.events:,} ({counts})")
    click.echo(f"trades: {s.trades}, win rate {s.win_rate:.1%}, net pnl ${s.pnl:,.2f}"
               + (f" after ${s.commissions:,.2f} commissions" if s.commissions else ""))
    click.echo(f"files: {len(s.files)} in {out_dir}")
