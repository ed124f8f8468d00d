"""Watchdog: READY once, WATCHDOG only after the supervisor answered, heartbeat throttled."""

from __future__ import annotations

import time

from risk_actors.config.schema import WatchdogConfig
from risk_actors.notify.watchdog import Watchdog, probe_interval, shown


class FakeSd:
    def __init__(self):
        self.states = []

    def notify(self, state):
        self.states.append(state)


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_probe_interval_is_half_the_systemd_watchdog():
    assert probe_interval({"WATCHDOG_USEC": "30000000"}) == 15
    assert probe_interval({}) == 10


def test_pings_only_while_the_supervisor_answers():
    sd, clock, beats = FakeSd(), Clock(), []
    dog = Watchdog(WatchdogConfig(heartbeat_url="https://hc.example/ping/tok", heartbeat_seconds=60),
                   notifier=sd, clock=clock, env={}, http_get=beats.append)
    dog.ready("watching 1001")
    assert sd.states == ["READY=1\nSTATUS=watching 1001"]
    assert dog.due()
    dog.alive(True)
    assert sd.states[-1] == "WATCHDOG=1"
    clock.t = 5
    assert not dog.due()
    clock.t = 10
    dog.alive(False)                 # hung: no ping, no heartbeat
    assert sd.states.count("WATCHDOG=1") == 1
    clock.t = 20
    dog.alive(True)
    assert sd.states.count("WATCHDOG=1") == 2
    deadline = time.monotonic() + 2
    while len(beats) < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert beats == ["https://hc.example/ping/tok"]   # once: 20 s < heartbeat_seconds
    clock.t = 70
    dog.alive(True)
    while len(beats) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(beats) == 2


def test_without_notify_socket_systemd_is_not_used():
    dog = Watchdog(WatchdogConfig(), env={})
    assert dog.sd is None
    dog.ready()
    dog.alive(True)  # nothing to notify, nothing raised


def test_heartbeat_url_shown_without_its_token():
    assert shown("https://hc.example/ping/abc-secret") == "https://hc.example/***"
