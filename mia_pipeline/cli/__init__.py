"""The ``mia`` command line: thin front door over the library (and Dagster for ``mia demo``)."""
