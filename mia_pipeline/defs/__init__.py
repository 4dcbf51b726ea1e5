"""Dagster wiring only: thin assets/checks/sensors/schedules over the library. No I/O at import."""
