"""Synthetic ES/NQ sessions partitioned by date × scenario, with the generator's invariants as checks."""

import hashlib
import warnings
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import dagster as dg
import pyarrow.parquet as pq

from mia_pipeline.defs.foundation import data_tree
from mia_pipeline.defs.partitions import daily_partitions
from mia_pipeline.defs.resources import MiaResource
from mia_pipeline.synthetic import (
    CHECK_DESCRIPTIONS,
    CHECK_NAMES,
    SCENARIOS,
    TABLES,
    check_invariants,
    generate_session_to_dir,
)

synthetic_partitions = dg.MultiPartitionsDefinition(
    {"date": daily_partitions, "scenario": dg.StaticPartitionsDefinition(list(SCENARIOS))}
)
ET = ZoneInfo("America/New_York")


class SyntheticSessionConfig(dg.Config):
    minutes: int = 120
    start_time_et: str = "09:30"  # session start, exchange time (US cash open)
    seed: int = -1  # -1: derived from (date, scenario), so every partition is reproducible
    leadership: str = "NQ_leads"
    strength: float = 0.15
    options_context: bool = True
    include_labels: bool = True


def partition_seed(day: str, scenario: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{day}/{scenario}".encode()).digest()[:4], "big")


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
    Partition: date (session day, exchange calendar; weekends hold no Globex session) × scenario.
    Path: data/backtest/YYYY-MM-DD/<scenario>/<table>.parquet + meta.json. Checks re-read the files.
    """
    keys = context.partition_key.keys_by_dimension
    day, scenario = keys["date"], keys["scenario"]
    hh, mm = (int(x) for x in config.start_time_et.split(":"))
    start = datetime.combine(date.fromisoformat(day), time(hh, mm), tzinfo=ET)
    seed = config.seed if config.seed >= 0 else partition_seed(day, scenario)
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
