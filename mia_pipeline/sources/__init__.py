"""Event sources that feed the landing zone (``data/live/streaming/*.jsonl``): paper trading, recorders."""
