"""Alert delivery against a local webhook on 127.0.0.1 that answers, fails, hangs, refuses and
redirects: delivered exactly once when it can be, retried when it is worth it, bounded in time
always, and the secret URL never written anywhere."""

import json
import logging
import socket
import time

import pytest
from alert_doubles import SECRET, Clock, Webhook, settings_for

from mia_pipeline.quality import webhook
from mia_pipeline.quality.alerts import evaluate_alerts, raise_incident, read_alerts


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hooks/{SECRET}"


def fire(layout, n=1):
    for i in range(n):
        raise_incident(layout, "backup_failed", f"backup failed: test {i}", key=f"mode{i}", mode=f"mode{i}")


def evaluate(layout, url, **monitoring):
    return evaluate_alerts(layout, settings_for(layout, webhook_url=url, **monitoring), market_open=False,
                           **Clock().kw)


def assert_no_secret(layout, caplog, *texts):
    everything = [layout.alerts_state_file.read_text(), (layout.reports_dir / "alerts.jsonl").read_text(),
                  caplog.text, *texts]
    for text in everything:
        assert SECRET not in text and "/hooks/" not in text


def outbox(layout):
    return json.loads(layout.alerts_state_file.read_text())["outbox"]


def test_delivered_exactly_once_with_a_slack_body(layout, caplog):
    caplog.set_level(logging.DEBUG)
    with Webhook("ok") as hook:
        fire(layout, 2)
        ev = evaluate(layout, hook.url)
        assert ev.delivered == 2 and ev.undelivered == 0 and outbox(layout) == []
        evaluate(layout, hook.url)  # nothing left: nothing sent again
    assert len(hook.received) == 2 and len(hook.hits) == 2
    body = hook.received[0]
    assert body["text"].startswith("[WARNING] backup_failed: backup failed: test 0")
    assert body["alert"]["state"] == "firing" and body["alert"]["incident"].startswith("backup_failed-")
    assert_no_secret(layout, caplog, ev.summary())


def test_a_500_is_retried_then_delivered(layout, caplog):
    with Webhook("500", "500", "ok") as hook:
        fire(layout)
        ev = evaluate(layout, hook.url, webhook_timeout_s=2, webhook_retries=3)
    assert ev.delivered == 1 and len(hook.hits) == 3 and len(hook.received) == 1
    assert_no_secret(layout, caplog, ev.summary())


def test_a_hanging_webhook_is_bounded_and_the_alert_waits_in_the_outbox(layout, caplog):
    with Webhook("hang", hang_s=5) as hook:
        fire(layout, 3)
        t0 = time.monotonic()
        ev = evaluate(layout, hook.url, webhook_timeout_s=1, webhook_retries=1)
        took = time.monotonic() - t0
        # one budget for the whole outbox: 2 attempts x 1 s + 0.5 s pause, then the rest wait
        assert took < webhook.budget_s(1, 1) + 1.5, took
        assert ev.delivered == 0 and ev.undelivered == 3 and len(outbox(layout)) == 3
        assert any("did not answer within 1 s" in n for n in ev.notes), ev.notes
        hook.script = ["ok"]
        ev = evaluate(layout, hook.url, webhook_timeout_s=1, webhook_retries=1)
    assert ev.delivered == 3 and outbox(layout) == []
    assert sorted(b["alert"]["context"]["mode"] for b in hook.received) == ["mode0", "mode1", "mode2"]
    assert_no_secret(layout, caplog, *ev.notes)


def test_a_refused_connection_is_retried_then_kept(layout, caplog):
    fire(layout)
    url = closed_port_url()
    t0 = time.monotonic()
    ev = evaluate(layout, url, webhook_timeout_s=1, webhook_retries=2)
    assert time.monotonic() - t0 < webhook.budget_s(1, 2) + 1
    assert ev.undelivered == 1
    (note,) = [n for n in ev.notes if "not delivered" in n]
    assert "could not be reached" in note and "the webhook at http://127.0.0.1:" in note
    assert_no_secret(layout, caplog, *ev.notes, ev.summary())


def test_a_redirect_is_not_followed_and_counts_as_a_failure(layout, caplog):
    with Webhook("redirect", "ok") as hook:
        fire(layout)
        ev = evaluate(layout, hook.url, webhook_timeout_s=1, webhook_retries=3)
        assert hook.hits == [f"/hooks/{SECRET}"]  # one attempt, and /elsewhere never asked
        assert ev.undelivered == 1 and any("HTTP 302" in n and "not followed" in n for n in ev.notes)
        assert evaluate(layout, hook.url).delivered == 1  # the next evaluation delivers it
    assert len(hook.received) == 1
    assert_no_secret(layout, caplog, *ev.notes)


def test_post_reports_no_url_in_its_error():
    result = webhook.post(closed_port_url(), {"text": "x"}, timeout_s=1, retries=0)
    assert not result.ok and result.attempts == 1 and SECRET not in result.error
    assert webhook.describe(f"https://hooks.example.com/services/{SECRET}?x=1") == "the webhook at https://hooks.example.com"


@pytest.mark.parametrize("n", [1, 3])
def test_the_budget_bounds_all_retries(n):
    assert webhook.budget_s(5, n) == 5 * (n + 1) + sum(min(0.5 * 2 ** i, 8) for i in range(n))


def test_alert_lines_do_not_carry_the_url(layout, caplog):
    with Webhook("ok") as hook:
        fire(layout)
        evaluate(layout, hook.url)
    assert all(SECRET not in json.dumps(a) for a in read_alerts(layout))
    assert_no_secret(layout, caplog)


def test_one_delivery_at_a_time_so_nothing_is_posted_twice(layout):
    """The alert sensor and the run-failure sensor may deliver at once: the second leaves it to the first."""
    import fcntl

    from mia_pipeline.quality.alerts import deliver_outbox

    with Webhook("ok") as hook:
        fire(layout)
        settings = settings_for(layout, webhook_url=hook.url)
        with open(layout.alerts_state_file.with_name(".alert_delivery.lock"), "a+") as held:
            fcntl.flock(held.fileno(), fcntl.LOCK_EX)  # another process is delivering
            notes = []
            assert deliver_outbox(layout, settings, notes) == (0, 0) and "another process" in notes[0]
        assert deliver_outbox(layout, settings) == (1, 0)
    assert len(hook.received) == 1
