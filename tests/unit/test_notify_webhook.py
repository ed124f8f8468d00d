"""Webhook signing and payload, and the delivery worker's retry/backoff (one piece at a time;
the real HTTP round trip is in tests/integration/test_notifier_delivery.py)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import datetime, timezone

import pytest

from risk_actors.messages import Notify
from risk_actors.notify.base import Channel, ChannelError
from risk_actors.notify.delivery import ChannelWorker, backoff_delays, deliver
from risk_actors.notify.webhook import (SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookChannel,
                                        WebhookParams, sign, verify)

SECRET = "whsec-0123456789abcdef"
AT = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)


def enforcement(message="closed 1 MNQ (max 5)") -> Notify:
    return Notify("enforcement", "warning", 7, "max_contracts", message, AT,
                  data={"actions": ["close 1 CON.F.US.MNQ.H26"], "result": "done"})


def test_signature_is_hmac_sha256_over_timestamp_dot_body():
    body = b'{"a":1}'
    expected = hmac.new(SECRET.encode(), b"1767225600." + body, hashlib.sha256).hexdigest()
    assert sign(SECRET, "1767225600", body) == "sha256=" + expected


def test_verify_accepts_genuine_and_rejects_tampered_stale_or_wrong_key():
    body, ts = b'{"a":1}', "1767225600"
    sig = sign(SECRET, ts, body)
    assert verify(SECRET, ts, body, sig, now=1767225600 + 10)
    assert not verify(SECRET, ts, b'{"a":2}', sig, now=1767225600)
    assert not verify("other-secret-0123456", ts, body, sig, now=1767225600)
    assert not verify(SECRET, ts, body, sig, now=1767225600 + 3600)
    assert not verify(SECRET, "nan", body, sig)


def test_request_is_signed_json_with_event_and_stable_delivery_id():
    channel = WebhookChannel("hook", WebhookParams(url="https://hooks.example/x", secret=SECRET),
                             clock=lambda: 1767225600.7)
    a = enforcement()
    body, headers = channel.request(a)
    doc = json.loads(body)
    assert doc["event"] == "on_enforcement" and doc["kind"] == "enforcement"
    assert doc["account_id"] == 7 and doc["data"]["result"] == "done"
    assert doc["at"] == "2026-03-02T15:00:00+00:00"
    assert headers[TIMESTAMP_HEADER] == "1767225600"
    assert verify(SECRET, headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER],
                  now=1767225600)
    again, headers2 = channel.request(a)
    assert json.loads(again)["delivery"] == doc["delivery"]   # same id on a retry
    assert json.loads(channel.request(enforcement("other"))[0])["delivery"] != doc["delivery"]
    channel.close()


def test_webhook_wants_only_the_kinds_of_its_events():
    channel = WebhookChannel("hook", WebhookParams(url="https://h.example/x", secret=SECRET,
                                                   events=("on_lockout",)))
    assert channel.wants(Notify("lock_start", "error", 7, None, "locked", AT))
    assert channel.wants(Notify("lock_end", "info", 7, None, "unlocked", AT))
    assert not channel.wants(enforcement())
    assert not channel.wants(Notify("daemon_start", "info", None, None, "up", AT))
    channel.close()


def test_secret_and_url_never_in_repr_or_errors():
    params = WebhookParams(url="https://h.example/x?token=t0ken-abcdef", secret=SECRET)
    channel = WebhookChannel("hook", params)
    assert SECRET not in repr(params) and "t0ken" not in repr(params)
    assert SECRET not in repr(channel) and "t0ken" not in channel.shown_url
    channel.close()


def test_backoff_delays_are_exponential_and_capped():
    assert list(backoff_delays(6, base=0.5, cap=4)) == [0.5, 1, 2, 4, 4, 4]
    assert list(backoff_delays(0)) == []


class Flaky(Channel):
    name = "flaky"

    def __init__(self, failures: int, permanent: bool = False, boom: bool = False) -> None:
        super().__init__("flaky", None)
        self.failures, self.permanent, self.boom = failures, permanent, boom
        self.calls = 0

    def send(self, alert: Notify) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            if self.boom:
                raise RuntimeError("https://secret-url/with-token")
            raise ChannelError("HTTP 500", permanent=self.permanent)


def test_deliver_retries_with_backoff_until_success():
    waits = []
    ok, attempts, _ = deliver(Flaky(2), enforcement(), retries=3, base=1,
                              wait=lambda s: waits.append(s) or False)
    assert (ok, attempts, waits) == (True, 3, [1, 2])


def test_deliver_gives_up_after_retries_and_on_permanent_errors():
    assert deliver(Flaky(10), enforcement(), 2, wait=lambda s: False)[:2] == (False, 3)
    assert deliver(Flaky(10, permanent=True), enforcement(), 5, wait=lambda s: False)[:2] == \
        (False, 1)


def test_deliver_hides_a_plugin_exception_text():
    ok, _, error = deliver(Flaky(10, boom=True), enforcement(), 0, wait=lambda s: False)
    assert not ok and "secret-url" not in error and "RuntimeError" in error


class Blocking(Channel):
    name = "blocking"

    def __init__(self) -> None:
        super().__init__("blocking", None)
        self.release = threading.Event()
        self.sent = []

    def send(self, alert: Notify) -> None:
        self.release.wait(5)
        self.sent.append(alert.message)


def test_worker_submit_never_blocks_and_drops_oldest_when_full():
    channel = Blocking()
    worker = ChannelWorker(channel, queue_size=2, retries=0)
    for i in range(6):  # the first is taken by the thread (blocked), the rest queue up
        assert worker.submit(enforcement(str(i))) is True
    channel.release.set()
    assert worker.flush(5)
    assert worker.dropped >= 2 and channel.sent[-1] == "5"
    worker.stop(1)


def test_worker_failed_channel_is_logged_and_the_worker_goes_on():
    channel = Flaky(1)  # fails the first attempt only; no retries allowed
    worker = ChannelWorker(channel, retries=0)
    worker.submit(enforcement("a"))
    worker.submit(enforcement("b"))
    assert worker.flush(5)
    assert (worker.failed, worker.delivered) == (1, 1)
    worker.stop(1)


@pytest.mark.parametrize("status, permanent", [(500, False), (429, False), (400, True),
                                               (404, True), (408, False)])
def test_http_status_classification(status, permanent):
    from risk_actors.notify.webhook import _permanent
    assert _permanent(status) is permanent
