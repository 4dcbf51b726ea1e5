"""`mia generate` (synthetic ES/NQ sessions to Parquet) and `mia report realism` (stylized facts).

Exit codes: 0 ok; 1 the realism battery found a failing fact; 2 bad input (unknown scenario or
leadership, strength outside [0, 0.4], minutes/days <= 0, start without a UTC offset).
"""

from __future__ import annotations

import os
import sys
from datetime import datetime, timedelta
from pathlib import Path

import click


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
@click.option("--minutes", default=120, show_default=True, type=int, help="Length of each session.")
@click.option("--days", default=1, show_default=True, type=int, help="Consecutive days (one session each).")
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed of day 1 (day d uses seed + d - 1).")
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
    if minutes <= 0:
        raise click.BadParameter(f"{minutes} must be > 0", param_hint="--minutes")
    if days <= 0:
        raise click.BadParameter(f"{days} must be > 0", param_hint="--days")
    if start_text is None:
        raise click.UsageError("--start is required (ISO 8601 with UTC offset), or use --list")
    start = _start(start_text)

    from mia_pipeline.synthetic.session_dir import generate_session_to_dir

    root = _backtest_root(ctx)
    plan = []
    for d in range(days):
        day_start = start + timedelta(days=d)
        if out is None:
            target = root / day_start.date().isoformat() / scenario
        else:
            target = out if days == 1 else out / day_start.date().isoformat()
        plan.append((day_start, target, seed + d))

    def run(item):
        day_start, target, day_seed = item
        return generate_session_to_dir(target, start=day_start, minutes=minutes, scenario=scenario, seed=day_seed,
                                       leadership=leadership, strength=strength, options_context=not no_options,
                                       include_labels=not no_labels)

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
              help="Number of full Globex days (normal scenario) to measure.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the first day (day i uses seed + i).")
@click.option("--gaussian", is_flag=True, help="Measure the Gaussian random-walk control instead (must fail).")
def realism_report(sessions: int, seed: int, gaussian: bool) -> None:
    """Measure the stylized facts of realism.md on generated sessions; exit 1 if a fact fails."""
    from mia_pipeline.synthetic import realism

    source = realism.gaussian_walk_sessions(sessions, seed) if gaussian else realism.battery_sessions(sessions, seed)
    results = realism.evaluate(realism.measure(source))
    title = f"realism battery: {sessions} {'Gaussian-walk' if gaussian else 'normal'} Globex days, seed {seed}"
    click.echo(realism.report(results, title))
    if not all(r.passed for r in results):
        click.get_current_context().exit(1)
