"""Sierra Chart as a source: its files read exactly and fast, turned into order flow, landed by day.

Readers (numpy memory maps, Arrow tables, times in UTC):
    read_scid / tail_scid / scid_record_count   ``.scid`` intraday records (bars or single trades)
    scid_ticks                                  single-trade records -> trades with bid/ask and side
    read_depth / depth_record_count             ``.depth`` market-depth commands (L2)
    read_dly                                    ``.dly`` daily bars
    read_study_export                           "Write Bar and Study Data To File" exports (chart tz -> UTC)
Order flow: order_flow_bars, resample_scid_bars, volume_profile, daily_volume_profiles.
Errors: SierraFileError (names the file and the byte offset).
"""

from mia_pipeline.sources.sierra.depth import depth_record_count, read_depth
from mia_pipeline.sources.sierra.exports import read_dly, read_study_export, study_columns
from mia_pipeline.sources.sierra.formats import SierraFileError
from mia_pipeline.sources.sierra.orderflow import (
    VolumeProfile,
    daily_volume_profiles,
    order_flow_bars,
    resample_scid_bars,
    volume_profile,
)
from mia_pipeline.sources.sierra.scid import read_scid, scid_record_count, tail_scid
from mia_pipeline.sources.sierra.ticks import scid_ticks

__all__ = [
    "SierraFileError", "VolumeProfile", "daily_volume_profiles", "depth_record_count", "order_flow_bars",
    "read_depth", "read_dly", "read_scid", "read_study_export", "resample_scid_bars", "scid_record_count",
    "scid_ticks", "study_columns", "tail_scid", "volume_profile",
]
