"""Subprocess for the ingestion kill test: ingest the landing zone in a tight loop until killed."""

import sys

from mia_pipeline.collection.collector import ingest_once
from mia_pipeline.layout import Layout
from mia_pipeline.storage import PartitionStore

if __name__ == "__main__":
    layout = Layout(sys.argv[1])
    store = PartitionStore(layout)
    symbols = frozenset({"ES", "NQ", "EURUSD"})
    ingest_once(layout, store, symbols)  # warm up imports and lazy initialisation
    print("ready", flush=True)
    while True:
        ingest_once(layout, store, symbols)
