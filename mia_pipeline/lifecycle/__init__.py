"""Lifecycle of stored data: archive old days into monthly files, back up, restore, apply retention,
optimise partitions for queries. Plain functions over a :class:`~mia_pipeline.layout.Layout`; the
Dagster assets and the `mia` command call the same ones."""
