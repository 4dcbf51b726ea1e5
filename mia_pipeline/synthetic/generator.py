"""``MIA_IA_DataGenerator``: the seed's API over the vectorised session simulator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from mia_pipeline.synthetic import frames
from mia_pipeline.synthetic.config import GenConfig, validate_choice
from mia_pipeline.synthetic.model import DEFAULT_MODEL, MarketModel
from mia_pipeline.synthetic.parquet import write_tables
from mia_pipeline.synthetic.session import simulate


class MIA_IA_DataGenerator:  # noqa: N801 - the seed's name
    """Synthetic ES/NQ sessions with ground truth.

    ``seed`` feeds ``numpy.random.default_rng``: a new generator with the same seed and config
    produces identical data (and byte-identical Parquet). Successive calls on one generator continue
    the same random stream, so they differ from each other.

    >>> from datetime import datetime, timezone
    >>> gen = MIA_IA_DataGenerator(seed=42)
    >>> cfg = GenConfig(start=datetime(2025, 8, 21, 13, 30, tzinfo=timezone.utc), minutes=1)
    >>> data = gen.generate_realistic_session(cfg, scenario="normal")
    >>> sorted(data) == sorted(frames.TABLES), len(data["l1"])  # 300 rows per symbol per minute
    (True, 600)
    """

    TABLES = frames.TABLES

    def __init__(self, seed: int | None = None, *, model: MarketModel = DEFAULT_MODEL) -> None:
        self.seed = seed
        self.model = model
        self.rng = np.random.default_rng(seed)

    def generate_realistic_session(
        self,
        cfg: GenConfig,
        scenario: str = "normal",
        leadership: str = "NQ_leads",
        strength: float = 0.15,
        options_context: bool = True,
        include_labels: bool = True,
    ) -> dict[str, pd.DataFrame]:
        """The seven tables ``l1, l2, bars, footprint, context, leadership_features, ground_truth``.

        ``scenario`` is one of ``SCENARIOS``; ``leadership`` one of ``LEADERSHIPS``; ``strength`` in
        [0, 0.4] is the share of the common moves the follower sees 1 s late (the rest at once;
        ``paths.py``). Without ``options_context`` the context table is empty and the options
        features are NaN; without ``include_labels`` the ground truth is empty. Raises ``ValueError`` for out-of-vocabulary arguments.
        """
        tables = self.generate_tables(cfg, scenario, leadership, strength, options_context, include_labels)
        return {name: frames.to_pandas(t) for name, t in tables.items()}

    def generate_tables(self, cfg: GenConfig, scenario: str = "normal", leadership: str = "NQ_leads",
                        strength: float = 0.15, options_context: bool = True, include_labels: bool = True,
                        *, tables: tuple[str, ...] = frames.TABLES, on_table=None, on_chunk=None
                        ) -> dict[str, pa.Table]:
        """Same as ``generate_realistic_session`` but returns ``pyarrow.Table`` objects; ``tables``
        selects which to build (the others' content does not depend on the selection);
        ``on_table(name, table)`` is called as each table completes and ``on_chunk("l2", chunk)``
        as each row-group-sized chunk of the order book is built."""
        validate_choice(scenario, leadership, strength)
        return simulate(self.rng, cfg, scenario, leadership, float(strength), options_context, include_labels,
                        self.model, tuple(tables), on_table, on_chunk)

    @staticmethod
    def export_to_parquet(data: dict[str, pd.DataFrame], output_dir: str | Path) -> dict[str, Path]:
        """Write ``<output_dir>/<table>.parquet`` for each table (zstd, deterministic bytes).

        Returns the written paths by table name. Columns must be exactly the table's schema.
        """
        return write_tables({name: frames.to_arrow(name, df) for name, df in data.items()}, Path(output_dir))
