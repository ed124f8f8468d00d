"""The ComponentHost on simpleSystemBase: a raising component is isolated, the analytics one
keeps recording, and a DayClosed produces a daily_report Notify for the parent."""

from __future__ import annotations

from datetime import datetime, timezone

import attrs
import pytest
from thespian.actors import ActorSystem, ActorTypeDispatcher

from risk_actors import messages as m
from risk_actors.analytics.stats import compute
from risk_actors.analytics.store import AnalyticsStore
from risk_actors.component_host import (ComponentHostActor, ComponentHostInit,
                                        ComponentHostReady, ComponentSpec)
from risk_actors.components import Component, ComponentContext, component_path
from risk_actors.analytics.component import AnalyticsComponent
from risk_actors.db import Database

ACC = 11
MNQ = "CON.F.US.MNQ.Z26"


class RaisingComponent(Component):
    """Raises on every item and at every day close."""

    name = "raiser"

    def on_event(self, account_id, item, at):
        raise RuntimeError("boom on event")

    def on_day_closed(self, account_id, start, end):
        raise RuntimeError("boom at day close")


class BrokenStart(Component):
    name = "broken_start"

    def start(self, context):
        raise OSError("cannot open its file")


@attrs.frozen
class Start:
    init: ComponentHostInit


class Parent(ActorTypeDispatcher):
    """Stands in for the Supervisor: creates the host and keeps what it sends back."""

    def __init__(self):
        super().__init__()
        self.host = None
        self.got: list = []

    def receiveMsg_Start(self, msg, sender):
        self.host = self.createActor(ComponentHostActor)
        self.send(self.host, msg.init)

    def receiveMsg_ComponentFeed(self, msg, sender):
        self.send(self.host, msg)

    def receiveMsg_Notify(self, msg, sender):
        self.got.append(msg)

    def receiveMsg_tuple(self, msg, sender):
        if msg[0] == "batch":
            self.send(self.host, msg[1])

    def receiveMsg_ComponentHostReady(self, msg, sender):
        self.got.append(msg)

    def receiveMsg_str(self, msg, sender):
        if msg == "got":
            self.send(sender, list(self.got))


@pytest.fixture
def asys():
    system = ActorSystem("simpleSystemBase")
    yield system
    system.shutdown()


def _feed(asys, parent, seq, item, at):
    asys.tell(parent, m.ComponentFeed(ACC, seq, item, at))


def test_raising_component_when_fed_then_analytics_still_records_and_reports(asys, tmp_path):
    db = tmp_path / "riskd.sqlite"
    Database(db).close()
    specs = (ComponentSpec("raiser", component_path(RaisingComponent), RaisingComponent.Params()),
             ComponentSpec("broken_start", component_path(BrokenStart), BrokenStart.Params()),
             ComponentSpec("analytics", component_path(AnalyticsComponent),
                           AnalyticsComponent.Params()))
    parent = asys.createActor(Parent)
    asys.tell(parent, Start(ComponentHostInit(specs, ComponentContext(str(db), str(tmp_path)))))

    at = datetime(2026, 11, 24, 15, 0, tzinfo=timezone.utc)
    _feed(asys, parent, 1, m.TradeEvent(ACC, 1, MNQ, at, 100.0, None, 0.74, 0, 1), at)
    _feed(asys, parent, 2, m.TradeEvent(ACC, 2, MNQ, at, 110.0, 20.0, 0.74, 1, 1), at)
    _feed(asys, parent, 3, m.RuleTriggered("max_contracts", "enforce", "6 > 5"), at)
    _feed(asys, parent, 4, m.PositionEvent(ACC, MNQ, 0), at)
    # the reset of the 24th (17:00 CT = 23:00 UTC)
    end = datetime(2026, 11, 24, 23, 0, tzinfo=timezone.utc)
    _feed(asys, parent, 0, m.DayClosed(datetime(2026, 11, 23, 23, 0, tzinfo=timezone.utc), end),
          end)
    got = asys.ask(parent, "got", 5)

    ready = [g for g in got if isinstance(g, ComponentHostReady)]
    assert ready and ready[0].running == ("raiser", "analytics")
    assert [name for name, _ in ready[0].failed] == ["broken_start"]
    failures = [g for g in got if isinstance(g, m.Notify) and g.kind == "rule_failure"]
    # one alert per failing component (start failure, first raise), not one per event
    assert sorted(f.rule for f in failures) == ["component:broken_start", "component:raiser"]
    reports = [g for g in got if isinstance(g, m.Notify) and g.kind == "daily_report"]
    assert len(reports) == 1
    report = reports[0]
    assert (report.severity, report.account_id) == ("info", ACC)
    assert report.data["component"] == "analytics"
    assert report.data["trading_day"] == "2026-11-24"
    assert report.data["trades"] == 1 and report.data["net_pnl"] == 18.52   # 20 - 0.74 * 2
    assert report.data["rule_triggers"] == {"max_contracts": 1}
    assert "max_contracts x1" in report.message

    store = AnalyticsStore(db, readonly=True)
    try:
        assert compute(store.fills(ACC)).trades == 1
    finally:
        store.close()


def test_daily_report_off_when_day_closes_then_no_notify(asys, tmp_path):
    db = tmp_path / "riskd.sqlite"
    Database(db).close()
    spec = ComponentSpec("analytics", component_path(AnalyticsComponent),
                         AnalyticsComponent.Params(), daily_report=False)
    parent = asys.createActor(Parent)
    asys.tell(parent, Start(ComponentHostInit((spec,), ComponentContext(str(db), str(tmp_path)))))
    end = datetime(2026, 11, 24, 23, 0, tzinfo=timezone.utc)
    _feed(asys, parent, 0, m.DayClosed(None, end), end)
    got = asys.ask(parent, "got", 5)
    assert not [g for g in got if isinstance(g, m.Notify)]


def test_feed_batch_when_sent_whole_then_each_item_is_handled(asys, tmp_path):
    db = tmp_path / "riskd.sqlite"
    Database(db).close()
    spec = ComponentSpec("analytics", component_path(AnalyticsComponent),
                         AnalyticsComponent.Params())
    parent = asys.createActor(Parent)
    asys.tell(parent, Start(ComponentHostInit((spec,), ComponentContext(str(db), str(tmp_path)))))
    at = datetime(2026, 11, 24, 15, 0, tzinfo=timezone.utc)
    batch = m.ComponentFeedBatch((
        m.ComponentFeed(ACC, 1, m.TradeEvent(ACC, 1, MNQ, at, 100.0, None, 0.74, 0, 1), at),
        m.ComponentFeed(ACC, 2, m.TradeEvent(ACC, 2, MNQ, at, 99.0, -2.0, 0.74, 1, 1), at)))
    asys.tell(parent, ("batch", batch))
    asys.ask(parent, "got", 5)
    store = AnalyticsStore(db, readonly=True)
    try:
        s = compute(store.fills(ACC))
    finally:
        store.close()
    assert (s.fills, s.trades, s.losses) == (2, 1, 1)
