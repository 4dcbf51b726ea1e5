"""Interactive Brokers: contracts, pacing-safe historical backfill, live recorder, connection test.

Library code (no Dagster): :mod:`.session` connects ib_async with bounded waits and plain reasons;
:mod:`.contracts` turns the ``ibkr:`` settings into series and picks futures front months;
:mod:`.pacing` keeps historical requests inside IB's pacing rules; :mod:`.backfill` lands a range of
days in ``market_bars``; :mod:`.recorder` streams quotes, trades and 5-s bars into the landing zone
through disconnects; :mod:`.feed` is the guide's ``MarketDataFeed().test_ibkr_connection()``.
The loopback fake gateway the tests and the benchmark use lives in ``mia_pipeline_tests/fake_ibkr/``
(test doubles stay out of the package).

Modules import ib_async; import them lazily from the CLI.
"""
