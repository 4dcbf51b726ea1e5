"""`mia report ...`: the guide's analyses (§5) as self-contained HTML pages under ``<data>/reports/<end day>/``
and an index (``<data>/reports/index.html``); `mia report realism` measures synthetic sessions.

Exit codes: 0 every report made found nothing blocking; 1 a report found a blocking problem, or had no
data / could not run its analysis (its page says which and why); 2 bad arguments.
"""

from __future__ import annotations

import click

from mia_pipeline.cli.common import (
    DAY,
    EXIT_PROBLEM,
    EXIT_USAGE,
    STORAGE_ERRNOS,
    CliState,
    check_day_range,
    pass_state,
)
from mia_pipeline.cli.generate import realism_report

KINDS = ("quality", "performance", "features")


@click.group("report")
def report() -> None:
    """Reports: `mia report quality|performance|features|all` (pages with plots under <data>/reports/),
    `mia report realism` (stylized facts of synthetic sessions)."""


EXITS = (" Exit 0 when OK; 1 on a blocking problem, no data or an analysis that could not run (the page says "
         "which); 2 on bad arguments.")


def _report_command(name: str, kinds: tuple[str, ...], doc: str):
    @click.command(name, help=doc + EXITS)
    @click.option("--start", type=DAY, help="First day of the period (default: the 30 days ending at --end, "
                                            "from the first stored day when that is later).")
    @click.option("--end", type=DAY, help="Last day of the period (default: the newest stored day; --start "
                                          "when that is later).")
    @click.option("--comprehensive", is_flag=True,
                  help="Everything: every anomaly and trade listed, per-symbol breakdowns, more permutation repeats.")
    @click.option("--timeframe", type=click.Choice(["weekly", "monthly"]), default="weekly", show_default=True,
                  help="Period of the performance-over-time table.")
    @pass_state
    def command(state: CliState, start, end, comprehensive: bool, timeframe: str) -> None:
        _run(state, kinds, start, end, comprehensive, timeframe)

    return command


def _run(state: CliState, kinds, start, end, comprehensive: bool, timeframe: str) -> None:
    from mia_pipeline.reports.base import ReportError
    from mia_pipeline.reports.run import generate

    for value, hint in ((start, "--start"), (end, "--end")):
        if value is not None:
            check_day_range(value, hint, "the day")
    if start and end and start > end:
        raise click.BadParameter(f"--start {start} is after --end {end}; give --start <= --end", param_hint="--start")
    try:
        made = generate(state.store, kinds, start, end, comprehensive=comprehensive, timeframe=timeframe)
    except ReportError as exc:
        click.echo(f"Error: {exc}", err=True)
        raise SystemExit(EXIT_USAGE) from None
    except OSError as exc:
        if exc.errno in STORAGE_ERRNOS:
            raise  # the common handler says what to free or fix
        click.echo(f"Error: cannot write the reports under {state.layout.reports_dir}: {exc.strerror or exc} "
                   f"({exc.filename}); make that path a writable folder (move aside what is in the way) and run "
                   "the command again", err=True)
        raise SystemExit(EXIT_PROBLEM) from None
    failed = False
    for rep, path in made:
        click.echo(f"{rep.headline()}\n  {path}")
        failed |= rep.exit_code != 0
    click.echo(f"index: {state.layout.report_index_file}")
    if failed:
        raise SystemExit(EXIT_PROBLEM)


report.add_command(_report_command("quality", ("quality",), "Data quality (guide §5.1): completeness per dataset "
                                   "and day against the CME calendar, anomalies with the rule that found each, "
                                   "consistency, quarantine by reason, recommendations."))
report.add_command(_report_command("performance", ("performance",), "Battle Navale performance (guide §5.2): "
                                   "success rate, pnl, profit factor, expectancy, max drawdown (with intervals) by "
                                   "pattern, confluence bucket, regime and over time; equity and drawdown plots."))
report.add_command(_report_command("features", ("features",), "Feature importance (guide §5.3): permutation "
                                   "importance on the test folds of purged splits of the period's ML datasets, "
                                   "correlation with outcome, suggestions."))
report.add_command(_report_command("all", KINDS, "The three reports over one period, then the index."))
report.add_command(realism_report)
