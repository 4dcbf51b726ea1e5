"""Synthetic ES/NQ sessions partitioned by date × scenario, with the generator's invariants as checks."""

import warnings
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import dagster as dg
import pyarrow.parquet as pq

from mia_pipeline.defs.foundation import data_tree
from mia_pipeline.defs.partitions import PARTITIONS_START
from mia_pipeline.defs.resources import MiaResource
from mia_pipeline.synthetic import (
    CHECK_DESCRIPTIONS,
    CHECK_NAMES,
    SCENARIOS,
    TABLES,
    check_invariants,
    generate_session_to_dir,
)
from mia_pipeline.synthetic.schedule import closed_days, globex_status
from mia_pipeline.synthetic.seeding import session_seed

# Trading days only: weekends by cron, CME full-day holidays 2024-2030 from the CMES calendar
# (exchange_calendars computes them in memory: no I/O at import). Early-close days stay (shorter sessions).
HOLIDAYS_UNTIL = date(2030, 12, 31)
synthetic_days = dg.DailyPartitionsDefinition(
    start_date=PARTITIONS_START, timezone="UTC", end_offset=1,
    exclusions=["0 0 * * 6,0", *(datetime.combine(d, time(0), UTC) for d in closed_days(
        date.fromisoformat(PARTITIONS_START), HOLIDAYS_UNTIL) if d.weekday() < 5)],
)
synthetic_partitions = dg.MultiPartitionsDefinition(
    {"date": synthetic_days, "scenario": dg.StaticPartitionsDefinition(list(SCENARIOS))}
)
ET = ZoneInfo("America/New_York")


class SyntheticSessionConfig(dg.Config):
    minutes: int = 120
    start_time_et: str = "09:30"  # session start, exchange time (US cash open)
    # Base seed; the session's seed is session_seed(seed, date, scenario), as for `mia generate --seed`.
    # -1 (default) means DEFAULT_BASE_SEED (0), the CLI's default: same partition, same bytes.
    seed: int = -1
    leadership: str = "NQ_leads"
    strength: float = 0.15
    options_context: bool = True
    include_labels: bool = True


def partition_seed(day: str, scenario: str, base_seed: int = -1) -> int:
    """The partition's session seed: the library's one seeding rule (``-1`` -> ``DEFAULT_BASE_SEED``)."""
    return session_seed(base_seed, day, scenario)


# Partitioned checks (one evaluation per session) are a "preview" feature of Dagster 1.13: pinned in uv.lock.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.PreviewWarning)
    SESSION_CHECKS = [dg.AssetCheckSpec(name, asset="synthetic_session", blocking=True,
                                        description=CHECK_DESCRIPTIONS[name], partitions_def=synthetic_partitions)
                      for name in CHECK_NAMES]


@dg.asset(
    group_name="synthetic",
    kinds={"parquet"},
    partitions_def=synthetic_partitions,
    deps=[data_tree],
    check_specs=SESSION_CHECKS,
)
def synthetic_session(context: dg.AssetExecutionContext, config: SyntheticSessionConfig, mia: MiaResource):
    """One synthetic ES+NQ session: L1, L2, bars, footprint, options context, leadership features, labels.

    Grain: one session (seven tables, rows per table as in the seed's generator) per date and scenario.
    Source: mia_pipeline.synthetic (MIA_IA_DataGenerator), seeded from the partition for reproducibility.
    Partition: date (trading days only: weekends and CME holidays are excluded) × scenario. A start
    (``start_time_et``) when Globex is closed (daily halt, early close) fails with the next open time.
    Seed: ``session_seed(config.seed, date, scenario)``, the rule ``mia generate`` uses (-1 -> 0).
    Path: data/backtest/YYYY-MM-DD/<scenario>/<table>.parquet + meta.json. Checks re-read the files.
    """
    keys = context.partition_key.keys_by_dimension
    day, scenario = keys["date"], keys["scenario"]
    hh, mm = (int(x) for x in config.start_time_et.split(":"))
    start = datetime.combine(date.fromisoformat(day), time(hh, mm), tzinfo=ET)
    is_open, next_open, why = globex_status(start)
    if not is_open:
        raise dg.Failure(
            description=f"Globex is closed at {start.isoformat()} ({why}); next open {next_open.isoformat()}",
            metadata={"start": start.isoformat(), "next_open": next_open.isoformat(), "reason": why})
    seed = partition_seed(day, scenario, config.seed)
    out_dir = mia.layout().backtest_session_dir(day, scenario)
    summary = generate_session_to_dir(
        out_dir, start=start, minutes=config.minutes, scenario=scenario, seed=seed,
        leadership=config.leadership, strength=config.strength,
        options_context=config.options_context, include_labels=config.include_labels,
    )
    yield dg.MaterializeResult(metadata={
        "dagster/row_count": sum(summary["rows"].values()),
        "rows": dg.MetadataValue.json(summary["rows"]),
        "seed": seed,
        "duration_s": summary["duration_s"],
        "path": dg.MetadataValue.path(str(out_dir)),
    })
    data = {name: pq.read_table(out_dir / f"{name}.parquet").to_pandas() for name in TABLES}
    for result in check_invariants(data):
        yield dg.AssetCheckResult(check_name=result.name, passed=result.passed,
                                  metadata={"detail": result.detail, "failing_rows": result.failing_rows})
