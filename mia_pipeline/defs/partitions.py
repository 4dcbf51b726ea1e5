"""Partition definitions shared by all assets (UTC days and months)."""

import dagster as dg

PARTITIONS_START = "2024-01-01"

daily_partitions = dg.DailyPartitionsDefinition(start_date=PARTITIONS_START, timezone="UTC", end_offset=1)
monthly_partitions = dg.MonthlyPartitionsDefinition(start_date=PARTITIONS_START, timezone="UTC", end_offset=1)
# Weeks Sunday..Saturday (UTC), the guide's weekly ML dataset (§4.2: Sunday 02:00); 2024-01-07 is a Sunday.
weekly_partitions = dg.WeeklyPartitionsDefinition(start_date="2024-01-07", day_offset=0, timezone="UTC", end_offset=1)
