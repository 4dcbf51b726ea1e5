"""Options context (market-wide, on the ES/SPX price scale), one row per open second.

- ``vix``: starts at ``vix_start``; log-VIX moves -5x ES log-returns (leverage effect) plus slow noise
  and the scenario's event bump.
- ``call_wall``/``put_wall``: 25-point strikes around a 30-min EWMA of ES, wider when VIX is high,
  and always strictly above / below the ES mid of the row (walls bracket price).
- ``gamma_flip``: 5-point strike below the slow reference (dealers long gamma above it).
- ``pin_strength`` in [0, 1]: weak (< 0.6) except in ``gamma_pin``, where it is 0.7-0.98 and the
  pin strike is the midpoint of the walls (``(call_wall + put_wall) / 2``); only there does the
  generator pull price toward the pin.
- ``put_call_ratio``: falls in rallies, rises in sell-offs, shifted by the scenario's flow.
"""

from __future__ import annotations

import numpy as np

from mia_pipeline.synthetic.scenarios import ScenarioPlan
from mia_pipeline.synthetic.volatility import ar1

WALL_STEP = 25.0
FLIP_STEP = 5.0


def build_context(rng: np.random.Generator, es_mid: np.ndarray, vix_start: float, plan: ScenarioPlan) -> dict[str, np.ndarray]:
    """Context columns for each second, given the ES mid at the row's time."""
    n = len(es_mid)
    if n == 0:
        return {k: np.zeros(0) for k in ("vix", "gamma_flip", "call_wall", "put_wall", "pin_strength", "put_call_ratio")}
    phi = 0.5 ** (1.0 / 1800.0)
    ref = ar1((1.0 - phi) * es_mid, phi, es_mid[0])
    log_ret = np.log(es_mid / es_mid[0])
    slow = 0.5 ** (1.0 / 1200.0)
    noise = [ar1(rng.standard_normal(n) * 0.0002, slow), ar1(rng.standard_normal(n) * 0.003, slow)]
    vix = np.clip(vix_start * np.exp(-5.0 * log_ret + noise[0] + plan.vix_bump_sec), 9.0, 90.0)
    width = ref * (0.004 + 0.0004 * vix)
    above = (np.floor(es_mid / WALL_STEP) + 1) * WALL_STEP
    below = (np.ceil(es_mid / WALL_STEP) - 1) * WALL_STEP
    call = np.ceil((ref + width) / WALL_STEP) * WALL_STEP
    put = np.floor((ref - width) / WALL_STEP) * WALL_STEP
    flip = np.round((ref - 10.0 - vix) / FLIP_STEP) * FLIP_STEP
    if plan.pin_price is not None:
        pin = plan.pin_price
        call = np.full(n, pin + WALL_STEP)
        put = np.full(n, pin - WALL_STEP)
        flip = np.full(n, pin - 40.0)
        pin_strength = np.clip(0.86 + 0.04 * rng.standard_normal(n), 0.7, 0.98)
    else:
        near = np.abs(es_mid - np.round(es_mid / WALL_STEP) * WALL_STEP)
        base = 0.12 + 0.3 * np.exp(-near / 4.0) * np.minimum(15.0 / vix, 1.5)
        pin_strength = np.clip(base + 0.03 * rng.standard_normal(n), 0.02, 0.55)
    pcr = np.clip(0.95 - 8.0 * np.log(es_mid / ref) + plan.pcr_shift_sec + 5 * noise[1], 0.4, 2.5)
    return {
        "vix": vix,
        "gamma_flip": flip,
        "call_wall": np.where(call > es_mid, call, above),  # a wall the price went through rolls up
        "put_wall": np.where(put < es_mid, put, below),
        "pin_strength": pin_strength,
        "put_call_ratio": pcr,
    }
