"""Partition definitions shared by all assets (UTC days, weeks and months), from the first day on.

The first day is the setting ``data_collection.first_day`` (``MIA_FIRST_DAY``; default 2024-01-01),
read when the code location loads (as the schedules' time zone is): set it to the day capture began
and the UI's "% filled" counts the days since then. A broken mia.yaml is reported by every command
and run; here it falls back to the default so the UI still loads.
"""

from datetime import timedelta

import dagster as dg

from mia_pipeline.settings import defaults_if_broken

FIRST_DAY = defaults_if_broken().data_collection.first_day
PARTITIONS_START = FIRST_DAY.isoformat()

daily_partitions = dg.DailyPartitionsDefinition(start_date=PARTITIONS_START, timezone="UTC", end_offset=1)
# The month holding the first day.
monthly_partitions = dg.MonthlyPartitionsDefinition(start_date=FIRST_DAY.replace(day=1).isoformat(), timezone="UTC",
                                                    end_offset=1)
# Weeks Sunday..Saturday (UTC), the guide's weekly ML dataset (§4.2: Sunday 02:00), from the first whole week:
# the first Sunday on or after the first day (2024-01-07 for 2024-01-01).
_FIRST_SUNDAY = FIRST_DAY + timedelta(days=(6 - FIRST_DAY.weekday()) % 7)
weekly_partitions = dg.WeeklyPartitionsDefinition(start_date=_FIRST_SUNDAY.isoformat(), day_offset=0, timezone="UTC",
                                                  end_offset=1)
