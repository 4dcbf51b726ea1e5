"""Paper-trading source: determinism, event contract, strategy cadence, broker and risk invariants."""

import json
from collections import Counter, defaultdict
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from mia_pipeline.schemas.contract import ENVELOPE_REQUIRED, PAYLOADS
from mia_pipeline.sources.paper_trading import CONTRACTS, PaperConfig, day_file, simulate
from mia_pipeline.sources.paper_trading.writer import Appender, write_day

FRIDAY, MONDAY = date(2025, 6, 20), date(2025, 6, 23)
CFG = PaperConfig()


def read_events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Friday, the weekend and Monday (4 calendar days, 2 trading days), seed 7."""
    out = tmp_path_factory.mktemp("landing")
    summary = simulate(out, start=FRIDAY, days=4, seed=7)
    events = {p.name: read_events(p) for p in summary.files}
    return out, summary, events


@pytest.fixture(scope="module")
def all_events(run):
    return [e for evs in run[2].values() for e in evs]


def by_kind(events, kind):
    return [e for e in events if e["kind"] == kind]


# --- files, weekends, determinism


def test_one_file_per_trading_day_and_nothing_on_weekends(run):
    out, summary, _ = run
    assert sorted(p.name for p in out.iterdir()) == ["paper_trading_2025-06-20.jsonl", "paper_trading_2025-06-23.jsonl"]
    assert summary.trading_days == ["2025-06-20", "2025-06-23"]
    assert summary.skipped_days == ["2025-06-21", "2025-06-22"]
    assert summary.events == sum(summary.counts.values()) > 0


def test_weekend_alone_writes_nothing(tmp_path):
    summary = simulate(tmp_path, start=date(2025, 6, 21), days=2)
    assert summary.files == [] and summary.events == 0 and list(tmp_path.iterdir()) == []


def test_same_seed_rewrites_identical_bytes_other_seed_differs(run, tmp_path):
    out, _, _ = run
    again = simulate(tmp_path / "a", start=FRIDAY, days=4, seed=7)
    assert [p.read_bytes() for p in again.files] == [p.read_bytes() for p in run[1].files]
    # re-running into the same folder replaces the files with the same bytes and leaves no temp file
    simulate(tmp_path / "a", start=FRIDAY, days=4, seed=7)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(p.name for p in again.files)
    assert day_file(tmp_path / "a", MONDAY).read_bytes() == day_file(out, MONDAY).read_bytes()
    simulate(tmp_path / "b", start=FRIDAY, days=4, seed=8)
    assert day_file(tmp_path / "b", MONDAY).read_bytes() != day_file(out, MONDAY).read_bytes()


def test_a_day_alone_opens_at_the_base_price_inside_a_run_at_the_previous_close(run, tmp_path):
    """Documented choice (engine docstring): Monday inside the Friday-Monday run continues from
    Friday's close; Monday alone is the first day of its run and opens at ES 5000."""
    out, _, _ = run
    alone = simulate(tmp_path, start=MONDAY, days=1, seed=7)
    assert alone.files[0].read_bytes() == simulate(tmp_path, start=MONDAY, days=1, seed=7).files[0].read_bytes()
    first_open = {}
    for name, path in (("alone", alone.files[0]), ("run", day_file(out, MONDAY))):
        bars = [e for e in read_events(path) if e["kind"] == "market_bar" and e["symbol"] == "ES"]
        first_open[name] = min(bars, key=lambda e: e["timestamp"])["open"]
    fri = [e for e in read_events(day_file(out, FRIDAY)) if e["kind"] == "market_bar" and e["symbol"] == "ES"]
    friday_close = max(fri, key=lambda e: e["timestamp"])["close"]
    assert abs(first_open["alone"] - 5000.0) < 25
    assert abs(np.log(first_open["run"] / friday_close)) < 5 * 0.0059 + 0.002


def test_event_ids_unique_stable_and_in_file_order(run):
    for name, events in run[2].items():
        day = name.removeprefix("paper_trading_").removesuffix(".jsonl")
        assert [e["event_id"] for e in events] == [f"pt-{day}-{n:06d}" for n in range(1, len(events) + 1)]
        assert {e["timestamp"][:10] for e in events} == {day}  # every event on the file's UTC day
        assert all(e["source"] == "paper_trading" and e["schema_version"] == 1 for e in events)


def test_bad_arguments_raise_value_error(tmp_path):
    with pytest.raises(ValueError, match="days must be"):
        simulate(tmp_path, start=MONDAY, days=0)
    with pytest.raises(ValueError, match="symbols must be"):
        simulate(tmp_path, start=MONDAY, days=1, symbols=("CL",))
    with pytest.raises(ValueError, match="unknown scenario"):
        simulate(tmp_path, start=MONDAY, days=1, scenario_schedule="moon")


# --- event contract


def _shape_errors(obj, typ, path=""):
    """Keys not in the contract, and JSON types that do not match it (missing keys are nulls)."""
    if obj is None:
        return []
    if pa.types.is_struct(typ):
        if not isinstance(obj, dict):
            return [f"{path}: not an object"]
        errors = [f"{path}.{k}: not in the contract" for k in set(obj) - {f.name for f in typ}]
        return errors + [e for f in typ if f.name in obj for e in _shape_errors(obj[f.name], f.type, f"{path}.{f.name}")]
    if pa.types.is_list(typ):
        return [e for x in obj for e in _shape_errors(x, typ.value_type, path + "[]")]
    expected = {pa.types.is_floating: (int, float), pa.types.is_integer: int, pa.types.is_boolean: bool,
                pa.types.is_string: str, pa.types.is_timestamp: str}
    for test, py in expected.items():
        if test(typ):
            ok = isinstance(obj, py) and (typ == pa.bool_() or not isinstance(obj, bool))
            return [] if ok else [f"{path}: {obj!r} is not {typ}"]
    return [f"{path}: unexpected type {typ}"]


def test_events_have_the_contract_shape(all_events):
    errors = Counter()
    for e in all_events:
        assert set(ENVELOPE_REQUIRED) <= set(e)
        payload = {k: v for k, v in e.items() if k not in ENVELOPE_REQUIRED}
        errors.update(f"{e['kind']}{err}" for err in _shape_errors(payload, PAYLOADS[e["kind"]]))
    assert not errors
    for kind in ("trade", "signal", "trade_exit", "market_bar"):  # the guide's shapes are complete
        sample = by_kind(all_events, kind)[0]
        assert set(sample) - set(ENVELOPE_REQUIRED) == {f.name for f in PAYLOADS[kind]}


def test_every_event_parses_with_zero_rejects(run):
    schemas = pytest.importorskip("mia_pipeline.schemas")
    if not hasattr(schemas, "parse_lines"):
        pytest.skip("mia_pipeline.schemas.parse_lines is not available yet")
    now_ms = int(datetime(2025, 7, 1, tzinfo=UTC).timestamp() * 1000)
    for path in run[1].files:
        data = path.read_bytes()
        result = schemas.parse_lines(data, now_ms=now_ms, known_symbols={"ES", "NQ"})
        assert result.rejects == []
        assert sum(t.num_rows for t in result.tables.values()) == data.count(b"\n")


# --- strategy


def test_signal_rate_is_50_to_200_per_trading_hour(all_events):
    per_hour = Counter()
    for s in by_kind(all_events, "signal"):
        t = datetime.fromisoformat(s["timestamp"])
        per_hour[(t.date(), (t.hour * 60 + t.minute - (13 * 60 + 30)) // 60)] += 1  # hours since the 13:30 UTC open
    full_hours = {k: v for k, v in per_hour.items() if k[1] < 6}  # the 7th "hour" is the last 30 minutes
    assert len(full_hours) == 12
    assert all(50 <= v <= 200 for v in full_hours.values()), full_hours


def test_signals_carry_eight_features_and_consistent_decisions(all_events):
    signals = by_kind(all_events, "signal")
    actions = Counter(s["decision"]["action"] for s in signals)
    assert set(actions) == {"BUY", "SELL", "HOLD"} and actions["HOLD"] > actions["BUY"]
    for s in signals:
        fs = s["features_snapshot"]
        assert len(fs["raw_features"]) == len(fs["normalized_features"]) == len(fs["feature_importance"]) == 8
        assert sum(fs["feature_importance"]) == pytest.approx(1.0, abs=1e-3)
        assert fs["calculation_timestamp"] <= s["timestamp"]
        levels = s["battle_navale_analysis"]["confluence_levels"]
        assert all(0.0 <= v <= 1.0 for v in levels.values())
        d = s["decision"]
        assert not (d["executed"] and d["action"] == "HOLD")
        assert (d["execution_delay_ms"] is not None) == d["executed"]
    regimes = Counter(t["battle_navale"]["market_regime"] for t in by_kind(all_events, "trade"))
    assert set(regimes) <= {"TRENDING", "RANGING"}


def test_executed_signals_match_trades(run):
    for events in run[2].values():
        executed = [s for s in by_kind(events, "signal") if s["decision"]["executed"]]
        trades = by_kind(events, "trade")
        assert len(executed) == len(trades) > 0
        for s, t in zip(executed, trades, strict=True):
            assert (s["symbol"], s["decision"]["action"]) == (t["symbol"], t["action"])
            assert s["timestamp"] <= t["timestamp"]


# --- broker and risk


def test_stops_targets_and_risk_reward(all_events):
    for t in by_kind(all_events, "trade"):
        rm, ex, px = t["risk_management"], t["execution"], t["price"]
        side = 1 if t["action"] == "BUY" else -1
        assert (rm["stop_loss"] - px) * side < 0 < (rm["take_profit"] - px) * side
        rr = abs(rm["take_profit"] - px) / abs(px - rm["stop_loss"])
        assert rm["risk_reward_ratio"] == pytest.approx(rr, abs=1e-3)
        quote = t["market_context"]["ask"] if side > 0 else t["market_context"]["bid"]
        assert ex["fill_price"] == px == pytest.approx(quote + side * ex["slippage"])
        assert ex["commission"] == pytest.approx(t["quantity"] * CONTRACTS[t["symbol"]].commission)
        assert ex["latency_ms"] > 0 and t["market_context"]["spread"] > 0


def test_portfolio_heat_and_position_size_respect_the_caps(all_events):
    trades = by_kind(all_events, "trade")
    assert all(0 < t["risk_management"]["portfolio_heat"] <= CFG.risk.heat_cap + 1e-9 for t in trades)
    assert all(t["risk_management"]["position_size_pct"] <= CFG.risk.risk_per_trade + 1e-9 for t in trades)
    assert all(1 <= t["quantity"] <= CFG.risk.max_contracts for t in trades)


def test_each_trade_has_exactly_one_exit_after_its_entry_with_exact_pnl(all_events):
    trades = {t["trade_id"]: t for t in by_kind(all_events, "trade")}
    exits = defaultdict(list)
    for x in by_kind(all_events, "trade_exit"):
        exits[x["trade_id"]].append(x)
    assert set(exits) == set(trades) and all(len(v) == 1 for v in exits.values())
    reasons = Counter()
    for tid, t in trades.items():
        x = exits[tid][0]
        side = 1 if t["action"] == "BUY" else -1
        assert x["action"] != t["action"] and x["quantity"] == t["quantity"]
        assert x["entry_price"] == t["price"] and x["entry_timestamp"] == t["timestamp"] < x["timestamp"]
        assert x["holding_time_s"] > 0
        contract = CONTRACTS[t["symbol"]]
        expected = ((x["exit_price"] - x["entry_price"]) * x["quantity"] * contract.multiplier * side
                    - t["execution"]["commission"] - x["commission"])
        assert x["pnl"] == pytest.approx(expected, abs=0.01)
        rm = t["risk_management"]
        if x["reason"] == "take_profit":
            assert x["exit_price"] == rm["take_profit"]
        if x["reason"] == "stop_loss":
            assert (x["exit_price"] - rm["stop_loss"]) * side <= 0  # at or through the stop
        reasons[x["reason"]] += 1
    assert {"stop_loss", "take_profit"} <= set(reasons)


# --- market bars and performance


def test_market_bars_are_consistent_one_minute_bars(run):
    for events in run[2].values():
        bars = by_kind(events, "market_bar")
        assert Counter(b["symbol"] for b in bars) == {"ES": 390, "NQ": 390}
        for b in bars:
            assert b["timeframe"] == "1min" and b["timestamp"].endswith(":00.000Z")
            assert b["low"] <= min(b["open"], b["close"]) <= max(b["open"], b["close"]) <= b["high"]
            assert b["bid_volume"] + b["ask_volume"] == b["volume"] > 0 and b["trade_count"] > 0
            assert b["low"] - 1e-6 <= b["vwap"] <= b["high"] + 1e-6


def test_performance_samples(run):
    for events in run[2].values():
        perf = by_kind(events, "performance")
        metrics = Counter(p["metric"] for p in perf)
        assert len(set(metrics.values())) == 1 and metrics["equity"] == 390 // 5
        assert len({(p["metric"], p["timestamp"]) for p in perf}) == len(perf)  # the dataset key is unique
        last = {p["metric"]: p["value"] for p in perf if p["timestamp"] == perf[-1]["timestamp"]}
        exits = by_kind(events, "trade_exit")
        assert last["realized_pnl"] == pytest.approx(sum(x["pnl"] for x in exits), abs=0.05)
        assert last["open_positions"] == 0 and last["trades_closed"] == len(exits)
        assert last["win_rate"] == pytest.approx(sum(x["pnl"] > 0 for x in exits) / len(exits), abs=1e-4)
        rates = [p["value"] for p in perf if p["metric"] == "snapshots_per_hour"][12:]  # after the first hour
        assert all(50 <= r <= 200 for r in rates)


# --- writer


def test_write_day_replaces_atomically(tmp_path):
    path = write_day(tmp_path, MONDAY, [b'{"a":1}\n'])
    path2 = write_day(tmp_path, MONDAY, [b'{"a":2}\n'])
    assert path == path2 and path.read_bytes() == b'{"a":2}\n' and len(list(tmp_path.iterdir())) == 1


def test_appender_terminates_a_torn_line_before_appending(tmp_path):
    path = tmp_path / "paper_trading_2025-06-23.jsonl"
    path.write_bytes(b'{"kind":"sig')  # a writer killed mid-line
    with Appender() as app:
        app.append(path, [b'{"a":1}\n', b'{"a":2}\n'])
        app.append(path, [b'{"a":3}\n'])
    assert path.read_bytes().splitlines() == [b'{"kind":"sig', b'{"a":1}', b'{"a":2}', b'{"a":3}']


def test_symbol_subset_and_fixed_scenario(tmp_path):
    summary = simulate(tmp_path, start=MONDAY, days=1, symbols=("ES",), scenario_schedule={"2025-06-23": "chop"})
    assert summary.scenarios == {"2025-06-23": "chop"}
    events = read_events(summary.files[0])
    assert {e["symbol"] for e in events if "symbol" in e} == {"ES"}
