"""`mia generate` (synthetic ES/NQ sessions to Parquet) and `mia report realism` (stylized facts).

Exit codes: 0 ok; 1 the realism battery found a failing fact; 2 bad input (unknown scenario or
leadership, strength outside [0, 0.4], minutes outside 1..1440, days outside 1..3660, a negative seed,
start without a UTC offset or outside 1970-2099).
"""

from __future__ import annotations

import os
import sys
from datetime import datetime, timedelta
from pathlib import Path

import click

from mia_pipeline.cli.common import check_day_range

MAX_MINUTES = 24 * 60  # one session covers at most a day; --days makes more
MAX_DAYS = 3660


def _vocab():
    """``mia_pipeline.synthetic.config``, imported on use: the synthetic package loads pandas and numpy."""
    from mia_pipeline.synthetic import config

    return config


def _backtest_root(ctx: click.Context) -> Path:
    """``<data>/backtest``: from the ``mia`` group's layout (``--data-dir``, mia.yaml, $MIA_DATA_DIR)
    when run under it, else from $MIA_DATA_DIR (default ./data)."""
    layout = getattr(ctx.find_root().obj, "layout", None)
    if layout is not None:
        return Path(layout.backtest_dir)
    return Path(os.environ.get("MIA_DATA_DIR") or "./data") / "backtest"


def _start(value: str) -> datetime:
    try:
        start = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not an ISO date-time ({exc})", param_hint="--start") from None
    if start.tzinfo is None or start.utcoffset() is None:
        raise click.BadParameter(
            f"{value!r} has no UTC offset; give one, e.g. 2025-08-21T13:30:00+00:00 or ...T09:30:00-04:00",
            param_hint="--start")
    return start


def _list_scenarios() -> None:
    v = _vocab()
    width = max(map(len, v.SCENARIOS))
    for name in v.SCENARIOS:
        click.echo(f"{name:<{width}}  {v.SCENARIO_DESCRIPTIONS[name]}")
    click.echo(f"\nleadership: {', '.join(v.LEADERSHIPS)}; strength in [{v.STRENGTH_RANGE[0]}, {v.STRENGTH_RANGE[1]}]")


@click.command("generate")
@click.option("--scenario", default="normal", show_default=True,
              help="Scenario name; `--list` shows every scenario with its description.")
@click.option("--start", "start_text", default=None, help="Session start, ISO 8601 with UTC offset. [required]")
@click.option("--minutes", default=120, show_default=True, type=int,
              help=f"Length of each session (1 to {MAX_MINUTES}).")
@click.option("--days", default=1, show_default=True, type=int,
              help=f"Consecutive days (one session each; 1 to {MAX_DAYS}); each day opens at the previous "
                   "day's close x an overnight move.")
@click.option("--seed", default=0, show_default=True, type=int, help="Base seed; each day's seed is session_seed(seed, ET day, scenario).")
@click.option("--leadership", default="NQ_leads", show_default=True,
              help="Which index leads the other; `--list` shows the choices.")
@click.option("--strength", default=0.15, show_default=True, type=float, help="Leadership strength in [0, 0.4].")
@click.option("--no-options", is_flag=True, help="No options context (empty context table).")
@click.option("--no-labels", is_flag=True, help="No ground truth (empty ground_truth table).")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output directory (default: <data>/backtest/<YYYY-MM-DD>/<scenario>/ per day).")
@click.option("--list", "list_only", is_flag=True, help="List the scenarios and exit.")
@click.pass_context
def generate(ctx: click.Context, scenario: str, start_text: str | None, minutes: int, days: int, seed: int,
             leadership: str, strength: float, no_options: bool, no_labels: bool, out: Path | None,
             list_only: bool) -> None:
    """Generate synthetic ES/NQ sessions (seven Parquet tables + meta.json per session)."""
    if list_only:
        _list_scenarios()
        return
    v = _vocab()
    if scenario not in v.SCENARIOS:
        raise click.BadParameter(f"{scenario!r} is not a scenario; valid: {', '.join(v.SCENARIOS)}", param_hint="--scenario")
    if leadership not in v.LEADERSHIPS:
        raise click.BadParameter(f"{leadership!r} is not valid; valid: {', '.join(v.LEADERSHIPS)}",
                                 param_hint="--leadership")
    lo, hi = v.STRENGTH_RANGE
    if not lo <= strength <= hi:
        raise click.BadParameter(f"{strength} is outside [{lo}, {hi}]", param_hint="--strength")
    if not 0 < minutes <= MAX_MINUTES:
        raise click.BadParameter(f"{minutes} is not a session length; the maximum is {MAX_MINUTES} minutes "
                                 "(one day); use --days for consecutive sessions", param_hint="--minutes")
    if not 0 < days <= MAX_DAYS:
        raise click.BadParameter(f"{days} is not a day count; use 1 to {MAX_DAYS}", param_hint="--days")
    if seed < 0:
        raise click.BadParameter(f"{seed} is negative; a seed is an integer >= 0", param_hint="--seed")
    if start_text is None:
        raise click.UsageError("--start is required (ISO 8601 with UTC offset), or use --list")
    start = _start(start_text)
    check_day_range(start.date(), "--start", "the session start")
    check_day_range((start + timedelta(days=days - 1, minutes=minutes)).date(), "--start", "the last session's end")

    from datetime import UTC

    from mia_pipeline.synthetic.overnight import next_open as open_after
    from mia_pipeline.synthetic.schedule import globex_status
    from mia_pipeline.synthetic.seeding import session_seed
    from mia_pipeline.synthetic.session_dir import (
        NotASessionFolder,
        check_replaceable,
        generate_session_to_dir,
    )

    root = _backtest_root(ctx)
    plan = []
    for d in range(days):
        day_start = start + timedelta(days=d)
        if out is None:
            target = root / day_start.date().isoformat() / scenario
        else:
            target = out if days == 1 else out / day_start.date().isoformat()
        is_open, next_open, why = globex_status(day_start)
        if not is_open:  # no silent empty session: say when Globex opens next
            raise click.BadParameter(
                f"Globex is closed at {day_start.isoformat()} (day {d + 1}: {why}); next open "
                f"{next_open.isoformat()} ({next_open.astimezone(UTC):%Y-%m-%dT%H:%M}Z): start there",
                param_hint="--start")
        try:
            check_replaceable(target)  # never replace what is not a session this tool wrote
        except NotASessionFolder as exc:
            raise click.BadParameter(str(exc), param_hint="--out") from None
        plan.append((day_start, target, session_seed(seed, day_start, scenario)))

    closes = []  # each day opens at the previous day's close x an overnight move (synthetic/overnight.py)

    def run(item):
        day_start, target, day_seed = item
        prices = {}
        if closes and closes[-1] is not None:
            es, nq = open_after(closes[-1], day_start, seed)
            prices = {"es_start_price": es, "nq_start_price": nq}
        summary = generate_session_to_dir(target, start=day_start, minutes=minutes, scenario=scenario, seed=day_seed,
                                          leadership=leadership, strength=strength, options_context=not no_options,
                                          include_labels=not no_labels, **prices)
        closes.append(summary["close"])
        return summary

    summaries = []
    if sys.stdout.isatty():
        with click.progressbar(plan, label=f"generating {scenario}", item_show_func=lambda i: i and str(i[1])) as bar:
            for item in bar:
                summaries.append(run(item))
    else:
        for i, item in enumerate(plan, 1):
            summaries.append(run(item))
            click.echo(f"[{i}/{len(plan)}] generated {item[1]}")
    for s in summaries:
        rows = ", ".join(f"{k}={v}" for k, v in s["rows"].items())
        click.echo(f"{s['path']}: {rows} ({s['duration_s']:.1f} s)")


@click.command("realism")
@click.option("--sessions", default=20, show_default=True, type=click.IntRange(min=1),
              help="Full Globex days (normal scenario) per seed set.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0),
              help="Base seed; each day's seed is session_seed(seed, day, 'normal').")
@click.option("--seed-sets", "seed_sets", default=1, show_default=True, type=click.IntRange(1, 100),
              help="Independent sets of --sessions consecutive Globex days from 2025-06-01 (set k follows set k-1).")
@click.option("--leadership", default="NQ_leads", show_default=True,
              type=click.Choice(["NQ_leads", "ES_leads", "balanced"]), help="Leader the lead-lag fact must detect.")
@click.option("--gaussian", is_flag=True, help="Measure the Gaussian random-walk control instead (must fail).")
def realism_report(sessions: int, seed: int, seed_sets: int, leadership: str, gaussian: bool) -> None:
    """Measure the stylized facts of realism.md (on the L1 mid-price, tails also on trade prices) on
    generated sessions, per seed set; exit 1 if a fact fails in any set."""
    from mia_pipeline.synthetic import realism

    failed = False
    per_set: dict[str, list[realism.FactResult]] = {fact: [] for fact in realism.SUMMARY_FACTS}
    for k in range(seed_sets):
        if gaussian:
            source = realism.seed_set_sessions(k, seed, n=sessions, leadership="balanced", model=realism.GAUSSIAN_WALK)
        else:
            source = realism.seed_set_sessions(k, seed, n=sessions, leadership=leadership)
        results = realism.evaluate(realism.measure(source), leadership="balanced" if gaussian else leadership)
        title = (f"realism battery, seed set {k + 1}/{seed_sets}: {sessions} "
                 f"{'Gaussian-walk' if gaussian else 'normal'} Globex days, base seed {seed}, {leadership}")
        click.echo(realism.report(results, title) + "\n")
        failed = failed or not all(r.passed for r in results)
        for r in results:
            if r.fact in per_set:
                per_set[r.fact].append(r)
    click.echo(realism.per_set_summary(per_set))
    if failed:
        click.get_current_context().exit(1)
