"""Feature functions beyond the built-in ones, registered by name (the Python API of custom features).

    def spread_z(base, snapshots):             # base: one row per decision (t0, symbol, ...), sorted
        return pd.DataFrame({"my_spread_z": ...}, index=base.index)
    register_feature("spread_z", spread_z)
    build_bundle(store, start, end, {"custom_features": ["spread_z"]})   # or mia export --custom --config

A function receives the decisions' base frame and the window's :class:`~mia_pipeline.ml.snapshots.Snapshots`
and returns new columns on ``base.index``. The dataset records the function names in its config
(``dataset.json``), and validation recomputes every column point in time by calling the same function
on inputs truncated at a row's ``t0``: a function that reads the future is caught there. A column
whose function is not registered in the validating process cannot be recomputed (UNVERIFIED).
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from mia_pipeline.ml.errors import DatasetError

FeatureFunction = Callable[[pd.DataFrame, object], pd.DataFrame]
_REGISTRY: dict[str, FeatureFunction] = {}


def register_feature(name: str, fn: FeatureFunction) -> FeatureFunction:
    """Register ``fn`` under ``name`` (replacing a previous one of that name); returns ``fn``."""
    if not isinstance(name, str) or not name or not callable(fn):
        raise DatasetError("register_feature needs a non-empty name and a callable")
    _REGISTRY[name] = fn
    return fn


def unregister_feature(name: str) -> None:
    _REGISTRY.pop(name, None)


def registered(name: str) -> bool:
    return name in _REGISTRY


def custom_features(names, base: pd.DataFrame, snapshots) -> list[pd.DataFrame]:
    """The columns of each named function on ``base`` (raises :class:`DatasetError` naming an unknown one
    or a function whose result is not a frame on ``base.index``)."""
    out = []
    for name in names:
        fn = _REGISTRY.get(name)
        if fn is None:
            raise DatasetError(f"feature function {name!r} is not registered (register_feature({name!r}, fn) "
                               "before building or validating)")
        cols = fn(base, snapshots)
        if not isinstance(cols, pd.DataFrame) or not cols.index.equals(base.index):
            raise DatasetError(f"feature function {name!r} must return a DataFrame on the base frame's index")
        out.append(cols)
    return out
