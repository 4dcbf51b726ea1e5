import numpy as np
import pandas as pd
import pytest

from mia_pipeline.ml import DatasetError
from mia_pipeline.ml.labels import trade_labels, triple_barrier_labels

T = pd.Timestamp("2025-06-23 14:00", tz="UTC")
MIN = pd.Timedelta("1min")


def test_trade_labels_from_exits(built):
    _, snaps, _, y = built
    traded = y[y["trade_id"].notna()]
    # 27 since issue 20 (days continue from the previous close, mostly simultaneous lead-lag); was 29
    assert len(traded) == len(snaps.trades) == 27  # every simulated trade found its signal and exit
    assert traded["executed"].all()
    ex = snaps.trade_exits.set_index("trade_id")
    tr = snaps.trades.set_index("trade_id")
    for _, row in traded.iterrows():
        e, t = ex.loc[row["trade_id"]], tr.loc[row["trade_id"]]
        assert row["success"] == float(e["pnl"] > 0)
        side = 1 if t["action"] == "BUY" else -1
        assert row["r_multiple"] == pytest.approx(side * (e["exit_price"] - t["entry_price"])
                                                  / abs(t["entry_price"] - t["stop_loss"]))
        assert row["trade_t1"] == e["exit_ts"]
        assert row["t0"] <= t["entry_ts"] < row["trade_t1"] <= row["t1"]
    # a take-profit exit is +RR R, a stop is about -1 R
    tp = traded[traded["exit_reason"] == "take_profit"]
    assert (tp["r_multiple"] > 0).all()
    assert traded["success"].isin([0.0, 1.0]).all()


def test_trades_without_exits_raise():
    sig = pd.DataFrame({"signal_id": ["S1"], "t0": [T], "symbol": ["ES"], "action": ["BUY"], "executed": [True]})
    trades = pd.DataFrame({"trade_id": ["T1"], "entry_ts": [T + pd.Timedelta("1ms")], "symbol": ["ES"],
                           "action": ["BUY"], "entry_price": [5000.0], "stop_loss": [4990.0]})
    exits = pd.DataFrame(columns=["trade_id", "exit_ts", "exit_price", "pnl", "exit_reason"])
    with pytest.raises(DatasetError, match=r"1 trade\(s\) but no trade_exits"):
        trade_labels(sig, trades, exits)


def _bars(closes, highs=None, lows=None, start=T - 20 * MIN):
    n = len(closes)
    closes = np.asarray(closes, dtype=float)
    return pd.DataFrame({"ts": [start + i * MIN for i in range(n)], "symbol": "ES", "open": closes,
                         "high": closes if highs is None else highs, "low": closes if lows is None else lows,
                         "close": closes})


def _events(t0s, sides):
    return pd.DataFrame({"signal_id": [f"S{i}" for i in range(len(t0s))], "t0": t0s, "symbol": "ES",
                         "side": sides})


def _history(n=20):
    # alternating +/-1 bp returns: sigma ~ 1e-4 per bar
    return list(5000 * np.exp(np.cumsum(np.tile([1e-4, -1e-4], n // 2))))


def test_triple_barrier_hand_made():
    hist = _history()  # 20 bars, the last closes at T (stamped T - 1 min)
    p0 = hist[-1]
    flat = [p0] * 12
    up = flat.copy()
    up[3] = p0 * 1.01                      # bar stamped T + 3 min: profit-take for a long
    bars = _bars(hist + up, highs=np.array(hist + up), lows=np.array(hist + up))
    t0 = T + pd.Timedelta("10s")
    out = triple_barrier_labels(_events([t0, t0], [1.0, -1.0]), bars, MIN, horizon=pd.Timedelta("10min"))
    assert out["tb_entry_asof"].tolist() == [T, T]            # last bar closed at t0, not the one open at t0
    assert out["tb_entry"].tolist() == [p0, p0]
    assert out["tb_label"].tolist() == [1.0, -1.0]            # long: profit-take; short: stopped out
    # the bar that opened at T+3min touched the barrier; known at its close T+4min
    assert out["tb_t1"].tolist() == [T + 4 * MIN, T + 4 * MIN]
    assert (out["tb_return"] * np.array([1, -1]) > 0).all()


def test_triple_barrier_vertical_and_unknown():
    hist = _history()
    p0 = hist[-1]
    bars = _bars(hist + [p0] * 15)  # flat after T: no touch; data covers T + 15 min
    t_in = T + pd.Timedelta("10s")          # horizon ends T + 10 min 10 s: covered -> time barrier
    t_late = T + pd.Timedelta("10min")      # horizon ends T + 20 min: data ends before -> unknown
    out = triple_barrier_labels(_events([t_in, t_late], [1.0, 1.0]), bars, MIN, horizon=pd.Timedelta("10min"))
    assert out["tb_label"].iloc[0] == 0.0 and out["tb_t1"].iloc[0] == t_in + pd.Timedelta("10min")
    assert out["tb_return"].iloc[0] == pytest.approx(0.0)
    assert np.isnan(out["tb_label"].iloc[1]) and pd.isna(out["tb_t1"].iloc[1])


def test_triple_barrier_both_touched_in_one_bar_is_the_stop():
    hist = _history()
    p0 = hist[-1]
    closes = hist + [p0] * 12
    highs, lows = np.array(closes), np.array(closes)
    highs[22], lows[22] = p0 * 1.01, p0 * 0.99
    out = triple_barrier_labels(_events([T + pd.Timedelta("5s")] * 2, [1.0, -1.0]), _bars(closes, highs, lows),
                                MIN, horizon=pd.Timedelta("10min"))
    assert out["tb_label"].tolist() == [-1.0, -1.0]


def test_barrier_width_uses_volatility_known_at_t0():
    hist = _history()
    calm = _bars(hist + [hist[-1]] * 12)
    wild = calm.copy()
    wild.loc[len(hist):, ["close", "high", "low"]] *= np.linspace(1, 1.2, 12)[:, None]  # after t0 only
    ev = _events([T + pd.Timedelta("5s")], [1.0])
    a = triple_barrier_labels(ev, calm, MIN)
    b = triple_barrier_labels(ev, wild, MIN)
    assert a["tb_sigma"].iloc[0] == b["tb_sigma"].iloc[0] == pytest.approx(np.std(np.diff(np.log(hist)), ddof=1))


def test_no_bar_closed_before_t0_gives_no_label():
    bars = _bars(_history(), start=T)
    out = triple_barrier_labels(_events([T + pd.Timedelta("30s")], [1.0]), bars, MIN)
    assert pd.isna(out["tb_entry_asof"].iloc[0]) and np.isnan(out["tb_label"].iloc[0])
