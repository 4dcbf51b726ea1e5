"""Reports (guide §5): data quality, Battle Navale performance, feature importance — self-contained HTML
pages with embedded plots under ``data/reports/<end day>/``, an index linking them and the latest validation
results, and a Markdown summary of each for Dagster metadata. No Dagster imports here."""
