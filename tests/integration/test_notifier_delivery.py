"""Alert delivery against real receivers started here on loopback: apprise ``json://`` and
signed webhooks to an HTTP server, apprise ``mailto://`` to an SMTP server; content, signature,
retry and de-duplication asserted on what the receivers got."""

from __future__ import annotations

import email
import json
from datetime import datetime, timezone

import pytest

from risk_actors.config.schema import ChannelConfig, NotificationsConfig
from risk_actors.messages import Notify
from risk_actors.notify.channels import AppriseParams
from risk_actors.notify.service import NotifierCore
from risk_actors.notify.webhook import (DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER,
                                        TIMESTAMP_HEADER, WebhookParams, verify)
from tests.integration.receivers import HttpReceiver, SmtpReceiver, wait_until

pytestmark = pytest.mark.integration
SECRET = "whsec-test-0123456789abcdef"
AT = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def http():
    receiver = HttpReceiver()
    yield receiver
    receiver.close()


def enforcement(message="max_contracts: closed 1 MNQ (6 > 5)") -> Notify:
    return Notify("enforcement", "warning", 1001, "max_contracts", message, AT,
                  data={"actions": ["close 1 CON.F.US.MNQ.H26"], "result": "done"})


def core_with(*channels: ChannelConfig, clock=None, dedup=60.0) -> NotifierCore:
    core = NotifierCore(clock=clock or Clock(), backoff_base=0.05, backoff_cap=0.2)
    core.configure(NotificationsConfig(dedup_seconds=dedup, channels=channels))
    return core


def webhook(url: str, **kw) -> ChannelConfig:
    return ChannelConfig("hook", "webhook", WebhookParams(url=url, secret=SECRET), **kw)


def test_apprise_json_url_posts_the_alert(http):
    core = core_with(ChannelConfig("json", "apprise",
                                   AppriseParams(urls=(f"json://127.0.0.1:{http.port}/alerts",))))
    core.handle(enforcement())
    assert wait_until(lambda: http.ok())
    assert core.shutdown(5)
    (req,) = http.ok()
    assert req["path"] == "/alerts"
    doc = json.loads(req["body"])
    assert "closed 1 MNQ" in doc["message"] and "account 1001" in doc["message"]
    assert doc["title"].startswith("riskd WARNING: enforcement")
    assert doc["type"] == "warning"


def test_signed_webhook_is_verified_with_the_secret(http):
    core = core_with(webhook(f"{http.url}/hook"))
    core.handle(enforcement())
    core.handle(Notify("daemon_start", "info", None, None, "up", AT))   # not a webhook event
    assert core.shutdown(5)
    (req,) = http.ok()
    headers = req["headers"]
    assert verify(SECRET, headers[TIMESTAMP_HEADER], req["body"], headers[SIGNATURE_HEADER])
    assert not verify("wrong-secret-0123456789", headers[TIMESTAMP_HEADER], req["body"],
                      headers[SIGNATURE_HEADER])
    assert headers[EVENT_HEADER] == "on_enforcement"
    assert headers["Content-Type"] == "application/json"
    doc = json.loads(req["body"])
    assert doc["event"] == "on_enforcement" and doc["rule"] == "max_contracts"
    assert doc["data"] == {"actions": ["close 1 CON.F.US.MNQ.H26"], "result": "done"}


def test_webhook_retried_after_500_with_the_same_delivery_id():
    receiver = HttpReceiver(statuses=[500, 503])
    try:
        core = core_with(webhook(f"{receiver.url}/hook"))
        core.handle(enforcement())
        assert core.shutdown(10)
        assert [r["status"] for r in receiver.requests] == [500, 503, 200]
        ids = {r["headers"][DELIVERY_HEADER] for r in receiver.requests}
        assert len(ids) == 1
        for r in receiver.requests:  # each attempt is signed on its own
            assert verify(SECRET, r["headers"][TIMESTAMP_HEADER], r["body"],
                          r["headers"][SIGNATURE_HEADER])
    finally:
        receiver.close()


def test_webhook_failing_for_good_is_logged_and_the_core_goes_on():
    receiver = HttpReceiver(statuses=[500] * 10)
    try:
        core = core_with(ChannelConfig("hook", "webhook",
                                       WebhookParams(url=f"{receiver.url}/h", secret=SECRET),
                                       retries=2))
        core.handle(enforcement())
        core.handle(enforcement("another"))
        assert core.shutdown(10)
        assert len(receiver.requests) == 6     # 2 alerts x (1 + 2 retries)
        assert core.workers["hook"].failed == 2 and core.workers["hook"].delivered == 0
    finally:
        receiver.close()


def test_five_identical_alerts_give_one_delivery_and_one_summary(http):
    clock = Clock()
    core = core_with(webhook(f"{http.url}/hook"), clock=clock)
    for _ in range(5):
        core.handle(enforcement())
        clock.t += 1
    assert wait_until(lambda: http.ok())
    assert core.seconds_to_next() == pytest.approx(55)
    clock.t += 60
    core.tick()
    assert core.shutdown(5)
    bodies = [json.loads(r["body"]) for r in http.ok()]
    assert len(bodies) == 2
    assert bodies[0]["message"] == "max_contracts: closed 1 MNQ (6 > 5)"
    assert "repeated 4 more times" in bodies[1]["message"]
    assert bodies[1]["data"]["repeated"] == 4


def test_rate_limit_merges_a_storm_into_one_summary(http):
    clock = Clock()
    core = core_with(webhook(f"{http.url}/hook", max_per_minute=2), clock=clock)
    for i in range(10):
        core.handle(enforcement(f"closed {i}"))
    clock.t += 60
    core.tick()
    assert core.shutdown(5)
    bodies = [json.loads(r["body"]) for r in http.ok()]
    assert [b["message"] for b in bodies[:2]] == ["closed 0", "closed 1"]
    assert len(bodies) == 3 and bodies[2]["data"]["rate_limited"] == 8


def test_apprise_mailto_delivers_email_to_a_local_smtp_server():
    smtp = SmtpReceiver()
    try:
        url = (f"mailto://localhost:{smtp.port}?mode=insecure&from=riskd@example.com"
               "&to=trader@example.com")
        core = core_with(ChannelConfig("mail", "apprise", AppriseParams(urls=(url,)),
                                       min_severity="error"))
        core.handle(enforcement())            # warning: below the channel's min_severity
        core.handle(Notify("lock_start", "error", 1001, "daily_realized_loss",
                           "account locked until 17:00 CT: daily loss -512.50 <= -500", AT,
                           key="lock|1001|daily_realized_loss"))
        assert core.shutdown(10)
        assert len(smtp.messages) == 1
        mail = smtp.messages[0]
        assert mail["to"] == ["trader@example.com"] and mail["from"] == "riskd@example.com"
        parsed = email.message_from_string(mail["data"])
        assert "lock start" in parsed["Subject"]
        text = parsed.get_payload(decode=True) if not parsed.is_multipart() else \
            parsed.get_payload(0).get_payload(decode=True)
        assert b"daily loss -512.50" in text
    finally:
        smtp.close()


def test_a_dead_channel_does_not_delay_the_others(http):
    # nothing listens on the first URL: its retries run in its own thread
    dead = ChannelConfig("dead", "webhook", WebhookParams(url="http://127.0.0.1:9/x",
                                                          secret=SECRET), retries=20)
    core = NotifierCore(clock=Clock(), backoff_base=1.0, backoff_cap=1.0)
    core.configure(NotificationsConfig(channels=(dead, webhook(f"{http.url}/hook"))))
    core.handle(enforcement())
    assert wait_until(lambda: http.ok(), timeout=3)
    core.shutdown(0.2)


def test_notifier_actor_delivers_daemon_stop_while_exiting(http):
    from thespian.actors import ActorExitRequest, ActorSystem
    from risk_actors.notifier import NotifierActor, NotifierInit
    asys = ActorSystem("simpleSystemBase", transientUnique=True)
    try:
        notifier = asys.createActor(NotifierActor)
        hook = ChannelConfig("hook", "webhook",
                             WebhookParams(url=f"{http.url}/hook", secret=SECRET,
                                           events=("on_enforcement",)))
        asys.tell(notifier, NotifierInit(NotificationsConfig(channels=(hook,))))
        asys.tell(notifier, enforcement())
        asys.tell(notifier, ActorExitRequest())
        assert wait_until(lambda: http.ok(), timeout=5)
    finally:
        asys.shutdown()
