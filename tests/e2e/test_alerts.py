"""Alerts end to end: a real daemon on the simulator delivers to receivers started here on
loopback (apprise json:// and a signed webhook)."""

from __future__ import annotations

import json

import pytest

from risk_actors.notify.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from tests.e2e.conftest import wait_for, write_config
from tests.integration.receivers import HttpReceiver

pytestmark = pytest.mark.e2e
SECRET = "e2e-webhook-secret-0123456789"
MAX5 = {"max_contracts": {"enabled": True, "limit": 5, "count_type": "net",
                          "reduce_to_limit": True}}


@pytest.fixture
def http():
    receiver = HttpReceiver()
    yield receiver
    receiver.close()


def _notifications(http) -> dict:
    return {"notifications": {
        "channels": [{"name": "json", "type": "apprise",
                      "urls": [f"json://127.0.0.1:{http.port}/apprise"],
                      "kinds": ["daemon_start", "daemon_stop"]}],
        "webhooks": [{"url": f"{http.url}/hook", "secret": SECRET,
                      "events": ["on_enforcement"], "retries": 3}]}}


def _bodies(http, path):
    return [(r, json.loads(r["body"])) for r in http.ok() if r["path"] == path]


def test_daemon_start_and_stop_are_announced(sim, riskd_factory, tmp_path, http):
    acc = sim.control.create_account("E2E", balance=50000.0)
    daemon = riskd_factory(write_config(tmp_path, sim.url, acc["id"], MAX5,
                                        extra=_notifications(http)))
    daemon.wait_connected(acc["id"])
    started = wait_for(lambda: _bodies(http, "/apprise"), 15, "daemon_start alert")
    assert "riskd started" in started[0][1]["message"]
    daemon.stop()
    stopped = wait_for(lambda: len(_bodies(http, "/apprise")) >= 2 and _bodies(http, "/apprise"),
                       10, "daemon_stop alert")
    assert "riskd is stopping" in stopped[1][1]["message"]


# Needs the AccountActor to send Notify(kind="enforcement", ...) to the Supervisor for each
# completed enforcement (the lead's wiring, risk_actors/account.py).
def test_max_contracts_breach_posts_a_signed_on_enforcement_webhook(sim, riskd_factory,
                                                                    tmp_path, http):
    acc = sim.control.create_account("E2E", balance=50000.0)
    sim.control.set_price("MNQ", 21000)
    daemon = riskd_factory(write_config(tmp_path, sim.url, acc["id"], MAX5,
                                        extra=_notifications(http)))
    daemon.wait_connected(acc["id"])

    sim.control.place_order(acc["id"], "MNQ", "market", "buy", 6)

    wait_for(lambda: sim.position(acc["id"], "MNQ") == 5, 5, "MNQ reduced to 5")
    hooks = wait_for(lambda: _bodies(http, "/hook"), 15,
                     f"on_enforcement webhook\n{daemon.output()}")
    request, doc = hooks[0]
    assert verify(SECRET, request["headers"][TIMESTAMP_HEADER], request["body"],
                  request["headers"][SIGNATURE_HEADER])
    assert doc["event"] == "on_enforcement" and doc["account_id"] == acc["id"]
    assert doc["rule"] == "max_contracts"
