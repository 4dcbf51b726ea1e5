"""Errors of the ML dataset layer."""

from __future__ import annotations


class DatasetError(ValueError):
    """The input cannot make a dataset (empty window, trades without exits, ...); the message says why."""
