"""Data quality: the one rule table and everything it drives, monitoring metrics and alerts.

- :mod:`.rules`: the rule table (dataset, rule, severity). Data only, on the ground floor (imports
  :mod:`mia_pipeline.schemas.contract` and nothing else): ingestion validation reads it too.
- :mod:`.checks`: the per-day partition checks (DuckDB), :mod:`.gx`: the Great Expectations suites and
  runner (the only Great Expectations import of the project), :mod:`.ml_checks`: the ML dataset checks
  as pure numpy/pandas functions.
- :mod:`.metrics`: per-day collection metrics (snapshots per hour, quality score, missing-data rate,
  storage growth, ingestion lag); :mod:`.alerts`: the alert rules, their state and delivery.

Nothing here imports Dagster; importing the package itself is free (no submodule is loaded).
"""
