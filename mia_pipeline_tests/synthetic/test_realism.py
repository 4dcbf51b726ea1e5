"""The stylized-facts battery passes on 20 `normal` Globex days and fails on a Gaussian random walk."""

import numpy as np
import pytest
from synth_helpers import seed_set

from mia_pipeline.synthetic import realism

TAILS = {"excess_kurtosis_1m", "excess_kurtosis_1m_nq", "hill_tail_index"}
CLUSTERING_LEVEL = {"acf_absr_lag1", "acf_absr_lag30"}  # (the exponent: see the Gaussian-walk test)
SEASONALITY = {"u_shape_volatility", "u_shape_volume", "us_open_vol_ratio", "overnight_vol_ratio"}
VOLUME = {"volume_volatility_corr"}


@pytest.fixture(scope="module")
def normal_results():
    return realism.evaluate(realism.measure(realism.battery_sessions(20, seed=0)))


@pytest.fixture(scope="module")
def gaussian_results():
    return realism.evaluate(realism.measure(realism.gaussian_walk_sessions(20, seed=0)))


@pytest.mark.slow
def test_battery_passes_on_normal_sessions(normal_results):
    failed = [r for r in normal_results if not r.passed]
    assert not failed, realism.report(normal_results)
    assert {r.fact for r in normal_results} == set(realism.TARGETS) | {"lead_lag_nq_minus_es_share"}


@pytest.mark.slow
def test_battery_fails_on_a_gaussian_random_walk(gaussian_results):
    """realism.md: a Gaussian random walk fails the tails, clustering, seasonality and volume facts.
    Clustering is failed through the ACF level (|r| uncorrelated at lags 1 and 30); the power-law
    exponent fitted to the ACF of a walk without clustering is a slope through noise around zero, so
    whether it lands inside 0.1-0.6 is chance (it does for some seeds) and is not asserted."""
    failed = {r.fact for r in gaussian_results if not r.passed}
    assert TAILS | CLUSTERING_LEVEL | SEASONALITY | VOLUME <= failed, realism.report(gaussian_results)


@pytest.mark.slow
def test_report_lists_every_fact(normal_results):
    text = realism.report(normal_results, "title")
    assert text.splitlines()[0] == "title"
    assert all(r.fact in text for r in normal_results) and f"{len(normal_results)}/{len(normal_results)} facts pass" in text


def test_estimators_on_known_distributions():
    rng = np.random.default_rng(0)
    assert realism._hill(rng.pareto(3.0, 200_000) + 1.0) == pytest.approx(3.0, rel=0.15)
    assert abs(realism._kurtosis(rng.standard_normal(200_000))) < 0.05
    assert realism._kurtosis(rng.standard_t(5, 200_000)) > 3


def test_globex_day_starts_skip_fridays_and_saturdays():
    days = realism.globex_day_starts(7, realism.FIRST_DAY)
    assert [d.weekday() for d in days] == [6, 0, 1, 2, 3, 6, 0]
    held = realism.globex_day_starts(4, realism.datetime(2025, 1, 5, 18, 0, tzinfo=realism.ET))
    assert [d.day for d in held] == [5, 6, 7, 9]  # Wed 8th 18:00 would open Thu 9th: CME closed (day of mourning)
    assert all((d.hour, d.minute) == (18, 0) for d in days)


SEED_SETS = 5


@pytest.mark.slow
@pytest.mark.parametrize("leadership", ["NQ_leads", "ES_leads", "balanced"])
def test_every_fact_passes_on_every_seed_set(leadership):
    """All facts of realism.md, on each of 5 independent seed sets of 20 consecutive full Globex days
    (23-h `normal` sessions from 2025-06-01, L1 only, seeds by ``session_seed(0, day, "normal")``), for
    each leadership; the lead-lag fact must find the configured leader. The full configuration is
    used: 300 sessions, ~8 s per set on the 2-core reference machine (~2 min for the three leaderships)."""
    for k in range(SEED_SETS):
        results = realism.evaluate(seed_set(k, leadership)[0], leadership=leadership)
        failed = [r for r in results if not r.passed]
        assert not failed, realism.report(results, f"seed set {k}, {leadership}")


def test_seed_sets_are_consecutive_disjoint_trading_days():
    days = realism.globex_day_starts(2 * realism.SET_SIZE, realism.FIRST_DAY)
    assert len(set(days)) == 2 * realism.SET_SIZE and days[0] == realism.FIRST_DAY
    assert all(d.hour == 18 for d in days)


def test_realism_cli_reports_each_seed_set():
    from click.testing import CliRunner

    from mia_pipeline.cli.generate import realism_report

    res = CliRunner().invoke(realism_report, ["--sessions", "1", "--seed-sets", "2", "--gaussian"])
    assert res.exit_code == 1, res.output
    assert "seed set 1/2" in res.output and "seed set 2/2" in res.output and "max_abs_move_sigma" in res.output


DECAY_MARGIN = 0.5  # the exponent's limit is 0.6; every set measured stays below 0.45


@pytest.mark.slow
def test_issue_20_seed_set_passes_with_margin_on_the_decay_exponent():
    """Seeds 7000-7019, one per Globex day from 2025-01-05, ES_leads 0.3: the set on which the decay
    exponent of the |r| ACF failed (0.61-0.63). Every fact passes, the exponent with margin, and the
    lead-lag facts hold at this strength (lag 0 carries most of the mass, ES detected as the leader)."""
    starts = realism.globex_day_starts(20)
    sessions = ({"l1": realism.MIA_IA_DataGenerator(seed=7000 + i).generate_tables(
        realism.GenConfig(start=s, minutes=24 * 60), "normal", "ES_leads", 0.3, tables=("l1",))["l1"]}
        for i, s in enumerate(starts))
    m = realism.measure(sessions)
    results = realism.evaluate(m, leadership="ES_leads")
    assert all(r.passed for r in results), realism.report(results, "seeds 7000-7019, ES_leads 0.3")
    assert m["acf_absr_power_exponent"] <= DECAY_MARGIN, m["acf_absr_power_exponent"]
    assert 0.6 <= m["lead_lag_lag0_share"] <= 0.75 and m["lead_lag_nq_minus_es_share"] <= -0.2, m
