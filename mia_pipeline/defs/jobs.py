"""Named jobs: what `mia demo` runs, so its runs appear in the UI and can be re-executed there."""

import dagster as dg

from mia_pipeline.defs.collection import landing_zone
from mia_pipeline.defs.foundation import data_tree, warehouse_views
from mia_pipeline.defs.quality import collection_metrics
from mia_pipeline.defs.reports import data_quality_report
from mia_pipeline.defs.sources import paper_trading_events
from mia_pipeline.defs.synthetic import synthetic_session

demo_trading_day = dg.define_asset_job(
    "demo_trading_day",
    selection=dg.AssetSelection.assets(data_tree, paper_trading_events, landing_zone, warehouse_views,
                                       collection_metrics, data_quality_report),
    executor_def=dg.in_process_executor,  # a few light steps: a subprocess per step would cost more than they do
    description="One paper-trading day end to end (the demo's main job): the data tree, the day's paper-trading "
                "events into the landing zone, their ingestion into the daily datasets (each day written recorded "
                "with its own figures and checks, live views refreshed), then the warehouse views, the day's collection metrics and its data quality report. "
                "`mia demo` runs it for the last three weekdays.",
)

demo_synthetic_session = dg.define_asset_job(
    "demo_synthetic_session",
    selection=dg.AssetSelection.assets(synthetic_session),
    executor_def=dg.in_process_executor,
    description="One synthetic ES/NQ session (date x scenario) with its ten invariant checks; `mia demo` runs it "
                "for three scenarios of the last demo day.",
)
